"""Video files (anything FFmpeg reads): opening one, and the position in the file of each frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .base import MAX_BAD_READS, SourceError, usable


@dataclass(frozen=True)
class VideoFile:
    cap: cv2.VideoCapture
    fps: float  # 0 if the file does not say
    frame_count: int  # 0 if the file does not say
    description: str


def check_video_file(path: str) -> None:
    if not Path(path).expanduser().is_file():
        raise SourceError(f"video file not found: {path}")


def open_video_file(path: str) -> VideoFile:
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
    return VideoFile(cap, fps, count, f"{path} {size}@{fps:.4g}{frames}")


def next_image(cap: cv2.VideoCapture, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """The next usable image, trying past up to MAX_BAD_READS broken ones; None at the end."""
    for _ in range(MAX_BAD_READS):
        ok, image = cap.read()
        if ok and usable(image, shape):
            return image
    return None


def frame_number(pos_ms: float, fps: float, previous: int) -> int:
    """The position in the file of the frame just read (0 = first frame).

    From its timestamp, because CAP_PROP_POS_FRAMES only counts decoded frames:
    after frames the decoder dropped (a damaged file) it is off by as many.  At
    least one more than the previous frame, which also covers files whose frames
    carry no timestamps (every one reads 0 ms).
    """
    return max(previous + 1, round(pos_ms * fps / 1000)) if fps else previous + 1
