"""The hand-over between a source's reader thread and the pipeline: one frame at most,
a newer one replaces it."""

from __future__ import annotations

import threading

from .base import Frame


class FrameSlot:
    """Hands frames from the reader to the pipeline: one frame at most, a newer one replaces it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._finished = False  # no more frames will come (end of file)
        self._cancelled = False  # stop(): drop everything, wake everybody

    def put(self, frame: Frame, wait: bool) -> bool:
        """Offer a frame; with `wait`, first wait until the last one was taken. False once cancelled."""
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._frame is None or self._cancelled)
            if self._cancelled:
                return False
            self._frame = frame
            self._cond.notify_all()
            return True

    def take(self, timeout: float) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._finished or self._cancelled, timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return None if self._cancelled else frame

    def finish(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def wait_drained(self) -> bool:
        """Wait until the pipeline took the last frame; False if cancelled first."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is None or self._cancelled)
            return not self._cancelled

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._frame = None
            self._cond.notify_all()

    @property
    def drained(self) -> bool:
        """Finished and empty: every frame was taken."""
        with self._cond:
            return self._finished and self._frame is None and not self._cancelled
