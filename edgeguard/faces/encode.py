"""Face encodings: dlib's ResNet face descriptor (the model face_recognition ships).

Two faces of the same person lie within about 0.6 of each other in this
128-dimensional space (Euclidean distance); see `matching`.

The network runs in OpenCV's DNN module (`opencv_encoder`, the default,
`[recognition] encoder = "opencv"`) or in dlib itself (`"dlib"`, in process or
in an `EncoderPool`'s workers).  Either way the landmarks and the face chips
are dlib's, cut as `compute_face_descriptor` cuts them, and the encodings are
the same within 1e-5 (tests/test_encode.py: 1e-3 on real photos), so they
share `ENCODER_SIGNATURE` and a watchlist cache made by one is valid for the other.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..common.dlib_models import model_path
from ..detect import Box
from .encoder_pool import CHIP_PADDING, CHIP_SIZE, ENCODING_SIZE, EncoderPool, as_encodings, load_resnet
from .opencv_encoder import OpenCvResnet

ENCODERS = ("opencv", "dlib")

# Bump when anything that changes an encoding changes (landmark model, chip
# size, jitter rule): cached encodings made under another value are not reused.
# Not the encoder's runtime: OpenCV's and dlib's encodings agree within 1e-5.
ENCODER_SIGNATURE = "dlib_face_recognition_resnet_model_v1/5pt/150"


class FaceEncoder:
    """Computes encodings for boxes in an RGB image; models load on first use.

    The landmarks are found and the face chips cut in the calling thread.  With
    the "opencv" encoder, the chips of a call go through the network in one
    forward pass, which releases the GIL.  With "dlib" and an `EncoderPool`,
    the ResNet runs in the pool's workers, so threads sharing one encoder
    encode at once (in process, dlib holds the GIL throughout), and the model
    is then never loaded in this process.
    """

    def __init__(self, encoder: str = "opencv", pool: EncoderPool | None = None) -> None:
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, not {encoder!r}")
        if pool is not None and encoder != "dlib":
            raise ValueError("an encoder pool runs dlib's encoder; the opencv encoder needs none")
        self.name = encoder
        self._pool = pool
        self._predictor: Any = None
        self._model: Any = None  # dlib's in-process ResNet, without a pool
        self._opencv = OpenCvResnet() if encoder == "opencv" else None
        self._lock = threading.Lock()  # dlib's models are not thread-safe

    def load(self) -> None:
        """Load the network now (the opencv model's checksum checked: EncoderModelError)."""
        if self._opencv is not None:
            self._opencv.load()

    def encode(self, rgb: np.ndarray, boxes: list[Box], jitters: int = 1) -> np.ndarray:
        """One float32 encoding per box, as an (n, 128) array."""
        if not boxes:
            return np.empty((0, ENCODING_SIZE), dtype=np.float32)
        with self._lock:
            shapes = self._landmarks(rgb, boxes)
            if self._opencv is None and self._pool is None:
                return as_encodings(self._resnet().compute_face_descriptor(rgb, shapes, jitters))
            chips = _chips(rgb, shapes)
        if self._opencv is not None:
            return _opencv_encodings(self._opencv, chips, jitters)
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
        """dlib's in-process model, loaded on first need (with a pool, never: it takes about 30 MB)."""
        if self._model is None:
            self._model = load_resnet()
        return self._model


def _opencv_encodings(network: OpenCvResnet, chips: np.ndarray, jitters: int) -> np.ndarray:
    """All chips in one pass; with jitters above 1, dlib's recipe: the mean encoding of that many randomly
    jittered copies of each chip (dlib.jitter_image, the function dlib's own descriptor uses)."""
    if jitters <= 1:
        return network.descriptors(chips)
    import dlib

    jittered = np.stack([np.stack(dlib.jitter_image(chip, jitters)) for chip in chips])
    flat = network.descriptors(jittered.reshape(-1, *chips.shape[1:]))
    return flat.reshape(len(chips), jitters, ENCODING_SIZE).mean(axis=1).astype(np.float32)


def _chips(rgb: np.ndarray, shapes: Any) -> np.ndarray:
    """The faces' chips as compute_face_descriptor cuts them from the image, as an (n, 150, 150, 3) array.

    All in one call, as dlib does: a chip cut alone can differ (of 24 faces in a
    collage, one by up to 15 levels; 0.005 in its encoding).
    """
    import dlib

    return np.stack(dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING))
