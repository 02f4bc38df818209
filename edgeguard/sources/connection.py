"""Live sources (USB, CSI, network streams): one connection attempt at a time, on a thread of its own.

A blocking `read()` of a capture can hang for a long time (a wedged stream, an
unplugged camera), and a capture must not be released from another thread
while it is inside `read()`.  So each attempt is a `Connection`: a thread that
opens the capture and reads it in a loop, handing over each good frame.  The
supervisor (edgeguard.sources.live_reader) watches it and abandons it when it
fails or stalls; an abandoned connection delivers nothing more and releases its
capture itself as soon as its blocking call returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from .base import MAX_BAD_READS, BadFrames, OpenFailed, VideoInput, usable


class Connection:
    """One attempt at a live source: a thread that opens the capture and reads it until told to stop.

    Once `abandon()`ed it delivers nothing more, and it releases the capture
    itself when its current (possibly hanging) call returns.
    """

    def __init__(
        self, open_capture: Callable[[], VideoInput], deliver: Callable[[np.ndarray], None], name: str
    ) -> None:
        self._open_capture = open_capture
        self._deliver = deliver
        self._bad = BadFrames(name)
        self._lock = threading.Lock()
        self._abandoned = False
        self.opened = threading.Event()
        self.done = threading.Event()
        self.error = ""  # why the thread ended on its own
        self.frames = 0
        self.last_activity = time.monotonic()  # when it opened, or delivered its last frame
        self._thread = threading.Thread(target=self._run, name=f"capture-{name}-connection", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True

    @property
    def abandoned(self) -> bool:
        with self._lock:
            return self._abandoned

    def _run(self) -> None:
        try:
            cap = self._open_capture()
        except OpenFailed as exc:
            self.error = str(exc)
            self.done.set()
            return
        except Exception as exc:  # a backend's own surprise must not kill the supervisor's retries
            self.error = f"cannot open: {exc!r}"
            self.done.set()
            return
        try:
            self.last_activity = time.monotonic()
            self.opened.set()
            self._read_until_abandoned(cap)
        finally:
            cap.release()
            self.done.set()

    def _read_until_abandoned(self, cap: VideoInput) -> None:
        shape: tuple[int, ...] | None = None
        failures = 0
        while not self.abandoned:
            try:
                ok, image = cap.read()
            except Exception as exc:  # e.g. Picamera2 after the camera went away
                self.error = f"read failed: {exc!r}"
                return
            if ok and usable(image, shape):
                failures = 0
                shape = image.shape
                self._hand_over(image)
                continue
            failures += 1
            if failures >= MAX_BAD_READS:
                self.error = "read failed (stream ended or lost)"
                return
            if ok:
                self._bad.skipped()

    def _hand_over(self, image: np.ndarray) -> None:
        with self._lock:  # so that no frame slips out after abandon() returned
            if self._abandoned:
                return
            self.frames += 1
            self.last_activity = time.monotonic()
            self._deliver(image)
