"""Face encodings: dlib's ResNet face descriptor (the model face_recognition ships).

Two faces of the same person lie within about 0.6 of each other in this
128-dimensional space (Euclidean distance); see `matching`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..common.dlib_models import model_path
from ..detect import Box
from .encoder_pool import CHIP_PADDING, CHIP_SIZE, ENCODING_SIZE, EncoderPool, as_encodings, load_resnet

# Bump when anything that changes an encoding changes (landmark model, chip
# size, jitter rule): cached encodings made under another value are not reused.
ENCODER_SIGNATURE = "dlib_face_recognition_resnet_model_v1/5pt/150"


class FaceEncoder:
    """Computes encodings for boxes in an RGB image; models load on first use.

    The landmarks are found in the calling thread.  With an `EncoderPool`, the
    face chips are cut here too and the ResNet runs in the pool's workers, so
    threads sharing one encoder encode at once (in process, dlib holds the GIL
    throughout); the chips are cut as dlib cuts them itself, so the encodings
    are the same, and the model is then never loaded in this process.
    """

    def __init__(self, pool: EncoderPool | None = None) -> None:
        self._pool = pool
        self._predictor: Any = None
        self._model: Any = None  # the in-process ResNet, without a pool
        self._lock = threading.Lock()  # dlib's models are not thread-safe

    def encode(self, rgb: np.ndarray, boxes: list[Box], jitters: int = 1) -> np.ndarray:
        """One float32 encoding per box, as an (n, 128) array."""
        if not boxes:
            return np.empty((0, ENCODING_SIZE), dtype=np.float32)
        with self._lock:
            shapes = self._landmarks(rgb, boxes)
            if self._pool is None:
                return as_encodings(self._resnet().compute_face_descriptor(rgb, shapes, jitters))
            chips = _chips(rgb, shapes)
        return self._pool.descriptors(chips, jitters)  # outside the lock: other threads go on meanwhile

    def _landmarks(self, rgb: np.ndarray, boxes: list[Box]) -> Any:
        """The 5-point landmarks of each box (dlib's full_object_detections)."""
        import dlib

        if self._predictor is None:
            self._predictor = dlib.shape_predictor(model_path("landmarks_5"))
        shapes = dlib.full_object_detections()
        for box in boxes:
            shapes.append(self._predictor(rgb, box.to_dlib()))
        return shapes

    def _resnet(self) -> Any:
        """The in-process model, loaded on first need (with a pool, never: it takes about 30 MB)."""
        if self._model is None:
            self._model = load_resnet()
        return self._model


def _chips(rgb: np.ndarray, shapes: Any) -> np.ndarray:
    """The faces' chips as compute_face_descriptor cuts them from the image, as an (n, 150, 150, 3) array.

    All in one call, as dlib does: a chip cut alone can differ (of 24 faces in a
    collage, one by up to 15 levels; 0.005 in its encoding).
    """
    import dlib

    return np.stack(dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))
