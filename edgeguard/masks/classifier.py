"""The mask classifier: telling masked from bare faces (and faces from things that are not).

A small CNN (train/train_mask.py; model card in
train/MODEL_CARD.md) sees a square crop around the detector's box, with
CROP_MARGIN of the box added on each side, scaled to INPUT_SIZE pixels.  It
runs with OpenCV's DNN module from an ONNX file shipped in the package: no deep
learning framework on the device.  Its outputs are the probabilities of "no
mask", "mask" and "not a face"; a face's mask score is P(mask) / (P(mask) +
P(no mask)), so a poorly framed face still gets a mask decision.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..detect import Box

log = logging.getLogger("edgeguard.mask")  # the stage's logger, as before the split

MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "mask_classifier.onnx"
INPUT_SIZE = 64
# The HOG box runs from the eyebrows to the chin; a tenth of its side around it
# keeps the whole mask (down to the chin, up to the nose bridge) in view.
CROP_MARGIN = 0.1
# Pixel values are scaled to about -1..1 before the network sees them.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 1 / 127.5
NO_MASK, MASK, NOT_FACE = range(3)
DEFAULT_THRESHOLD = 0.5
# A live sample votes only when the model gives one answer at least 3:1 odds
# (mask score >= 0.75 or <= 0.25); in between it abstains, as an identity sample
# just beyond the tolerance does.  Small, dim faces in video (a face of 50 px
# with a beard) score in between far more often than clear ones.
SURE_ODDS = 3.0


class MaskModelError(Exception):
    """The packaged mask model is missing or unreadable."""


@dataclass(frozen=True)
class MaskResult:
    mask: bool
    score: float  # probability of wearing a mask, 0..1


def crop_face(image: np.ndarray, box: Box, size: int = INPUT_SIZE, margin: float = CROP_MARGIN) -> np.ndarray:
    """The square around `box` (its longer side plus `margin` of it on each side), scaled to size x size.

    Parts outside the image repeat its edge pixels, as a tightly cropped photo
    would be padded for detection (edgeguard.detect.detect_in_photo).
    """
    height, width = image.shape[:2]
    cx, cy = box.center
    side = max(int(round(max(box.width, box.height, 1) * (1 + 2 * margin))), 1)
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    x0, y0 = min(max(left, 0), width - 1), min(max(top, 0), height - 1)
    x1, y1 = max(min(left + side, width), x0 + 1), max(min(top + side, height), y0 + 1)
    region = image[y0:y1, x0:x1]
    pads = (max(y0 - top, 0), max(top + side - y1, 0), max(x0 - left, 0), max(left + side - x1, 0))
    if any(pads):
        region = cv2.copyMakeBorder(region, *pads, cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interpolation)


def to_blob(crops: list[np.ndarray], rgb: bool) -> np.ndarray:
    """N crops (H x W x 3 uint8) as the network's N x 3 x H x W float input, in RGB order."""
    return cv2.dnn.blobFromImages(crops, PIXEL_SCALE, None, (PIXEL_MEAN,) * 3, swapRB=not rgb, crop=False)


def mask_score(probs: np.ndarray) -> float:
    """P(mask | a face) from the network's three probabilities."""
    return float(probs[MASK] / max(probs[MASK] + probs[NO_MASK], 1e-12))


def vote_label(score: float) -> bool | None:
    """A live sample's ballot: True (masked), False (bare) or None (abstains: odds below SURE_ODDS)."""
    sure = SURE_ODDS / (1 + SURE_ODDS)
    if score >= sure:
        return True
    if score <= 1 - sure:
        return False
    return None


class MaskClassifier:
    """The packaged mask model, loaded on first use and safe to share between threads."""

    def __init__(self, model_path: Path | None = None, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.model_path = Path(model_path) if model_path is not None else MODEL_PATH
        self.threshold = threshold
        self._net: cv2.dnn.Net | None = None
        self._lock = threading.Lock()

    def classify(self, bgr_or_rgb_image: np.ndarray, boxes: list[Box], rgb: bool = True) -> list[MaskResult]:
        """Whether each face wears a mask; one result per box, in order."""
        scores = [mask_score(p) for p in self.probabilities(bgr_or_rgb_image, boxes, rgb)]
        return [MaskResult(s >= self.threshold, round(s, 4)) for s in scores]

    def probabilities(self, image: np.ndarray, boxes: list[Box], rgb: bool = True) -> np.ndarray:
        """N x 3 probabilities of (no mask, mask, not a face), all faces in one forward pass."""
        if not boxes:
            return np.zeros((0, 3), dtype=np.float32)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        blob = to_blob([crop_face(image, b) for b in boxes], rgb)
        with self._lock:
            net = self._load()
            net.setInput(blob)
            logits = net.forward().reshape(len(boxes), 3)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)

    def load(self) -> None:
        """Read the model now; MaskModelError says why it cannot be used."""
        with self._lock:
            self._load()

    def _load(self) -> cv2.dnn.Net:
        if self._net is None:
            try:
                self._net = cv2.dnn.readNetFromONNX(str(self.model_path))
            except cv2.error as exc:
                reason = (
                    "missing"
                    if not self.model_path.is_file()
                    else f"not a usable ONNX model ({exc.err or exc})"
                )
                raise MaskModelError(f"mask model {self.model_path}: {reason}; reinstall EdgeGuard") from None
            log.debug("loaded mask model %s", self.model_path)
        return self._net
