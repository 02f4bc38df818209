"""Face encodings: dlib's ResNet face descriptor (the model face_recognition ships).

Two faces of the same person lie within about 0.6 of each other in this
128-dimensional space (Euclidean distance); see `matching`.
"""

from __future__ import annotations

import threading

import numpy as np

from .box import Box
from .dlib_models import model_path

ENCODING_SIZE = 128
# Bump when anything that changes an encoding changes (landmark model, chip
# size, jitter rule): cached encodings made under another value are not reused.
ENCODER_SIGNATURE = "dlib_face_recognition_resnet_model_v1/5pt/150"


class FaceEncoder:
    """Computes encodings for boxes in an RGB image; models load on first use."""

    def __init__(self) -> None:
        self._predictor = None
        self._model = None
        self._lock = threading.Lock()

    def encode(self, rgb: np.ndarray, boxes: list[Box], jitters: int = 1) -> np.ndarray:
        """One float32 encoding per box, as an (n, 128) array."""
        import dlib

        with self._lock:
            predictor, model = self._load()
            if not boxes:
                return np.empty((0, ENCODING_SIZE), dtype=np.float32)
            shapes = dlib.full_object_detections()
            for box in boxes:
                shapes.append(predictor(rgb, box.to_dlib()))
            descriptors = model.compute_face_descriptor(rgb, shapes, jitters)
        return np.asarray([np.asarray(d) for d in descriptors], dtype=np.float32)

    def _load(self):
        if self._model is None:
            import dlib

            self._predictor = dlib.shape_predictor(model_path("landmarks_5"))
            self._model = dlib.face_recognition_model_v1(model_path("encoder"))
        return self._predictor, self._model
