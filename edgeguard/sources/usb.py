"""USB and V4L2 cameras (`source = "0"` or `"/dev/video0"`)."""

from __future__ import annotations

import cv2

from ..config import CameraConfig
from .base import OpenFailed, SourceError, VideoInput


def check_usb(cfg: CameraConfig) -> None:
    if cfg.fourcc and len(cfg.fourcc) != 4:
        raise SourceError(f"camera fourcc must be 4 characters such as MJPG or YUYV, got {cfg.fourcc!r}")


def open_usb(device: str, cfg: CameraConfig) -> tuple[VideoInput, str]:
    """Open the camera with the configured pixel format, size and rate; what the driver gave, in words."""
    cap = cv2.VideoCapture(int(device) if device.isdigit() else device, cv2.CAP_V4L2)
    if not cap.isOpened():
        cap.release()
        raise OpenFailed(f"cannot open camera {device}")
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


def _fourcc_text(code: float) -> str:
    value = int(code)
    return "".join(chr((value >> (8 * i)) & 0xFF) for i in range(4)).strip("\0 ")
