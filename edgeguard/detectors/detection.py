"""What every face detector reports (`Detection`), the interface they share,
and finding faces in still photos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .box import Box

# Share of the longer side added around a still photo before detection.  dlib's
# HOG window covers the face plus some forehead and cheek; in a passport-style
# crop that context is outside the picture and the face can be missed (1 of 39
# tight 100 px LFW crops without a margin; none with 0.1, 0.15 or 0.25).  YuNet
# misses tight crops too without it.
PHOTO_MARGIN = 0.15


@dataclass(frozen=True)
class Detection:
    """One face found: where, how sure the detector is, and whether it faces the camera
    enough to be identified."""

    box: Box  # in the shape dlib's landmark model expects (HOG's box), whichever detector found it
    score: float
    # False: turned too far (edgeguard.detectors.yunet), or on live frames cut off by the frame's edge
    # (edgeguard.live.pipeline), for an identity sample
    frontal: bool = True


class FaceDetector(Protocol):
    """A face detector; safe to share between threads."""

    name: str  # "yunet", "hog" or "cnn"
    colour: bool  # True: wants BGR colour images; False: grey (or RGB) images
    min_face: int  # smallest face (px) it finds reliably, at upsample 0

    def find(self, image: np.ndarray, upsample: int = 0, floor: float = 0.0) -> list[Detection]:
        """Faces in `image`; `upsample` and a `floor` below 0 (sub-threshold candidates) are HOG's."""
        ...

    def load(self) -> None:
        """Load the model now; raises DetectorError if it cannot be used."""
        ...


class DetectorError(Exception):
    """The face detector's model is missing, damaged or cannot run here."""


def detect_in_photo(
    detector: FaceDetector, rgb: np.ndarray, upsample: int, max_side: int, floor: float = 0.0
) -> list[Detection]:
    """Faces in a still RGB photo, in its own coordinates (a box may reach past the edge).

    The photo is shrunk to `max_side` (detection cost grows with area; encoding
    later uses the full-size photo) and given a margin of PHOTO_MARGIN so that
    tightly cropped faces are found too.  A `floor` below 0 also returns HOG's
    sub-threshold candidates (for the masked-face search).
    """
    scale = min(1.0, max_side / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    margin = int(PHOTO_MARGIN * max(small.shape[:2]))
    padded = cv2.copyMakeBorder(small, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    if detector.colour:
        padded = cv2.cvtColor(padded, cv2.COLOR_RGB2BGR)
    found = detector.find(padded, upsample, floor)
    return [Detection(d.box.shifted(-margin, -margin).scaled(1 / scale), d.score, d.frontal) for d in found]
