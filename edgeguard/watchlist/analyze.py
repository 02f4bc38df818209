"""`edgeguard analyze`: every face in a still image, named against the watchlist, with its mask check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..detect import Box
from ..faces.engine import FaceEngine
from .build import Identity, Watchlist


@dataclass(frozen=True)
class FaceResult:
    """One face in an image: where, who (if anyone), and the per-face checks."""

    box: Box
    identity: Identity | None  # None: too small, or turned too far, to identify
    mask: bool | None = None
    mask_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        person = self.identity.person if self.identity else None
        distance = self.identity.distance if self.identity else None
        vetoed = self.identity.vetoed if self.identity else None
        return {
            "box": self.box.as_list(),
            "id": person.id if person else None,
            "name": person.name if person else None,
            "distance": None if distance is None else round(distance, 4),
            # the nearest person, ruled out by feedback (edgeguard feedback --not-person)
            "vetoed": {"id": vetoed.id, "name": vetoed.name} if vetoed else None,
            "mask": self.mask,
            "mask_score": self.mask_score,
        }


def analyze_photo(engine: FaceEngine, rgb: np.ndarray, watchlist: Watchlist) -> list[FaceResult]:
    """Every face in a still image (masked ones too), identified where it is large enough."""
    height, width = rgb.shape[:2]
    found = engine.find_in_photo(rgb, masked=True)
    boxes = [d.box for d in found]
    usable = [d.box for d in found if d.box.size >= engine.cfg.min_face_size and d.frontal]
    identities = dict(zip(usable, watchlist.identify(engine.encoder.encode(rgb, usable))))
    masks = engine.masks.classify(rgb, boxes) if engine.masks is not None else [None] * len(boxes)
    return [
        FaceResult(b.clipped(height, width), identities.get(b), m.mask if m else None, m.score if m else None)
        for b, m in zip(boxes, masks)
    ]
