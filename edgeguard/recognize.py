"""The per-face work shared by enrolment, `edgeguard analyze` and the live pipeline:
find faces, gate them by size, encode them, and name them against a watchlist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import RecognitionConfig
from .detect import Box, FaceDetector, detect_in_photo
from .encode import FaceEncoder
from .images import PhotoError

if TYPE_CHECKING:
    from .watchlist import Identity, Watchlist


@dataclass(frozen=True)
class FaceResult:
    """One face in an image: where, who (if anyone), and the per-face checks."""

    box: Box
    identity: Identity | None  # None: too small to identify
    mask: bool | None = None
    mask_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        person = self.identity.person if self.identity else None
        distance = self.identity.distance if self.identity else None
        return {
            "box": self.box.as_list(),
            "id": person.id if person else None,
            "name": person.name if person else None,
            "distance": None if distance is None else round(distance, 4),
            "mask": self.mask,
            "mask_score": self.mask_score,
        }


class FaceEngine:
    """Detector and encoder configured once; models load on first use."""

    def __init__(self, cfg: RecognitionConfig) -> None:
        self.cfg = cfg
        self.detector = FaceDetector(cfg.detection_model)
        self.encoder = FaceEncoder()

    def warm_up(self) -> None:
        """Load the models now (about a second) rather than on the first face."""
        self.detector.detect(np.zeros((8, 8), dtype=np.uint8), 0)
        self.encoder.encode(np.zeros((8, 8, 3), dtype=np.uint8), [])

    def find_in_photo(self, rgb: np.ndarray) -> list[Box]:
        scored = detect_in_photo(self.detector, rgb, self.cfg.upsample, self.cfg.max_detect_side)
        return [box for box, _ in scored]

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

    def analyze_photo(self, rgb: np.ndarray, watchlist: Watchlist) -> list[FaceResult]:
        """Every face in a still image, identified where it is large enough."""
        height, width = rgb.shape[:2]
        boxes = self.find_in_photo(rgb)
        usable = [b for b in boxes if b.size >= self.cfg.min_face_size]
        identities = dict(zip(usable, watchlist.identify(self.encoder.encode(rgb, usable))))
        return [FaceResult(b.clipped(height, width), identities.get(b)) for b in boxes]
