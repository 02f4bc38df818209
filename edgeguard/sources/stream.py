"""Network streams: IP cameras and CCTV recorders over RTSP, HTTP (MJPEG) or HTTPS, through FFmpeg."""

from __future__ import annotations

import os
import re

import cv2

from ..config import CameraConfig
from .base import BACKEND_TIMEOUT_GRACE, OpenFailed, VideoInput

URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
# name=value pairs whose value is hidden: user names, passwords (pass, pwd, psw, passwd, loginpas ...),
# tokens, keys, auth, signatures, secrets; at the start of the query or path, or after ?, &, ;, / or _.
_SECRET_PAIR = re.compile(
    r"(?<![A-Za-z0-9])(?P<key>[A-Za-z_]*(?:pass|pwd|psw|secret|token|key|auth|sig|user|usr|login)[A-Za-z_]*)"
    r"=(?P<value>[^&;]*)",
    re.IGNORECASE,
)


def open_stream(url: str, cfg: CameraConfig) -> tuple[VideoInput, str]:
    """Open the stream with open and read timeouts; the URL (without credentials) and size."""
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
        raise OpenFailed(f"cannot open stream {redact(url)}")
    size = f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    return cap, f"{redact(url)} {size}"


def redact(source: str) -> str:
    """The source as it may be shown or logged: the one rule for every place a camera's source appears.

    Dropped: the user information before the host (everything up to the last
    "@" before the first "/", so a password with "#" or "@" goes with it).
    Hidden: the value of every name=value pair, in the query or the path, whose name
    looks like a user, password, token, key or signature (up to the next "&"
    or ";": a value with "#" or "@", or path forms joined by "_", go whole).
    Anything that is not a URL (a device, a file) is shown as it is.
    """
    scheme, sep, rest = source.partition("://")
    if not sep:
        return source
    authority, slash, tail = rest.partition("/")
    authority = authority.rpartition("@")[2]
    return _SECRET_PAIR.sub(r"\g<key>=***", f"{scheme}://{authority}{slash}{tail}")
