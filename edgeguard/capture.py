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
  thread is a *supervisor*: for each attempt it starts a `_Connection`, a
  thread that opens the capture, reads it in a loop and overwrites the slot
  with each new frame (newest wins; the pipeline never works through a
  backlog).  The supervisor watches the connection: when the capture cannot be
  opened, reading fails, or no frame came for `read_timeout` seconds
  ("stalled"), it *abandons* the connection and opens a new one after an
  exponential backoff (1 s, 2 s, 4 s ... 30 s).  An abandoned connection
  delivers nothing more and releases its capture itself as soon as its blocking
  call returns; FFmpeg streams get a read timeout a little longer than ours so
  that this happens soon after the stall was noticed.

Frame numbers: for files, `Frame.number` is the position in the file (0 is
the first frame) and `pos_ms` its timestamp, so events can be found in the
footage; with `loop = true` both start again at 0 on each pass.  For live
sources `number` counts frames delivered since `start()` and `pos_ms` is None.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeGuard
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import cv2
import numpy as np

from .config import CameraConfig

log = logging.getLogger(__name__)

DEFAULT_BACKOFF = (1.0, 30.0)  # first and longest wait between reconnect attempts, seconds
STOP_TIMEOUT = 2.0  # stop() returns after at most about this long
MAX_BAD_READS = 10  # consecutive failed reads before a file counts as ended or a stream as lost
BAD_FRAME_LOG_EVERY = 100  # warn about skipped frames on the first and then every Nth
# Backend timeouts are this much longer than our own watchdog's, so that the
# watchdog notices a stall first and the backend frees the abandoned thread soon after.
BACKEND_TIMEOUT_GRACE = 2.0
_WATCH_INTERVAL = 0.05  # how often the supervisor looks at its connection, seconds

URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
_SECRET_QUERY_KEYS = re.compile(r"pass|pwd|secret|token|key|auth|sig", re.IGNORECASE)
_PICAMERA2_HELP = (
    "the picamera2 source needs the Picamera2 library: run 'sudo apt install python3-picamera2' "
    "and create the venv with 'python3 -m venv --system-site-packages' so that it can import it"
)
_GSTREAMER_HELP = (
    "the jetson-csi source needs OpenCV built with GStreamer support, which the pip wheels lack: "
    "use the JetPack system OpenCV (python3-opencv) from a venv created with "
    "'python3 -m venv --system-site-packages' and without opencv-python installed in it"
)


class SourceError(Exception):
    """The source can never work as configured (missing file, library or backend)."""


class _OpenFailed(Exception):
    """This attempt to open a live source failed; a later one may succeed."""


@dataclass(frozen=True, eq=False)  # eq=False: images are compared by identity, not pixel by pixel
class Frame:
    """One image from the source, with where and when it was taken."""

    image: np.ndarray  # BGR uint8, H x W x 3
    number: int  # files: position in the file (0 = first frame); live: count since start()
    pos_ms: float | None  # files: timestamp in the file; live: None
    time: float  # time.time() when the frame was read


