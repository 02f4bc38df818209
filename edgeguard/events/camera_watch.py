"""Cameras that stop delivering frames: a camera without frames for `camera_down_seconds` is a
camera_down event, and the first frame after that a camera_up event.

A camera that drops out for a few seconds (a stream reconnecting, a USB
camera re-enumerating) is normal and reopened by edgeguard.capture without
anyone being told; only an outage longer than the configured time is news.
A video file that ended is not down.  The daemon's supervisor asks every
camera's watch at its own pace (`due`); the camera's thread only stamps each
frame (`frame`), one assignment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .event import EventType


@dataclass(frozen=True)
class CameraChange:
    kind: EventType  # CAMERA_DOWN or CAMERA_UP
    seconds: float  # how long the camera has been (for camera_up: was) without frames


class CameraWatch:
    def __init__(self, down_after: float, clock=time.monotonic) -> None:
        self.down_after = down_after
        self.clock = clock
        self.last_frame = (
            clock()
        )  # start-up counts as a frame: a camera that never delivers is down after down_after
        self.down = False
        self._down_since = self.last_frame

    def frame(self) -> None:
        """A frame came (called by the camera's thread)."""
        self.last_frame = self.clock()

    def due(self, ended: bool) -> CameraChange | None:
        """A change to report now, if any; `ended`: the source is a video file that reached its end."""
        silent = self.clock() - self.last_frame
        if not self.down and not ended and silent >= self.down_after:
            self.down = True
            self._down_since = self.last_frame
            return CameraChange(EventType.CAMERA_DOWN, silent)
        if self.down and silent < self.down_after:
            self.down = False
            return CameraChange(EventType.CAMERA_UP, self.last_frame - self._down_since)
        return None
