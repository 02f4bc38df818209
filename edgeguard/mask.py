"""Masks: the public face of the mask stage.

What the rest of the program uses: the mask classifier (`MaskClassifier`, a
small CNN run by OpenCV DNN from the packaged `models/mask_classifier.onnx`:
no mask, mask, not a face), a live sample's ballot (`vote_label`), and the
search for masked faces among HOG's sub-threshold candidates (`split_faces`,
`find_masked_faces`, `CANDIDATE_FLOOR`).  The implementation lives in
edgeguard.masks: `classifier.py` (the model, its input and its scores) and
`search.py` (the masked-face search).
"""

from __future__ import annotations

from .masks.classifier import (
    MODEL_PATH,
    NOT_FACE,
    MaskClassifier,
    MaskModelError,
    MaskResult,
    crop_face,
    mask_score,
    vote_label,
)
from .masks.search import CANDIDATE_FLOOR, find_masked_faces, split_faces

__all__ = [
    "CANDIDATE_FLOOR",
    "MODEL_PATH",
    "NOT_FACE",
    "MaskClassifier",
    "MaskModelError",
    "MaskResult",
    "crop_face",
    "find_masked_faces",
    "mask_score",
    "split_faces",
    "vote_label",
]
