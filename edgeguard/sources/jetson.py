"""Jetson CSI cameras through GStreamer's nvarguscamerasrc (`source = "jetson-csi"` or `"jetson-csi:1"`)."""

from __future__ import annotations

import cv2

from ..config import CameraConfig
from .base import OpenFailed, SourceError, VideoInput

_HELP = (
    "the jetson-csi source needs OpenCV built with GStreamer support, which the pip wheels lack: "
    "use the JetPack system OpenCV (python3-opencv) from a venv created with "
    "'python3 -m venv --system-site-packages' and without opencv-python installed in it"
)


def has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def check_jetson() -> None:
    if not has_gstreamer():
        raise SourceError(_HELP)


def jetson_pipeline(sensor_id: int, width: int, height: int, fps: int) -> str:
    """The GStreamer pipeline for a Jetson CSI camera, ending in BGR frames for OpenCV."""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1, format=NV12 ! "
        "nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def open_jetson(sensor: str, cfg: CameraConfig) -> tuple[VideoInput, str]:
    cap = cv2.VideoCapture(jetson_pipeline(int(sensor), cfg.width, cfg.height, cfg.fps), cv2.CAP_GSTREAMER)
    if not cap.isOpened():
        cap.release()
        raise OpenFailed(f"cannot open Jetson CSI sensor {sensor} (is nvargus-daemon running?)")
    return cap, f"jetson-csi:{sensor} {cfg.width}x{cfg.height}@{cfg.fps}"