class _Capture(Protocol):
    """What the reader needs of a capture: cv2.VideoCapture has it, Picamera2 gets a wrapper."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


# ---------------------------------------------------------------- source strings


@dataclass(frozen=True)
class _SourceSpec:
    kind: str  # "usb", "stream", "picamera2", "jetson", "file"
    target: str  # device, URL, path, or camera/sensor number as text


def _parse_source(source: str) -> _SourceSpec:
    text = source.strip()
    lower = text.lower()
    if text.isdigit() or text.startswith("/dev/"):
        return _SourceSpec("usb", text)
    scheme, sep, _ = lower.partition("://")
    if sep and scheme in URL_SCHEMES:
        return _SourceSpec("stream", text)
    for kind, name in (("picamera2", "picamera2"), ("jetson", "jetson-csi")):
        if lower == name:
            return _SourceSpec(kind, "0")
        if lower.startswith(name + ":") and lower[len(name) + 1 :].isdigit():
            return _SourceSpec(kind, lower[len(name) + 1 :])
    return _SourceSpec("file", text)


def redact(source: str) -> str:
    """The source without credentials: no user:password@, no password or token query values."""
    if "://" not in source:
        return source
    try:
        parts = urlsplit(source)
    except ValueError:  # e.g. a broken [IPv6] host: show nothing that could be a secret
        return source.partition("://")[0] + "://***"
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [(k, "***" if _SECRET_QUERY_KEYS.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _fourcc_text(code: float) -> str:
    value = int(code)
    return "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4)).strip("\0 ")


def _has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def _check_source(spec: _SourceSpec, cfg: CameraConfig) -> None:
    """Raise SourceError now for a source that no retry can fix."""
    if spec.kind == "file" and not Path(spec.target).expanduser().is_file():
        raise SourceError(f"video file not found: {spec.target}")
    if spec.kind == "usb" and cfg.fourcc and len(cfg.fourcc) != 4:
        raise SourceError(f"camera fourcc must be 4 characters such as MJPG or YUYV, got {cfg.fourcc!r}")
    if spec.kind == "picamera2":
        try:
            importlib.import_module("picamera2")
        except ImportError as exc:
            raise SourceError(f"{_PICAMERA2_HELP} ({exc})") from None
    if spec.kind == "jetson" and not _has_gstreamer():
        raise SourceError(_GSTREAMER_HELP)


# ---------------------------------------------------------------- opening captures


def _open_usb(device: str, cfg: CameraConfig) -> tuple[_Capture, str]:
    cap = cv2.VideoCapture(int(device) if device.isdigit() else device, cv2.CAP_V4L2)
    if not cap.isOpened():
        cap.release()
        raise _OpenFailed(f"cannot open camera {device}")
    # The order matters to some drivers: the pixel format first, then the size.
    if cfg.fourcc:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*cfg.fourcc))
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
    cap.set(cv2.CAP_PROP_FPS, cfg.fps)
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    # What the driver accepted, which may differ from what was asked.
    size = f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    mode = f"{size}@{cap.get(cv2.CAP_PROP_FPS):g}"
    fourcc = _fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
    return cap, " ".join(part for part in (device, fourcc, mode) if part)


def _open_stream(url: str, cfg: CameraConfig) -> tuple[_Capture, str]:
    if url.lower().startswith("rtsp"):
        # UDP loses packets (grey smeared frames) on Wi-Fi; an explicit setting wins.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int((cfg.read_timeout + BACKEND_TIMEOUT_GRACE) * 1000),
    ]  # fmt: skip
    cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    if not cap.isOpened():
        cap.release()
        raise _OpenFailed(f"cannot open stream {redact(url)}")
    size = f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    return cap, f"{redact(url)} {size}"


class _Picamera2Capture:
    """A Raspberry Pi CSI camera through Picamera2, read like a cv2.VideoCapture."""

    def __init__(self, camera_num: int, cfg: CameraConfig) -> None:
        from picamera2 import Picamera2  # imported once already by _check_source

        try:
            self._camera = Picamera2(camera_num)
        except Exception as exc:  # Picamera2 raises IndexError, RuntimeError ... for "no camera"
            raise _OpenFailed(f"cannot open CSI camera {camera_num}: {exc}") from exc
        try:
            # Picamera2's "RGB888" is stored B, G, R: what OpenCV calls BGR.
            config = self._camera.create_video_configuration(
                main={"size": (cfg.width, cfg.height), "format": "RGB888"},
                controls={"FrameRate": cfg.fps},
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:
            self._camera.close()
            raise _OpenFailed(f"cannot start CSI camera {camera_num}: {exc}") from exc

    def read(self) -> tuple[bool, np.ndarray | None]:
        return True, self._camera.capture_array("main")

    def release(self) -> None:
        try:
            self._camera.stop()
        finally:
            self._camera.close()


def _open_picamera2(camera: str, cfg: CameraConfig) -> tuple[_Capture, str]:
    return _Picamera2Capture(int(camera), cfg), f"picamera2:{camera} RGB888 {cfg.width}x{cfg.height}@{cfg.fps}"


def jetson_pipeline(sensor_id: int, width: int, height: int, fps: int) -> str:
    """The GStreamer pipeline for a Jetson CSI camera, ending in BGR frames for OpenCV."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1, format=NV12 ! "
        "nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def _open_jetson(sensor: str, cfg: CameraConfig) -> tuple[_Capture, str]:
    cap = cv2.VideoCapture(jetson_pipeline(int(sensor), cfg.width, cfg.height, cfg.fps), cv2.CAP_GSTREAMER)
    if not cap.isOpened():
        cap.release()
        raise _OpenFailed(f"cannot open Jetson CSI sensor {sensor} (is nvargus-daemon running?)")
    return cap, f"jetson-csi:{sensor} {cfg.width}x{cfg.height}@{cfg.fps}"


