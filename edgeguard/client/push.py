"""`edgeguard push`: a camera's frames sent to a daemon's push camera (`POST /upload_frame/<name>`).

For a camera the daemon cannot reach (behind NAT, on another board): this
reads it with the same sources as `edgeguard run` (a USB index, a URL, a video
file played in real time), keeps only the newest frame, shrinks it to
`--width`, encodes it as JPEG and uploads at most `--fps` frames a second over
one kept-alive HTTP(S) connection with the camera's bearer token.

It never gives up on the server: an unreachable server or a 5xx answer is
retried with an exponential backoff (1 s ... 30 s), a 429 waits as long as
Retry-After says, and a refused frame (400, 413) is counted and skipped.  Only
answers that no retry can fix stop it, with exit code 2: 401 (a wrong token,
or no push camera of that name: the daemon answers both alike) and 404.  The
end of a video file or SIGTERM/SIGINT ends it with 0.  The token is read
from a file that others may not read, and never logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import ssl
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import cv2
import numpy as np

from ..capture import FrameSource, SourceError, parse_source, redact
from ..common.files import open_regular
from ..common.text import printable
from ..config import CameraConfig

log = logging.getLogger(__name__)

BACKOFF = (1.0, 30.0)  # first and longest wait after the server was unreachable or failed, seconds
REPORT_EVERY = 60.0  # seconds between two lines of figures
TIMEOUT = 10.0  # seconds to connect, and to wait for an answer
READ_WAIT = 0.5  # seconds to wait for a frame before looking at the clock and the source again
MAX_RETRY_AFTER = 300.0
EX_REFUSED = 2  # wrong token, camera or option: no retry can fix it


class PushError(Exception):
    """What no retry can fix (a wrong token, camera, option or token file); the message says which."""


@dataclass(frozen=True)
class PushOptions:
    url: str  # the daemon's dashboard, e.g. http://192.168.1.20:8780
    camera: str  # the push camera's name there
    token_file: Path
    source: str = "0"
    width: int = 640
    quality: int = 80
    fps: float = 5.0
    loop: bool = False  # a video file starts again at its end


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str  # the server's reason for a refusal, as it said it
    retry_after: float  # seconds, from Retry-After (1 when it says none)


def run_push(options: PushOptions) -> int:
    """Push frames until the source ends or SIGTERM/SIGINT; the exit code (2: wrong token, camera, option)."""
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    uploader: Uploader | None = None
    frames: FrameSource | None = None
    try:
        _check(options)
        uploader = Uploader(options.url, options.camera, read_token(options.token_file))
        frames = FrameSource(
            CameraConfig(name=options.camera, source=options.source, loop=options.loop), realtime=True
        )
        frames.start()
        return PushClient(options, uploader, frames).run(stop)
    except PushError as exc:
        print(f"edgeguard push: {exc}", file=sys.stderr)
        return EX_REFUSED
    except SourceError as exc:
        print(f"edgeguard push: {exc}", file=sys.stderr)
        return 1
    finally:
        if frames is not None:
            frames.stop()
        if uploader is not None:
            uploader.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _check(options: PushOptions) -> None:
    if not 16 <= options.width <= 7680:
        raise PushError(f"--width must be 16 to 7680 pixels, got {options.width}")
    if not 1 <= options.quality <= 100:
        raise PushError(f"--quality must be 1 to 100, got {options.quality}")
    if not 0 < options.fps <= 120:
        raise PushError(f"--fps must be above 0 and at most 120, got {options.fps:g}")
    if parse_source(options.source).kind == "push":
        raise PushError("--source push would read from this program itself: give a camera, URL or video file")


def read_token(path: Path) -> str:
    """The bearer token in `path`; PushError if others may read the file, or it is unreadable or empty."""
    try:
        with open_regular(path) as fh:
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read()
    except OSError as exc:
        raise PushError(f"{path}: cannot read the token file: {exc.strerror or exc}") from None
    if mode & stat.S_IRWXO:
        raise PushError(f"{path}: the token file is readable by other users; run 'chmod o-rwx {path}'")
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise PushError(f"{path}: the token file must hold the token as ASCII text") from None
    if not token:
        raise PushError(f"{path}: the token file is empty: copy the camera's token from the daemon into it")
    return token


def encode_frame(image: np.ndarray, width: int, quality: int) -> bytes:
    """The frame shrunk to at most `width` pixels wide, as a JPEG of `quality`."""
    height, current = image.shape[:2]
    if current > width:
        image = cv2.resize(
            image, (width, max(1, round(height * width / current))), interpolation=cv2.INTER_AREA
        )
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV cannot encode a {current}x{height} frame as JPEG")
    return jpeg.tobytes()


class Uploader:
    """One kept-alive HTTP(S) connection to the server's upload address for one camera."""

    def __init__(self, url: str, camera: str, token: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PushError(f"--url must be http://host:port or https://host:port, got {redact(url)}")
        try:
            self._port = parts.port
        except ValueError:
            raise PushError(f"--url has a wrong port: {redact(url)}") from None
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self.path = parts.path.rstrip("/") + "/upload_frame/" + quote(camera, safe="")
        self.where = redact(f"{parts.scheme}://{parts.netloc}{self.path}")
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
        self._connection: http.client.HTTPConnection | None = None

    def send(self, jpeg: bytes) -> Reply:
        """POST one frame; OSError or HTTPException when the server cannot be reached or breaks off."""
        reused = self._connection is not None
        try:
            return self._post(jpeg)
        except (ConnectionError, http.client.BadStatusLine):
            if not reused:
                raise
        return self._post(jpeg)  # the server closed the idle kept-alive connection: once more on a new one

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _post(self, jpeg: bytes) -> Reply:
        if self._connection is None:
            self._connection = self._connect()
        try:
            self._connection.request("POST", self.path, body=jpeg, headers=self._headers)
            response = self._connection.getresponse()
            body = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        return Reply(response.status, _reason(body), _retry_after(response.getheader("Retry-After")))

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT)


