"""Live sources (USB, CSI, RTSP/HTTP): a supervisor thread that reconnects with backoff.

A blocking `read()` of a capture can hang for a long time (a wedged stream, an
unplugged camera), and a capture must not be released from another thread
while it is inside `read()`.  So the reader thread is a *supervisor*: for each
attempt it starts a `Connection` (edgeguard.sources.connection), a thread that
opens the capture, reads it in a loop and overwrites the slot with each new
frame (newest wins; the pipeline never works through a backlog).  The
supervisor watches the connection: when the capture cannot be opened, reading
fails, or no frame came for `read_timeout` seconds ("stalled"), it *abandons*
the connection and opens a new one after an exponential backoff (1 s, 2 s, 4 s
... 30 s).  An abandoned connection delivers nothing more and releases its
capture itself as soon as its blocking call returns; FFmpeg streams get a read
timeout a little longer than ours so that this happens soon after the stall
was noticed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from ..config import CameraConfig
from .base import BACKEND_TIMEOUT_GRACE, Frame, VideoInput
from .connection import Connection
from .jetson import open_jetson
from .picamera2 import open_picamera2
from .reader import STOP_TIMEOUT, ThreadReader
from .slot import FrameSlot
from .spec import SourceSpec
from .status import SourceStatus
from .stream import open_stream
from .usb import open_usb, ways_forward

log = logging.getLogger("edgeguard.capture")

WATCH_INTERVAL = 0.05  # how often the supervisor looks at its connection, seconds

OPENERS: dict[str, Callable[[str, CameraConfig], tuple[VideoInput, str]]] = {
    "usb": open_usb,
    "stream": open_stream,
    "picamera2": open_picamera2,
    "jetson": open_jetson,
}


class LiveReader(ThreadReader):
    def __init__(
        self,
        cfg: CameraConfig,
        spec: SourceSpec,
        slot: FrameSlot,
        stop: threading.Event,
        status: SourceStatus,
        backoff: tuple[float, float],
        public_source: str,
    ) -> None:
        super().__init__(cfg, spec, slot, stop, status)
        self.backoff = backoff
        self.public_source = public_source  # the source as it may be shown: without credentials
        self.advised = False  # first-run advice: given once, and only if the camera never opened

    def start(self) -> None:
        self.start_thread()

    def run(self) -> None:
        delay = self.backoff[0]
        while not self.stop.is_set():
            connection = Connection(self._open, self._deliver, self.cfg.name)
            connection.start()
            reason = self._watch(connection)
            connection.abandon()
            if self.stop.is_set():
                self._release_on_stop(connection)
                return
            if connection.frames:
                delay = self.backoff[0]
            self._lost(reason, connection.opened.is_set(), delay)
            if self.stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff[1])
            self.status.set_state("reconnecting", f"reopening {self.public_source}")

    def _open(self) -> VideoInput:
        """Open the live source (on a connection thread) and record what the driver gave."""
        capture, description = OPENERS[self.spec.kind](self.spec.target, self.cfg)
        self.advised = True
        self.status.opened(description)
        return capture

    def _watch(self, connection: Connection) -> str:
        """Wait until the connection fails, stalls, or stop() is called; why it ended."""
        open_deadline = time.monotonic() + self.cfg.open_timeout + BACKEND_TIMEOUT_GRACE
        while not self.stop.is_set():
            if connection.done.wait(WATCH_INTERVAL):
                return connection.error
            if not connection.opened.is_set():
                if time.monotonic() > open_deadline:
                    return f"opening took longer than {self.cfg.open_timeout:g} s"
            elif time.monotonic() - connection.last_activity > self.cfg.read_timeout:
                return "stalled"
        return "stopped"

    def _deliver(self, image: np.ndarray) -> None:
        """Called by the connection thread for each good frame: replace whatever is in the slot."""
        number = self.status.next_number()
        self.slot.put(Frame(image, number, None, time.time()), wait=False)
        self.status.set_state("streaming", f"streaming from {self.public_source}")

    def _lost(self, reason: str, was_open: bool, delay: float) -> None:
        """Log a failed or stalled connection: a warning when the state changes, else at debug level."""
        log.debug("camera %s: %s; next attempt in %g s", self.cfg.name, reason, delay)
        if reason == "stalled":
            message = f"no frame for {self.cfg.read_timeout:g} s from {self.status.description}; reopening"
            self.status.set_state("stalled", message, logging.WARNING)
        else:
            what = "lost" if was_open else "unavailable"
            message = (
                f"{self.public_source} {what} ({reason}); retrying with backoff up to {self.backoff[1]:g} s"
            )
            self.status.set_state("reconnecting", message, logging.WARNING)
            if self.spec.kind == "usb" and not self.advised:
                self.advised = True
                log.warning(
                    "camera %s: %s 'edgeguard check' says what else is missing.",
                    self.cfg.name,
                    ways_forward(self.spec.target),
                )

    def _release_on_stop(self, connection: Connection) -> None:
        if not connection.done.wait(STOP_TIMEOUT * 0.75):
            log.warning(
                "camera %s: capture still blocked in a read; it is released when the read returns",
                self.cfg.name,
            )
