"""Finding faces: dlib's HOG (CPU) or CNN (CUDA) detector behind one small interface."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .faces.box import Box
from .faces.dlib_models import model_path

# Share of the longer side added around a still photo before detection.  dlib's
# HOG window covers the face plus some forehead and cheek; in a passport-style
# crop that context is outside the picture and the face can be missed (1 of 39
# tight 100 px LFW crops without a margin; none with 0.1, 0.15 or 0.25).
PHOTO_MARGIN = 0.15


class FaceDetector:
    """dlib's face detector, loaded on first use and safe to share between threads."""

    def __init__(self, model: str = "hog") -> None:
        if model not in ("hog", "cnn"):
            raise ValueError(f"unknown detection model {model!r}")
        self.model = model
        self._detector = None
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray, upsample: int) -> list[Box]:
        """Faces in an RGB uint8 image, upsampling it `upsample` times to find small ones."""
        with self._lock:
            detector = self._load()
            found = detector(rgb, upsample)
        rects = [d.rect for d in found] if self.model == "cnn" else list(found)
        return [Box.from_dlib(r) for r in rects]

    def scored(self, image: np.ndarray, upsample: int, floor: float) -> list[tuple[Box, float]]:
        """Detections scoring at least `floor` (HOG's own cut-off is 0), with their scores.

        The CNN detector has no such scores: its faces come with score 1.
        """
        if self.model == "cnn":
            return [(box, 1.0) for box in self.detect(image, upsample)]
        with self._lock:
            rects, scores, _ = self._load().run(image, upsample, floor)
        return [(Box.from_dlib(r), float(sc)) for r, sc in zip(rects, scores)]

    def _load(self):
        if self._detector is None:
            import dlib

            if self.model == "cnn":
                self._detector = dlib.cnn_face_detection_model_v1(model_path("cnn_detector"))
            else:
                self._detector = dlib.get_frontal_face_detector()
        return self._detector


def detect_in_photo(detector: FaceDetector, rgb: np.ndarray, upsample: int, max_side: int,
                    floor: float = 0.0) -> list[tuple[Box, float]]:
    """Faces in a still photo with their scores, in its own coordinates (a box may reach past the edge).

    The photo is shrunk to `max_side` (detection cost grows with area; encoding
    later uses the full-size photo) and given a margin of PHOTO_MARGIN so that
    tightly cropped faces are found too.  A `floor` below 0 also returns HOG's
    sub-threshold candidates (for the masked-face search).
    """
    scale = min(1.0, max_side / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    margin = int(PHOTO_MARGIN * max(small.shape[:2]))
    padded = cv2.copyMakeBorder(small, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    found = detector.scored(padded, upsample, floor)
    return [(b.shifted(-margin, -margin).scaled(1 / scale), score) for b, score in found]
