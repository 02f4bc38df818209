"""Frames from a camera, a network stream or a video file, read on a thread of their own.

Threading model
---------------
`FrameSource.start()` checks what can be checked at once (the file exists,
Picamera2 imports, OpenCV has GStreamer) and raises `SourceError` if the source
can never work; then it starts one *reader thread*.  Frames reach the pipeline
through a one-frame slot that `read()` takes from.

* Video files: the reader thread opens the file, decodes it and puts each frame
  into the slot.  Not realtime, it waits until the pipeline has taken the
  previous frame, so every frame is delivered in order.  Realtime, it paces
  itself by the file's fps and overwrites a frame the pipeline has not taken
  yet, like a camera.

* Live sources (USB, CSI, RTSP/HTTP): a blocking `read()` of a capture can hang
  for a long time (a wedged stream, an unplugged camera), and a capture must not
  be released from another thread while it is inside `read()`.  So the reader
  thread is a *supervisor*: for each attempt it starts a `Connection`
  (edgeguard.sources.connection), a thread that opens the capture, reads it in a loop and overwrites the slot
  with each new frame (newest wins; the pipeline never works through a
  backlog).  The supervisor watches the connection: when the capture cannot be
  opened, reading fails, or no frame came for `read_timeout` seconds
  ("stalled"), it *abandons* the connection and opens a new one after an
  exponential backoff (1 s, 2 s, 4 s ... 30 s).  An abandoned connection
  delivers nothing more and releases its capture itself as soon as its blocking
  call returns; FFmpeg streams get a read timeout a little longer than ours so
  that this happens soon after the stall was noticed.

* Push cameras (edgeguard.sources.push): no reader thread.  `start()`
  attaches the source to the camera's `PushFeed`, and the web worker that
  received and decoded a frame puts it into the slot (newest wins).  The state
  is worked out from the time of the last pushed frame whenever it is asked
  for (or `read()` finds nothing), so it is right even while the pipeline is
  busy; a push camera never ends.

Frame numbers: for files, `Frame.number` is the position in the file (0 is
the first frame) and `pos_ms` its timestamp, so events can be found in the
footage; with `loop = true` both start again at 0 on each pass.  For live
and push sources `number` counts frames delivered since `start()` and `pos_ms`
is None.

Each kind of source has a module in edgeguard.sources that opens it (usb,
stream, picamera2, jetson, video_file, push); this module is what the rest of the
program uses: `open_source`, `FrameSource`, `Frame` and `SourceError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

import cv2
import numpy as np

from .config import CameraConfig
from .sources.base import BACKEND_TIMEOUT_GRACE, BadFrames, Frame, SourceError, VideoInput
from .sources.connection import Connection
from .sources.jetson import open_jetson
from .sources.picamera2 import open_picamera2
from .sources.push import PushFeed
from .sources.slot import FrameSlot
from .sources.spec import check_source, parse_source
from .sources.stream import open_stream, redact
from .sources.usb import open_usb
from .sources.video_file import VideoFile, frame_number, next_image, open_video_file

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = (1.0, 30.0)  # first and longest wait between reconnect attempts, seconds
STOP_TIMEOUT = 2.0  # stop() returns after at most about this long
_WATCH_INTERVAL = 0.05  # how often the supervisor looks at its connection, seconds

_LIVE_OPENERS: dict[str, Callable[[str, CameraConfig], tuple[VideoInput, str]]] = {
    "usb": open_usb,
    "stream": open_stream,
    "picamera2": open_picamera2,
    "jetson": open_jetson,
}


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
        self._source = cfg.source if source is None else source
        self._spec = parse_source(self._source)
        self._realtime = cfg.realtime if realtime is None else realtime
        self._backoff = backoff
        self._slot = FrameSlot()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = "opening"
        self._public_source = redact(self._source)
        self._description = self._public_source
        self._logged_description = ""
        self._count = 0  # live frames delivered since start()
        self._thread: threading.Thread | None = None
        self._started = False
        self._ended_at_stop = False
        self._feed = (
            push if self._spec.kind == "push" else None
        )  # a feed is ignored when --source overrides push
        self._push_path = "/upload_frame/" + quote(cfg.name, safe="")
        self._last_push: float | None = None  # time.monotonic() of the last pushed frame

    # -- public

    def start(self) -> None:
        """Check the source and start reading; SourceError if it can never work."""
        if self._started:
            raise RuntimeError("FrameSource.start() called twice")
        check_source(self._spec, self._cfg)
        if self._spec.kind == "push":
            self._start_push()
        elif self._spec.kind == "file":
            video = open_video_file(self._spec.target)
            self._opened(video.description)
            self._thread = threading.Thread(
                target=self._run_file, args=(video,), name=f"capture-{self._cfg.name}", daemon=True
            )
        else:
            self._thread = threading.Thread(
                target=self._run_live, name=f"capture-{self._cfg.name}", daemon=True
            )
        if self._thread is not None:
            self._thread.start()
        self._started = True

    def stop(self) -> None:
        """Stop reading and release the capture; returns within about STOP_TIMEOUT seconds."""
        self._stop.set()
        if self._feed is not None:
            self._feed.detach(self._deliver_push)
        self._ended_at_stop = self._slot.drained
        self._slot.cancel()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        self._set_state("stopped")

    def read(self, timeout: float) -> Frame | None:
        """The next frame, waiting up to `timeout` seconds; None if none came, at the end, or stopped."""
        frame = self._slot.take(timeout)
        if frame is None and self._feed is not None:
            self._push_stalled()
        return frame

    @property
    def ended(self) -> bool:
        """A file source reached its end (not looping) and the pipeline has taken every frame."""
        return self._ended_at_stop or self._slot.drained

    @property
    def state(self) -> str:
        """One of "opening", "streaming", "stalled", "reconnecting", "ended", "stopped"."""
        if self._feed is not None:
            self._push_stalled()
        with self._lock:
            state = self._state
        return "ended" if state != "stopped" and self.ended else state

    @property
    def description(self) -> str:
        """What was opened, e.g. "/dev/video0 MJPG 1280x720@30"; never credentials."""
        with self._lock:
            return self._description

    # -- state and logging

    def _set_state(self, state: str, message: str = "", level: int = logging.INFO) -> None:
        """Change the state, logging the change once (a retry in the same state logs nothing)."""
        with self._lock:
            if self._state == state or self._state == "stopped":
                return
            self._state = state
        if message:
            log.log(level, "camera %s: %s", self._cfg.name, message)

    def _opened(self, description: str) -> None:
        """Record what was opened; log it when it is new (the first time, or the driver chose differently)."""
        with self._lock:
            self._description = description
            new = description != self._logged_description
            self._logged_description = description
        if new:
            log.info("camera %s: opened %s", self._cfg.name, description)

    # -- video files

    def _run_file(self, video: VideoFile) -> None:
        try:
            while self._play_file(video) and self._cfg.loop and not self._stop.is_set():
                log.debug("camera %s: end of file, starting again at frame 0", self._cfg.name)
                video = self._rewound(video)
        except SourceError as exc:  # the file vanished or changed between passes
            log.error("camera %s: %s", self._cfg.name, exc)
        finally:
            video.cap.release()
        self._slot.finish()
        if self._slot.wait_drained():
            self._set_state("ended", f"end of video file {self._spec.target}")

    def _rewound(self, video: VideoFile) -> VideoFile:
        """The file at frame 0 again: by seeking, else opened anew.  Seeking first matters with several
        cameras: OpenCV opens FFmpeg captures one at a time, so a stream hanging in its open (a camera
        being reconnected) would hold up the reopening of this file for as long."""
        if video.cap.set(cv2.CAP_PROP_POS_FRAMES, 0) and video.cap.get(cv2.CAP_PROP_POS_FRAMES) == 0:
            return video
        video.cap.release()
        return open_video_file(self._spec.target)

    def _play_file(self, video: VideoFile) -> int:
        """Deliver one pass over the file; how many frames were delivered."""
        fps = video.fps or float(self._cfg.fps)
        playing = f"playing {video.description}" + (" in real time" if self._realtime else "")
        bad = BadFrames(self._cfg.name)
        shape: tuple[int, ...] | None = None
        start: float | None = None  # real time of frame 0, once the pipeline took the first frame
        number = -1
        delivered = 0
        while not self._stop.is_set():
            image = next_image(video.cap, shape)
            if image is None:
                break
            shape = image.shape
            pos_ms = video.cap.get(cv2.CAP_PROP_POS_MSEC)
            previous, number = number, frame_number(pos_ms, video.fps, number)
            if number > previous + 1:  # the frames in between were unreadable or dropped by the decoder
                bad.skipped(number - previous - 1)
            if (
                self._realtime
                and start is not None
                and self._stop.wait(max(0.0, start + number / fps - time.monotonic()))
            ):
                break
            if not self._slot.put(Frame(image, number, pos_ms, time.time()), wait=not self._realtime):
                break
            if self._realtime and start is None:
                # The replay clock starts when the pipeline takes its first frame, so
                # that a slow start-up does not skip the opening of the footage.
                if not self._slot.wait_drained():
                    break
                start = time.monotonic() - number / fps
            delivered += 1
            self._set_state("streaming", playing)
        if not self._stop.is_set() and 0 <= number < video.frame_count - 1:
            log.warning(
                "camera %s: %s ends unreadable after frame %d of %d",
                self._cfg.name, self._spec.target, number, video.frame_count,
            )  # fmt: skip
        return delivered

    # -- live sources

    def _run_live(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            connection = Connection(self._open_live, self._deliver_live, self._cfg.name)
            connection.start()
            reason = self._watch(connection)
            connection.abandon()
            if self._stop.is_set():
                self._release_on_stop(connection)
                return
            if connection.frames:
                delay = self._backoff[0]
            self._lost(reason, connection.opened.is_set(), delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._backoff[1])
            self._set_state("reconnecting", f"reopening {self._public_source}")

    def _open_live(self) -> VideoInput:
        """Open the live source (on a connection thread) and record what the driver gave."""
        capture, description = _LIVE_OPENERS[self._spec.kind](self._spec.target, self._cfg)
        self._opened(description)
        return capture

    def _watch(self, connection: Connection) -> str:
        """Wait until the connection fails, stalls, or stop() is called; why it ended."""
        open_deadline = time.monotonic() + self._cfg.open_timeout + BACKEND_TIMEOUT_GRACE
        while not self._stop.is_set():
            if connection.done.wait(_WATCH_INTERVAL):
                return connection.error
            if not connection.opened.is_set():
                if time.monotonic() > open_deadline:
                    return f"opening took longer than {self._cfg.open_timeout:g} s"
            elif time.monotonic() - connection.last_activity > self._cfg.read_timeout:
                return "stalled"
        return "stopped"

    def _deliver_live(self, image: np.ndarray) -> None:
        """Called by the connection thread for each good frame: replace whatever is in the slot."""
        with self._lock:
            number = self._count
            self._count += 1
        self._slot.put(Frame(image, number, None, time.time()), wait=False)
        self._set_state("streaming", f"streaming from {self._public_source}")

    def _lost(self, reason: str, was_open: bool, delay: float) -> None:
        """Log a failed or stalled connection: a warning when the state changes, else at debug level."""
        log.debug("camera %s: %s; next attempt in %g s", self._cfg.name, reason, delay)
        if reason == "stalled":
            message = f"no frame for {self._cfg.read_timeout:g} s from {self.description}; reopening"
            self._set_state("stalled", message, logging.WARNING)
        else:
            what = "lost" if was_open else "unavailable"
            message = (
                f"{self._public_source} {what} ({reason}); retrying with backoff up to {self._backoff[1]:g} s"
            )
            self._set_state("reconnecting", message, logging.WARNING)

    def _release_on_stop(self, connection: Connection) -> None:
        if not connection.done.wait(STOP_TIMEOUT * 0.75):
            log.warning(
                "camera %s: capture still blocked in a read; it is released when the read returns",
                self._cfg.name,
            )

    # -- push cameras

    def _start_push(self) -> None:
        if self._feed is None:
            raise SourceError(
                f"camera {self._cfg.name}: source push takes frames from the dashboard's server, "
                "but no push feed was given"
            )
        with self._lock:
            self._description = f"push {self._push_path} (waiting for pushed frames)"
        log.info("camera %s: waiting for pushed frames at %s", self._cfg.name, self._push_path)
        self._feed.attach(self._deliver_push)

    def _deliver_push(self, image: np.ndarray, arrived: float) -> int | None:
        """Called by a web worker for each decoded frame: replace whatever is in the slot; its number."""
        height, width = image.shape[:2]
        now = time.monotonic()
        with self._lock:
            if self._state == "stopped":
                return None
            number, self._count = self._count, self._count + 1
            gap = None if self._last_push is None else now - self._last_push
            self._last_push = now
            self._description = f"push {self._push_path} (last {width}x{height})"
            was, self._state = self._state, "streaming"
        if not self._slot.put(Frame(image, number, None, arrived), wait=False):
            return None
        if was == "opening":
            log.info("camera %s: receiving pushed frames (%dx%d)", self._cfg.name, width, height)
        elif gap is not None and gap > self._cfg.read_timeout:
            log.info("camera %s: pushed frames again after %.1f s without", self._cfg.name, gap)
        return number

    def _push_stalled(self) -> None:
        """Streaming becomes stalled once no frame was pushed for read_timeout; the change is logged once."""
        with self._lock:
            stalled = (
                self._state == "streaming"
                and self._last_push is not None
                and time.monotonic() - self._last_push > self._cfg.read_timeout
            )
            if stalled:
                self._state = "stalled"
        if stalled:
            log.warning(
                "camera %s: no pushed frame for %g s at %s",
                self._cfg.name,
                self._cfg.read_timeout,
                self._push_path,
            )
