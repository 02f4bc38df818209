"""dlib's detectors: HOG (frontal faces, CPU) and the CNN
(any pose, needs CUDA to be quick, e.g. on a Jetson)."""

from __future__ import annotations

import threading

import numpy as np

from ..common.dlib_models import model_path
from .box import Box
from .detection import Detection


class DlibDetector:
    """dlib's HOG or CNN face detector, loaded on first use and safe to share between threads.

    HOG's boxes are the shape dlib's landmark model was trained on, so they are
    used as they are.  HOG only finds faces turned less than about 30-40 degrees,
    so every detection is frontal; the CNN's are taken as frontal too.
    """

    colour = False
    min_face = 80  # HOG's 80 x 80 window; each upsample halves it

    def __init__(self, model: str = "hog") -> None:
        if model not in ("hog", "cnn"):
            raise ValueError(f"unknown detection model {model!r}")
        self.name = model
        self._detector = None
        self._lock = threading.Lock()

    def find(self, image: np.ndarray, upsample: int = 0, floor: float = 0.0) -> list[Detection]:
        """Faces in a grey or RGB image scoring at least `floor` (HOG's own cut-off is 0).

        The CNN's faces come with its confidence and no sub-threshold candidates.
        """
        with self._lock:
            detector = self._load()
            if self.name == "cnn":
                return [
                    Detection(Box.from_dlib(d.rect), float(d.confidence)) for d in detector(image, upsample)
                ]
            rects, scores, _ = detector.run(image, upsample, floor)
        return [Detection(Box.from_dlib(r), float(s)) for r, s in zip(rects, scores)]

    def load(self) -> None:
        with self._lock:
            self._load()

    def _load(self):
        if self._detector is None:
            import dlib

            if self.name == "cnn":
                self._detector = dlib.cnn_face_detection_model_v1(model_path("cnn_detector"))
            else:
                self._detector = dlib.get_frontal_face_detector()
        return self._detector