_LIVE_OPENERS: dict[str, Callable[[str, CameraConfig], tuple[_Capture, str]]] = {
    "usb": _open_usb,
    "stream": _open_stream,
    "picamera2": _open_picamera2,
    "jetson": _open_jetson,
}


@dataclass(frozen=True)
class _VideoFile:
    cap: cv2.VideoCapture
    fps: float  # 0 if the file does not say
    frame_count: int  # 0 if the file does not say
    description: str


def _open_file(path: str) -> _VideoFile:
    """Open a video file; SourceError if OpenCV cannot read it."""
    cap = cv2.VideoCapture(str(Path(path).expanduser()), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot read video file {path}: not a video, or OpenCV lacks FFmpeg or the codec")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else 0.0
    count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))  # raw streams report nonsense
    size = f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    frames = f" ({count} frames)" if count else ""
    return _VideoFile(cap, fps, count, f"{path} {size}@{fps:.4g}{frames}")


def _frame_number(pos_ms: float, fps: float, previous: int) -> int:
    """The position in the file of the frame just read (0 = first frame).

    From its timestamp, because CAP_PROP_POS_FRAMES only counts decoded frames:
    after frames the decoder dropped (a damaged file) it is off by as many.  At
    least one more than the previous frame, which also covers files whose frames
    carry no timestamps (every one reads 0 ms).
    """
    return max(previous + 1, round(pos_ms * fps / 1000)) if fps else previous + 1


# ---------------------------------------------------------------- frame checks


def _usable(image: object, shape: tuple[int, ...] | None) -> TypeGuard[np.ndarray]:
    """A BGR uint8 image, of `shape` when given (the shape of the capture's first frame)."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.size > 0
        and (shape is None or image.shape == shape)
    )


class _BadFrames:
    """Counts unusable frames and warns on the first and then every BAD_FRAME_LOG_EVERY-th."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.count = 0

    def skipped(self, n: int = 1) -> None:
        before, self.count = self.count, self.count + n
        if before == 0 or before // BAD_FRAME_LOG_EVERY != self.count // BAD_FRAME_LOG_EVERY:
            log.warning("camera %s: skipped unreadable or malformed frames (%d so far)", self._name, self.count)


# ---------------------------------------------------------------- hand-over slot


class _Slot:
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


# ---------------------------------------------------------------- live connections


class _Connection:
    """One attempt at a live source: a thread that opens the capture and reads it until told to stop.

    Once `abandon()`ed it delivers nothing more, and it releases the capture
    itself when its current (possibly hanging) call returns.
    """

    def __init__(self, open_capture: Callable[[], _Capture], deliver: Callable[[np.ndarray], None], name: str) -> None:
        self._open_capture = open_capture
        self._deliver = deliver
        self._bad = _BadFrames(name)
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
        except _OpenFailed as exc:
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

    def _read_until_abandoned(self, cap: _Capture) -> None:
        shape: tuple[int, ...] | None = None
        failures = 0
        while not self.abandoned:
            try:
                ok, image = cap.read()
            except Exception as exc:  # e.g. Picamera2 after the camera went away
                self.error = f"read failed: {exc!r}"
                return
            if ok and _usable(image, shape):
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


# ---------------------------------------------------------------- the frame source


