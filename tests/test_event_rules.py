"""The events stage's rules (edgeguard.events.rules): which facts of the pipeline become events."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from edgeguard.capture import Frame
from edgeguard.config import EventsConfig, MaskConfig
from edgeguard.detect import Box
from edgeguard.events.rules import EventRules
from edgeguard.live.pipeline import BareFace, FrameReport
from edgeguard.live.track import Track

IMAGE = np.zeros((8, 8, 3), np.uint8)


def at(hh: int, mm: int, ss: int = 0) -> float:
    return datetime(2026, 11, 23, hh, mm, ss).timestamp()


def report(when: float, bare: list[Track] = (), people: int = 1, number: int = 0) -> FrameReport:
    """A live frame taken at `when`, with these tracks seen bare."""
    return FrameReport(Frame(IMAGE, number, None, when), [], [BareFace(t, None) for t in bare], people)


def bare_track(track_id: int = 1) -> Track:
    track = Track(track_id, Box(0, 100, 100, 0), 0.0)
    track.add_mask_sample(False, 0.0)
    track.add_mask_sample(False, 0.1)
    return track


def kinds(rules: EventRules, *reports: FrameReport) -> list[str]:
    return [o.kind for r in reports for o in rules.due(r)]


def test_a_face_bare_before_opening_and_still_bare_after_gets_its_event_at_opening():
    rules = EventRules(EventsConfig(max_people=10), MaskConfig(hours="08:00-18:00"))
    track = bare_track()
    assert kinds(rules, report(at(7, 59), [track]), report(at(7, 59, 59), [track])) == []
    assert kinds(rules, report(at(8, 1), [track])) == ["no_mask"]
    assert kinds(rules, report(at(8, 2), [track])) == []  # once per face


def test_a_bare_face_is_reported_again_only_after_it_was_seen_masked():
    rules = EventRules(EventsConfig(max_people=10), MaskConfig())
    track = bare_track()
    assert kinds(rules, report(at(9, 0), [track])) == ["no_mask"]
    for t in range(3):
        track.add_mask_sample(True, 1.0 + t)  # the mask goes on
    assert kinds(rules, report(at(9, 1))) == []
    for t in range(3):
        track.add_mask_sample(False, 4.0 + t)  # and off again
    assert kinds(rules, report(at(9, 2), [track])) == ["no_mask"]


def test_no_mask_events_switched_off():
    rules = EventRules(EventsConfig(max_people=10), MaskConfig(events=False))
    assert kinds(rules, report(at(9, 0), [bare_track()])) == []


def test_two_bare_faces_give_two_events():
    rules = EventRules(EventsConfig(max_people=10), MaskConfig())
    assert kinds(rules, report(at(9, 0), [bare_track(1), bare_track(2)])) == ["no_mask", "no_mask"]


def test_a_crowd_must_last_before_it_is_reported_once():
    rules = EventRules(EventsConfig(max_people=2, crowd_min_seconds=3.0), MaskConfig())
    start = at(9, 0)
    crowd = [report(start + t, people=3) for t in (0, 1, 2)]
    assert kinds(rules, *crowd) == []
    assert kinds(rules, report(start + 3, people=3)) == ["crowd"]
    assert kinds(rules, report(start + 10, people=4)) == []  # the same crowd
    assert kinds(
        rules, report(start + 11, people=2), report(start + 12, people=3), report(start + 15, people=3)
    ) == ["crowd"]