def _reason(body: bytes) -> str:
    """The server's reason from its JSON answer, else the start of what it sent (a proxy's error page)."""
    try:
        answer = json.loads(body)
        if isinstance(answer, dict):
            return printable(str(answer.get("reason", "")))
    except ValueError:
        pass
    return printable(body[:200].decode("utf-8", "replace").strip())


def _retry_after(header: str | None) -> float:
    try:
        seconds = float(header) if header else 1.0
    except ValueError:  # an HTTP date from a proxy: wait the least
        seconds = 1.0
    return min(max(seconds, 1.0), MAX_RETRY_AFTER)


class PushClient:
    """The loop: the newest frame, at most `fps` a second, to the server; the figures logged every minute."""

    def __init__(self, options: PushOptions, uploader: Uploader, frames: FrameSource) -> None:
        self._options = options
        self._uploader = uploader
        self._frames = frames
        self._delay = BACKOFF[0]
        self._down = False  # the server was unreachable or failing, and said so in the log
        self._connected = False
        self._warned: set[int] = set()
        self.sent = self.taken = self.refused = self.reconnects = 0

    def run(self, stop: threading.Event) -> int:
        """Push until the source ends or `stop` is set (0); PushError for a wrong token or camera."""
        interval = 1.0 / self._options.fps
        next_send = time.monotonic()
        next_report = next_send + REPORT_EVERY
        log.info(
            "pushing %s to %s at up to %g frames a second",
            redact(self._options.source),
            self._uploader.where,
            self._options.fps,
        )
        while not stop.wait(max(0.0, next_send - time.monotonic())):
            if time.monotonic() >= next_report:
                self._report()
                next_report += REPORT_EVERY
            frame = self._frames.read(READ_WAIT)
            if frame is None:
                if self._frames.ended:  # the end of a video file (capture logs it)
                    break
                continue
            next_send = time.monotonic() + interval
            self._push(encode_frame(frame.image, self._options.width, self._options.quality), stop)
        self._report()
        return 0

    def _push(self, jpeg: bytes, stop: threading.Event) -> None:
        try:
            reply = self._uploader.send(jpeg)
        except (OSError, http.client.HTTPException) as exc:
            self._back_off(f"cannot reach {self._uploader.where} ({exc or type(exc).__name__})", stop)
            return
        self.sent += 1
        if reply.status >= 500:
            self.refused += 1
            self._back_off(f"{self._uploader.where} answered {reply.status} ({reply.reason})", stop)
            return
        self._delay = BACKOFF[0]
        if self._down or not self._connected:
            log.info("%s %s", "reached again" if self._connected else "reached", self._uploader.where)
            self._down, self._connected = False, True
        if reply.status == 200:
            self.taken += 1
            return
        self.refused += 1
        if reply.status in (401, 404):
            raise PushError(_fatal(reply, self._options.camera, self._uploader.where))
        if reply.status == 429:
            log.debug("%s: 429 (%s); waiting %g s", self._uploader.where, reply.reason, reply.retry_after)
            stop.wait(reply.retry_after)
        elif reply.status not in self._warned:
            self._warned.add(reply.status)
            log.warning(
                "%s refused a frame (%d): %s; going on (logged once)",
                self._uploader.where,
                reply.status,
                reply.reason,
            )

    def _back_off(self, what: str, stop: threading.Event) -> None:
        self.reconnects += 1
        self._uploader.close()
        if self._down:
            log.debug("%s; next attempt in %g s", what, self._delay)
        else:
            log.warning("%s; retrying with backoff up to %g s", what, BACKOFF[1])
            self._down = True
        stop.wait(self._delay)
        self._delay = min(self._delay * 2, BACKOFF[1])

    def _report(self) -> None:
        log.info(
            "push to %s: %d frames sent, %d taken, %d refused, %d reconnects",
            self._uploader.where,
            self.sent,
            self.taken,
            self.refused,
            self.reconnects,
        )


def _fatal(reply: Reply, camera: str, where: str) -> str:
    if reply.status == 401:
        return (
            f"{where} refused the token for camera {camera!r} (401: {reply.reason}): give --token-file the "
            f"daemon's credential edgeguard_push_<name> or its file push_tokens/{camera}.token, and check "
            '--camera and that the camera has source = "push" in the daemon\'s config'
        )
    return (
        f"{where} has no push camera {camera!r} (404: {reply.reason}): check --camera, --url, and that the "
        'camera has source = "push" in the daemon\'s config'
    )
