"""Push cameras (`source = "push"`): JPEG frames POSTed to the dashboard's server at /upload_frame/<name>.

A camera that cannot be reached (behind NAT, a phone, a board running
`edgeguard push`) sends its frames instead of being read.  One `PushFeed` per
push camera sits between the two threads involved: the web server's worker
that received the request `offer()`s the body, and the camera's FrameSource,
while it runs, is attached as the feed's sink and hands frames to the
pipeline.  Everything that costs work happens on the web worker, in an order
that refuses the cheap way first: the rate (a token bucket of the camera's
fps, one second's burst), the body's size, the JPEG's own header (its SOF
marker gives the size, so a decompression bomb is refused before it is
decoded), and only then the decode.  The frame loop never decodes.

Each camera has its own bearer token, separate from dashboard logins: the
systemd credential `edgeguard_push_<name>` if there is one, else a file in the
state folder made on first use (`push_token`), which is copied to the camera.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..common.credentials import credential_path, read_secret
from ..common.ratelimit import EveryMinute
from ..config import CameraConfig, PushConfig

log = logging.getLogger("edgeguard.capture")

TOKEN_FOLDER = "push_tokens"
CREDENTIAL_PREFIX = "edgeguard_push_"
MIN_TOKEN_LENGTH = 16  # a token made here has 43 characters (32 random bytes)

# Receives a decoded frame and the time.time() it arrived; returns its frame number, None once stopped.
Sink = Callable[[np.ndarray, float], int | None]

_SOI = b"\xff\xd8\xff"
_EOI = b"\xff\xd9"
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn: markers without a length
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start of frame: every coding but DHT, JPG and DAC


class PushTokenError(OSError):
    """A push token that cannot be read or is empty; the message names the file."""


class NotJpeg(ValueError):
    """The bytes are not a JPEG whose header gives its size."""


@dataclass(frozen=True)
class PushAnswer:
    """What became of one pushed frame, as the endpoint answers it."""

    status: int  # the HTTP status: 200 taken, else why not
    taken: bool
    reason: str  # why it was refused ("" when taken)
    frame: int | None  # its frame number when taken
    retry_after: int = 0  # seconds a refused client should wait (429, 503)


@dataclass(frozen=True)
class PushStats:
    taken: int
    refused: Mapping[str, int]  # by kind: rate, too large, not a JPEG, too many pixels, damaged, not running


def push_token(camera_name: str, state_dir: Path) -> str:
    """The camera's bearer token: credential `edgeguard_push_<name>`, else
    `<state_dir>/push_tokens/<name>.token`, made on first use (edgeguard.common.credentials: 0600 in a
    0700 folder); PushTokenError naming the file if it is unreadable or empty."""
    credential = _credential_name(camera_name)
    path = _token_path(camera_name, state_dir)
    try:
        secret = read_secret(
            "push token",
            credential=credential,
            file=path,
            make=lambda: secrets.token_urlsafe(32).encode() + b"\n",
        )
    except OSError as exc:
        raise PushTokenError(str(exc)) from None
    assert secret is not None  # a file is given, and made when missing
    if secret.made:
        log.info("camera %s: new push token written to %s (copy it to the camera)", camera_name, path)
    where = str(path) if secret.where == str(path) else str(credential_path(credential))
    return _token_text(secret.value, where)


def push_token_location(camera_name: str, state_dir: Path) -> str:
    """Where the camera's token is, in words (for `edgeguard check`); nothing is read or made."""
    credential = _credential_name(camera_name)
    found = credential_path(credential)
    if found is not None and found.is_file():
        return f"credential {credential}"
    path = _token_path(camera_name, state_dir)
    return str(path) if path.exists() else f"{path} (made when the daemon starts)"


def _credential_name(camera_name: str) -> str:
    return CREDENTIAL_PREFIX + camera_name.replace(" ", "_")


def _token_path(camera_name: str, state_dir: Path) -> Path:
    return state_dir / TOKEN_FOLDER / f"{camera_name}.token"