class FrameSource:
    """Frames for the pipeline from the configured source; see the module docstring."""

    def __init__(
        self,
        cfg: CameraConfig,
        source: str | None = None,
        realtime: bool | None = None,
        *,
        backoff: tuple[float, float] = DEFAULT_BACKOFF,
    ) -> None:
        self._cfg = cfg
        self._source = cfg.source if source is None else source
        self._spec = _parse_source(self._source)
        self._realtime = cfg.realtime if realtime is None else realtime
        self._backoff = backoff
        self._slot = _Slot()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = "opening"
        self._public_source = redact(self._source)
        self._description = self._public_source
        self._logged_description = ""
        self._count = 0  # live frames delivered since start()
        self._thread: threading.Thread | None = None
        self._ended_at_stop = False

    # -- public

    def start(self) -> None:
        """Check the source and start reading; SourceError if it can never work."""
        if self._thread is not None:
            raise RuntimeError("FrameSource.start() called twice")
        _check_source(self._spec, self._cfg)
        if self._spec.kind == "file":
            video = _open_file(self._spec.target)
            self._opened(video.description)
            self._thread = threading.Thread(
                target=self._run_file, args=(video,), name=f"capture-{self._cfg.name}", daemon=True
            )
        else:
            self._thread = threading.Thread(target=self._run_live, name=f"capture-{self._cfg.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and release the capture; returns within about STOP_TIMEOUT seconds."""
        self._stop.set()
        self._ended_at_stop = self._slot.drained
        self._slot.cancel()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
        self._set_state("stopped")

    def read(self, timeout: float) -> Frame | None:
        """The next frame, waiting up to `timeout` seconds; None if none came, at the end, or stopped."""
        return self._slot.take(timeout)

    @property
    def ended(self) -> bool:
        """A file source reached its end (not looping) and the pipeline has taken every frame."""
        return self._ended_at_stop or self._slot.drained

    @property
    def state(self) -> str:
        """One of "opening", "streaming", "stalled", "reconnecting", "ended", "stopped"."""
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

    def _run_file(self, video: _VideoFile) -> None:
        try:
            while self._play_file(video) and self._cfg.loop and not self._stop.is_set():
                log.debug("camera %s: end of file, starting again at frame 0", self._cfg.name)
                video.cap.release()
                video = _open_file(self._spec.target)
        except SourceError as exc:  # the file vanished or changed between passes
            log.error("camera %s: %s", self._cfg.name, exc)
        finally:
            video.cap.release()
        self._slot.finish()
        if self._slot.wait_drained():
            self._set_state("ended", f"end of video file {self._spec.target}")

    def _play_file(self, video: _VideoFile) -> int:
        """Deliver one pass over the file; how many frames were delivered."""
        fps = video.fps or float(self._cfg.fps)
        playing = f"playing {video.description}" + (" in real time" if self._realtime else "")
        bad = _BadFrames(self._cfg.name)
        shape: tuple[int, ...] | None = None
        start: float | None = None  # real time of frame 0, once the pipeline took the first frame
        number = -1
        delivered = 0
        while not self._stop.is_set():
            image = self._next_file_image(video.cap, shape)
            if image is None:
                break
            shape = image.shape
            pos_ms = video.cap.get(cv2.CAP_PROP_POS_MSEC)
            previous, number = number, _frame_number(pos_ms, video.fps, number)
            if number > previous + 1:  # the frames in between were unreadable or dropped by the decoder
                bad.skipped(number - previous - 1)
            if self._realtime and start is not None and self._stop.wait(max(0.0, start + number / fps - time.monotonic())):
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

    @staticmethod
    def _next_file_image(cap: cv2.VideoCapture, shape: tuple[int, ...] | None) -> np.ndarray | None:
        """The next usable image, trying past up to MAX_BAD_READS broken ones; None at the end."""
        for _ in range(MAX_BAD_READS):
            ok, image = cap.read()
            if ok and _usable(image, shape):
                return image
        return None

    # -- live sources

    def _run_live(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            connection = _Connection(self._open_live, self._deliver_live, self._cfg.name)
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

    def _open_live(self) -> _Capture:
        """Open the live source (on a connection thread) and record what the driver gave."""
        capture, description = _LIVE_OPENERS[self._spec.kind](self._spec.target, self._cfg)
        self._opened(description)
        return capture

    def _watch(self, connection: _Connection) -> str:
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
            message = f"{self._public_source} {what} ({reason}); retrying with backoff up to {self._backoff[1]:g} s"
            self._set_state("reconnecting", message, logging.WARNING)

    def _release_on_stop(self, connection: _Connection) -> None:
        if not connection.done.wait(STOP_TIMEOUT * 0.75):
            log.warning(
                "camera %s: capture still blocked in a read; it is released when the read returns",
                self._cfg.name,
            )
