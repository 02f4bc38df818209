"""Network streams: IP cameras and CCTV recorders over RTSP, HTTP (MJPEG) or HTTPS, through FFmpeg."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import cv2

from ..config import CameraConfig
from .base import BACKEND_TIMEOUT_GRACE, OpenFailed, VideoInput

URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
_SECRET_QUERY_KEYS = re.compile(r"pass|pwd|secret|token|key|auth|sig", re.IGNORECASE)


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
    """The source without credentials: no user:password@, no password or token query values."""
    if "://" not in source:
        return source
    try:
        parts = urlsplit(source)
    except ValueError:  # e.g. a broken [IPv6] host: show nothing that could be a secret
        return source.partition("://")[0] + "://***"
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [
            (k, "***" if _SECRET_QUERY_KEYS.search(k) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
