"""A source's state and what it opened, shared by `FrameSource` and the reader that feeds it.

One lock guards the state, the description, the frame count and the time of
the last frame, so a reader on its own thread (or a web worker, for push
cameras) and the pipeline asking for the state always see them agree.  A
change of state is logged once: a retry in the same state logs nothing.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("edgeguard.capture")


class SourceStatus:
    def __init__(self, camera: str, description: str) -> None:
        self.camera = camera
        self._lock = threading.Lock()
        self._state = "opening"
        self._description = description
        self._logged_description = ""
        self._count = 0  # frames delivered since start()
        self._last_frame: float | None = None  # time.monotonic() of the last pushed frame

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    @property
    def description(self) -> str:
        with self._lock:
            return self._description

    def set_state(self, state: str, message: str = "", level: int = logging.INFO) -> None:
        """Change the state, logging the change once (a retry in the same state logs nothing)."""
        with self._lock:
            if self._state == state or self._state == "stopped":
                return
            self._state = state
        if message:
            log.log(level, "camera %s: %s", self.camera, message)

    def opened(self, description: str) -> None:
        """Record what was opened; log it when it is new (the first time, or the driver chose differently)."""
        with self._lock:
            self._description = description
            new = description != self._logged_description
            self._logged_description = description
        if new:
            log.info("camera %s: opened %s", self.camera, description)

    def describe(self, description: str) -> None:
        """Say what the source is now, without logging it."""
        with self._lock:
            self._description = description

    def next_number(self) -> int:
        """The number of the next live frame: frames delivered since start()."""
        with self._lock:
            number, self._count = self._count, self._count + 1
            return number

    def arrived(self, description: str) -> tuple[int, str, float | None] | None:
        """A pushed frame arrived: its number, the state before and the seconds since the last one (None
        for the first); the state becomes streaming.  None once stopped."""
        now = time.monotonic()
        with self._lock:
            if self._state == "stopped":
                return None
            number, self._count = self._count, self._count + 1
            gap = None if self._last_frame is None else now - self._last_frame
            self._last_frame = now
            self._description = description
            was, self._state = self._state, "streaming"
        return number, was, gap

    def stall_after(self, seconds: float) -> bool:
        """Streaming becomes stalled once no frame arrived for `seconds`; True when it just did."""
        with self._lock:
            stalled = (
                self._state == "streaming"
                and self._last_frame is not None
                and time.monotonic() - self._last_frame > seconds
            )
            if stalled:
                self._state = "stalled"
        return stalled
