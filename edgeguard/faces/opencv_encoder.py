"""dlib's face recognition ResNet run by OpenCV's DNN module: the same encodings, several times faster.

The model (`edgeguard/models/dlib_face_recognition_resnet_model_v1.onnx`, its
provenance and public-domain licence note beside it) is dlib's own
`dlib_face_recognition_resnet_model_v1.dat` converted by
`tools/dlib_resnet_to_onnx.py`, which reads dlib's serialisation and keeps the
network's function unchanged, including dlib's input normalisation
((pixel - mean) / 256 per RGB channel, done by the model's first two nodes).
It takes the face chips `dlib.get_face_chips` cuts, exactly as dlib's
`compute_face_descriptor` does, so its encodings are dlib's: on the test
photos within 1e-5 (Euclidean) of them (tests/test_encode.py holds them to 1e-3).

Why faster: the `dlib-bin` wheel runs its convolutions without BLAS (about 80
ms a face here), while OpenCV runs them with its own vectorised kernels (AVX2,
NEON) and threads.  OpenCV's Python calls also release the GIL, so the
cameras' threads encode at once without worker processes.  The SHA-256 of the
model is checked when it is loaded, as for YuNet.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ..common.model_files import model_problem

MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "dlib_face_recognition_resnet_model_v1.onnx"
MODEL_SHA256 = "d72c329cb81a8b642c641a888da9f2a3172d6e08babf12355120cd8e7f8a0c58"


class EncoderModelError(RuntimeError):
    """The packaged encoder model is missing, damaged or not the one shipped."""


class OpenCvResnet:
    """The converted network, loaded on first use; one forward pass per batch of chips, thread-safe."""

    def __init__(self, model_path: Path = MODEL_PATH) -> None:
        self.model_path = model_path
        self._net: cv2.dnn.Net | None = None
        self._lock = threading.Lock()  # a cv2.dnn.Net is not safe to run from two threads at once

    def load(self) -> None:
        """Check and load the model now; EncoderModelError if it is not the shipped one."""
        with self._lock:
            self._load()

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """The encodings of face chips ((n, 150, 150, 3) uint8 RGB, n >= 1) as an (n, 128) float32 array."""
        blob = cv2.dnn.blobFromImages(list(chips), swapRB=False)  # NCHW float32, RGB kept, 0-255
        with self._lock:
            net = self._load()
            net.setInput(blob)
            out = net.forward()
        return np.ascontiguousarray(out, dtype=np.float32)

    def _load(self) -> cv2.dnn.Net:
        if self._net is None:
            check_model(self.model_path)
            self._net = cv2.dnn.readNetFromONNX(str(self.model_path))
        return self._net


def check_model(path: Path) -> None:
    """EncoderModelError unless `path` is the packaged encoder model, byte for byte."""
    problem = model_problem(path, MODEL_SHA256, "face encoder")
    if problem:
        raise EncoderModelError(problem)
