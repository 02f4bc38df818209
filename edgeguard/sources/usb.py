"""USB and V4L2 cameras (`source = "0"` or `"/dev/video0"`)."""

from __future__ import annotations

from pathlib import Path

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


def video_devices(dev: Path = Path("/dev")) -> list[str]:
    """The V4L2 device nodes on this machine, in order (/dev/video0, /dev/video2 ...)."""
    found = sorted(dev.glob("video*"), key=lambda p: (len(p.name), p.name))
    return [str(p) for p in found]


def missing_camera(device: str, dev: Path = Path("/dev")) -> str:
    """What is there instead of camera `device`, in words, for someone setting up a device."""
    devices = video_devices(dev)
    if not devices:
        return "this machine has no video device at all (no /dev/video*)"
    return f"the video devices here are {', '.join(devices)}"


def ways_forward(device: str, dev: Path = Path("/dev")) -> str:
    """The first-run advice when camera `device` cannot be opened: what was tried and three ways on."""
    return (
        f"no camera at {device}: {missing_camera(device, dev)}. Three ways on: plug a USB camera in "
        "(it is retried by itself); or set source in edgeguard.toml (a device, an rtsp:// URL, a video "
        "file; 'edgeguard example-config > edgeguard.toml' writes one with every key); or try it on a "
        "video file: 'edgeguard run --source VIDEO --loop'."
    )


def device_node(device: str) -> Path:
    """The V4L2 node a USB source names: "0" is /dev/video0."""
    return Path(device) if device.startswith("/dev/") else Path(f"/dev/video{device}")