def _token_text(data: bytes, where: str) -> str:
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise PushTokenError(f"{where}: the push token must be ASCII text") from None
    if not token:
        raise PushTokenError(
            f"{where}: the push token is empty: write one, or delete the file to have one made"
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise PushTokenError(
            f"{where}: the push token is too short ({len(token)} characters, at least "
            f"{MIN_TOKEN_LENGTH}): anyone could guess it; delete the file to have one made"
        )
    return token


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOF marker, without decoding; NotJpeg saying why not."""
    if not data.startswith(_SOI):
        raise NotJpeg("it does not start with FF D8 FF")
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise NotJpeg(f"no marker at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: the size would have come before
            break
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _SOF:
            if length < 7 or at + 9 > len(data):
                raise NotJpeg("its SOF marker is cut short")
            height, width = (
                int.from_bytes(data[at + 5 : at + 7], "big"),
                int.from_bytes(data[at + 7 : at + 9], "big"),
            )
            if not width or not height:
                raise NotJpeg("its SOF marker gives no size")
            return width, height
        if length < 2:
            raise NotJpeg(f"a marker of length {length} at byte {at}")
        at += 2 + length
    raise NotJpeg("no SOF marker giving the size")


class _Bucket:
    """A token bucket: `rate` frames a second on average, bursts of one second's worth."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._at = time.monotonic()

    def take(self) -> float:
        """Take one frame's token: 0.0 if there was one, else the seconds until there is."""
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class PushFeed:
    """Frames pushed for one camera: checked and decoded on the web worker, handed to the attached
    FrameSource."""

    def __init__(self, camera: CameraConfig, limits: PushConfig, token: str) -> None:
        self.camera = camera.name
        self._token = token.encode()
        self._max_bytes = limits.max_frame_kb * 1024
        self._max_pixels = limits.max_frame_pixels
        self._fps = camera.fps
        self._lock = threading.Lock()
        self._bucket = _Bucket(float(camera.fps))
        self._sink: Sink | None = None
        self._taken = 0
        self._refused: Counter[str] = Counter()
        self._warned = EveryMinute()  # kinds of refusal just logged as warnings

    @property
    def max_bytes(self) -> int:
        """The largest body taken (413 above it)."""
        return self._max_bytes

    def authorised(self, header: str | None) -> bool:
        """Whether an Authorization header is `Bearer <this camera's token>` (compared in constant time)."""
        scheme, _, token = (header or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def attach(self, sink: Sink) -> None:
        """Deliver frames to `sink` from now on (a FrameSource's start()); the newest sink wins."""
        with self._lock:
            self._sink = sink

    def detach(self, sink: Sink) -> None:
        """Deliver no more frames to `sink` (its stop()); once this returns, none is on its way to it."""
        with self._lock:
            if self._sink == sink:
                self._sink = None

    def offer(self, body: bytes) -> PushAnswer:
        """Check, decode and deliver one pushed JPEG; what became of it (see the module docstring for the
        order)."""
        arrived = time.time()
        with self._lock:
            running = self._sink is not None
            wait = self._bucket.take() if running else 0.0
        if not running:
            return self._refuse("not running", 503, "camera not running", retry_after=1)
        if wait:
            return self._refuse(
                "rate", 429, f"more than {self._fps} frames a second", retry_after=max(1, math.ceil(wait))
            )
        if len(body) > self._max_bytes:
            return self._refuse(
                "too large", 413, f"frame of {len(body)} bytes is over {self._max_bytes // 1024} KB"
            )
        try:
            width, height = jpeg_size(body)
        except NotJpeg as exc:
            return self._refuse("not a JPEG", 400, f"not a JPEG: {exc}")
        if width * height > self._max_pixels:
            return self._refuse(
                "too many pixels", 413, f"frame of {width}x{height} has more than {self._max_pixels} pixels"
            )
        image = self._decode(body)
        if image is None:
            return self._refuse(
                "damaged", 400, "damaged JPEG: it cannot be decoded or ends before its end marker"
            )
        return self._deliver(image, arrived)

    @property
    def stats(self) -> PushStats:
        with self._lock:
            return PushStats(self._taken, dict(self._refused))

    @staticmethod
    def _decode(body: bytes) -> np.ndarray | None:
        """The BGR image, or None for a damaged JPEG (libjpeg shows a cut-off file grey at the bottom: refuse
        it)."""
        if not body.rstrip(b"\x00").endswith(_EOI):
            return None
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        return image if image is not None and image.size else None

    def _deliver(self, image: np.ndarray, arrived: float) -> PushAnswer:
        with self._lock:  # held while delivering, so that no frame reaches a sink after detach() returned
            number = self._sink(image, arrived) if self._sink is not None else None
            if number is not None:
                self._taken += 1
        if number is None:
            return self._refuse("not running", 503, "camera not running", retry_after=1)
        return PushAnswer(200, True, "", number)

    def _refuse(self, kind: str, status: int, reason: str, retry_after: int = 0) -> PushAnswer:
        with self._lock:
            self._refused[kind] += 1
            count = self._refused[kind]
        if kind != "not running" and self._warned.due(kind):
            log.warning(
                "camera %s: refused a pushed frame (%d): %s (%d refused for this so far)",
                self.camera,
                status,
                reason,
                count,
            )
        else:
            log.debug("camera %s: refused a pushed frame (%d): %s", self.camera, status, reason)
        return PushAnswer(status, False, reason, None, retry_after)
