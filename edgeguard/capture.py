"""Frames from a camera, a network stream or a video file: the public face of the camera stage.

Threading model
---------------
`FrameSource.start()` checks what can be checked at once (the file exists,
Picamera2 imports, OpenCV has GStreamer) and raises `SourceError` if the source
can never work; then its reader starts.  Frames reach the pipeline through a
one-frame slot that `read()` takes from.  The reader is one of three
strategies behind one small interface (edgeguard.sources.reader):

* Video files (`FileReader`, sources/file_reader.py): a reader thread decodes
  the file into the slot, every frame in order, or paced by the file's fps in
  real time.

* Live sources (USB, CSI, RTSP/HTTP; `LiveReader`, sources/live_reader.py): a
  supervisor thread runs one `Connection` (sources/connection.py) per attempt,
  which overwrites the slot with each new frame, and abandons it when it
  fails or stalls, reconnecting with an exponential backoff (1 s ... 30 s).

* Push cameras (`PushReader`, sources/push_reader.py): no reader thread; the
  web worker that received and decoded a frame puts it into the slot, and the
  state is worked out from the time of the last pushed frame when asked for.

Frame numbers: for files, `Frame.number` is the position in the file (0 is
the first frame) and `pos_ms` its timestamp, so events can be found in the
footage; with `loop = true` both start again at 0 on each pass.  For live
and push sources `number` counts frames delivered since `start()` and `pos_ms`
is None.

Each kind of source has a module in edgeguard.sources that opens it (usb,
stream, picamera2, jetson, video_file, push); this module is what the rest of the
program uses: `open_source`, `FrameSource`, `Frame` and `SourceError`, and for
push cameras and their client the feed, tokens, source kinds and redaction.
"""

from __future__ import annotations

import threading

from .config import CameraConfig
from .sources.base import Frame, SourceError
from .sources.file_reader import FileReader
from .sources.live_reader import LiveReader
from .sources.push import PushFeed, push_token, push_token_location
from .sources.push_reader import PushReader
from .sources.reader import STOP_TIMEOUT, Reader
from .sources.slot import FrameSlot
from .sources.spec import check_source, parse_source
from .sources.status import SourceStatus
from .sources.stream import redact
from .sources.usb import device_node, ways_forward

__all__ = [
    "Frame",
    "FrameSource",
    "PushFeed",
    "SourceError",
    "open_source",
    "parse_source",
    "push_token",
    "push_token_location",
    "device_node",
    "redact",
    "ways_forward",
]

DEFAULT_BACKOFF = (1.0, 30.0)  # first and longest wait between reconnect attempts, seconds


def open_source(cfg: CameraConfig, source: str | None = None, realtime: bool | None = None) -> FrameSource:
    """The configured camera (or `source` instead), started; SourceError if it can never work."""
    frames = FrameSource(cfg, source, realtime)
    frames.start()
    return frames


class FrameSource:
    """Frames for the pipeline from the configured source; see the module docstring."""

    def __init__(
        self,
        cfg: CameraConfig,
        source: str | None = None,
        realtime: bool | None = None,
        *,
        backoff: tuple[float, float] = DEFAULT_BACKOFF,
        push: PushFeed | None = None,
    ) -> None:
        self._cfg = cfg
        source = cfg.source if source is None else source
        self._spec = parse_source(source)
        self._slot = FrameSlot()
        self._stop = threading.Event()
        self._status = SourceStatus(cfg.name, redact(source))
        self._reader = self._choose_reader(
            cfg.realtime if realtime is None else realtime, backoff, redact(source), push
        )
        self._started = False
        self._ended_at_stop = False

    def _choose_reader(
        self, realtime: bool, backoff: tuple[float, float], public_source: str, push: PushFeed | None
    ) -> Reader:
        """The strategy for this kind of source (a feed is ignored when --source overrides push)."""
        parts = (self._cfg, self._spec, self._slot, self._stop, self._status)
        if self._spec.kind == "push":
            return PushReader(*parts, push)
        if self._spec.kind == "file":
            return FileReader(*parts, realtime)
        return LiveReader(*parts, backoff, public_source)

    def start(self) -> None:
        """Check the source and start reading; SourceError if it can never work."""
        if self._started:
            raise RuntimeError("FrameSource.start() called twice")
        check_source(self._spec, self._cfg)
        self._reader.start()
        self._started = True

    def stop(self) -> None:
        """Stop reading and release the capture; returns within about STOP_TIMEOUT seconds."""
        self._stop.set()
        self._reader.detach()
        self._ended_at_stop = self._slot.drained
        self._slot.cancel()
        self._reader.join(STOP_TIMEOUT)
        self._status.set_state("stopped")

    def read(self, timeout: float) -> Frame | None:
        """The next frame, waiting up to `timeout` seconds; None if none came, at the end, or stopped."""
        frame = self._slot.take(timeout)
        if frame is None:
            self._reader.refresh()
        return frame

    @property
    def ended(self) -> bool:
        """A file source reached its end (not looping) and the pipeline has taken every frame."""
        return self._ended_at_stop or self._slot.drained

    @property
    def state(self) -> str:
        """One of "opening", "streaming", "stalled", "reconnecting", "ended", "stopped"."""
        self._reader.refresh()
        state = self._status.state
        return "ended" if state != "stopped" and self.ended else state

    @property
    def description(self) -> str:
        """What was opened, e.g. "/dev/video0 MJPG 1280x720@30"; never credentials."""
        return self._status.description
