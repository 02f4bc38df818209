"""The per-face work shared by enrolment, `edgeguard analyze` and the live pipeline:
the detector, the encoder and the mask classifier configured once; finding faces
in still photos (masked ones too) and the one face of a watchlist photo.
"""

from __future__ import annotations

import logging

import numpy as np

from ..config import MaskConfig, RecognitionConfig
from ..detect import FaceDetector, detect_in_photo
from ..mask import CANDIDATE_FLOOR, MaskClassifier, MaskModelError, split_faces
from .box import Box
from .encode import FaceEncoder
from .photos import PhotoError

log = logging.getLogger(__name__)


class FaceEngine:
    """Detector and encoder configured once; models load on first use."""

    def __init__(self, cfg: RecognitionConfig, mask: MaskConfig | None = None) -> None:
        self.cfg = cfg
        self.detector = FaceDetector(cfg.detection_model)
        self.encoder = FaceEncoder()
        self.masks = _mask_classifier() if mask is not None and mask.enabled else None
        search = mask.find_masked if self.masks is not None and cfg.detection_model == "hog" else "off"
        self.find_masked = search != "off"  # in still photos
        self.find_masked_live = search == "always"

    def warm_up(self) -> None:
        """Load the models now (about a second) rather than on the first face."""
        self.detector.detect(np.zeros((8, 8), dtype=np.uint8), 0)
        self.encoder.encode(np.zeros((8, 8, 3), dtype=np.uint8), [])
        if self.masks is not None:
            self.masks.classify(np.zeros((8, 8, 3), dtype=np.uint8), [Box(0, 8, 8, 0)])

    def find_in_photo(self, rgb: np.ndarray, masked: bool = False) -> list[Box]:
        """Faces in a still photo; with `masked` (and the search enabled), also masked faces
        HOG scored just below its cut-off.  Enrolment never uses it: a watchlist photo is bare-faced."""
        search = self.masks if masked and self.find_masked else None
        scored = detect_in_photo(self.detector, rgb, self.cfg.upsample, self.cfg.max_detect_side,
                                 CANDIDATE_FLOOR if search else 0.0)
        if search is None:
            return [box for box, _ in scored]
        faces, masked_faces = split_faces(rgb, scored, search)
        return faces + [box for box, _ in masked_faces]

    def enrolment_encoding(self, rgb: np.ndarray) -> np.ndarray:
        """The encoding of the one person in a watchlist photo, or PhotoError.

        Faces below enrol_min_face_size (people in the background) are ignored; more
        than one usable face is refused, since we could not tell who is meant.
        """
        boxes = self.find_in_photo(rgb)
        if not boxes:
            raise PhotoError("no face found (a frontal face with both eyes visible is needed)")
        usable = [b for b in boxes if b.size >= self.cfg.enrol_min_face_size]
        if not usable:
            largest = max(b.size for b in boxes)
            raise PhotoError(f"face too small: {largest} px, at least {self.cfg.enrol_min_face_size} px needed")
        if len(usable) > 1:
            raise PhotoError(f"{len(usable)} faces found; a watchlist photo must show one person only")
        return self.encoder.encode(rgb, usable, self.cfg.enrol_jitters)[0]


def _mask_classifier() -> MaskClassifier | None:
    """The mask model, loaded; without a usable one, faces are still recognised and mask checks are off."""
    classifier = MaskClassifier()
    try:
        classifier.load()
    except MaskModelError as exc:
        log.error("%s; running without mask checks", exc)
        return None
    return classifier
