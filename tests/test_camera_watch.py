"""Tests for edgeguard.events.camera_watch: when a camera without frames becomes camera_down,
and camera_up."""

from __future__ import annotations

from edgeguard.events.camera_watch import CameraWatch


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_down_after_the_configured_silence_then_up_at_the_next_frame():
    clock = Clock()
    watch = CameraWatch(60.0, clock)
    clock.t += 59
    assert watch.due(ended=False) is None  # a short outage is nobody's news
    clock.t += 2
    down = watch.due(ended=False)
    assert down is not None and down.kind == "camera_down" and down.seconds == 61
    clock.t += 100
    assert watch.due(ended=False) is None  # said once
    watch.frame()
    up = watch.due(ended=False)
    assert up is not None and up.kind == "camera_up" and up.seconds == 161
    assert watch.due(ended=False) is None


def test_frames_keep_it_up_and_an_ended_file_is_not_down():
    clock = Clock()
    watch = CameraWatch(10.0, clock)
    for _ in range(5):
        clock.t += 9
        watch.frame()
        assert watch.due(ended=False) is None
    clock.t += 60
    assert watch.due(ended=True) is None
