"""Raspberry Pi CSI cameras through the Picamera2 library (`source = "picamera2"` or `"picamera2:1"`)."""

from __future__ import annotations

import importlib

import numpy as np

from ..config import CameraConfig
from .base import OpenFailed, SourceError, VideoInput

_HELP = (
    "the picamera2 source needs the Picamera2 library: run 'sudo apt install python3-picamera2' "
    "and create the venv with 'python3 -m venv --system-site-packages' so that it can import it"
)


def check_picamera2() -> None:
    try:
        importlib.import_module("picamera2")
    except ImportError as exc:
        raise SourceError(f"{_HELP} ({exc})") from None


class Picamera2Capture:
    """A CSI camera read like a cv2.VideoCapture."""

    def __init__(self, camera_num: int, cfg: CameraConfig) -> None:
        from picamera2 import Picamera2  # imported once already by check_picamera2

        try:
            self._camera = Picamera2(camera_num)
        except Exception as exc:  # Picamera2 raises IndexError, RuntimeError ... for "no camera"
            raise OpenFailed(f"cannot open CSI camera {camera_num}: {exc}") from exc
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
            raise OpenFailed(f"cannot start CSI camera {camera_num}: {exc}") from exc

    def read(self) -> tuple[bool, np.ndarray | None]:
        return True, self._camera.capture_array("main")

    def release(self) -> None:
        try:
            self._camera.stop()
        finally:
            self._camera.close()


def open_picamera2(camera: str, cfg: CameraConfig) -> tuple[VideoInput, str]:
    return Picamera2Capture(int(camera), cfg), f"picamera2:{camera} RGB888 {cfg.width}x{cfg.height}@{cfg.fps}"
