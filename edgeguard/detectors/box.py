"""`Box`: where a face is in an image, and the geometry every stage shares
(overlap, crops, dlib's rectangles).

Boxes use face_recognition's (top, right, bottom, left) order in pixel
coordinates of the image they were found in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Two boxes frame the same face when they overlap this much (IoU), or this share
# of the smaller one lies inside the larger one, or either's centre is inside the other.
SAME_FACE_IOU = 0.3
SAME_FACE_COVER = 0.6


@dataclass(frozen=True)
class Box:
    top: int
    right: int
    bottom: int
    left: int

    @classmethod
    def from_dlib(cls, rect: Any) -> Box:
        """A box from a dlib.rectangle."""
        return cls(rect.top(), rect.right(), rect.bottom(), rect.left())

    def to_dlib(self) -> Any:
        """This box as a dlib.rectangle."""
        import dlib

        return dlib.rectangle(self.left, self.top, self.right, self.bottom)

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def size(self) -> int:
        """The shorter side: what decides whether a face is big enough to use."""
        return min(self.width, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    def scaled(self, factor: float) -> Box:
        return Box(*(int(round(v * factor)) for v in (self.top, self.right, self.bottom, self.left)))

    def shifted(self, dy: int, dx: int) -> Box:
        return Box(self.top + dy, self.right + dx, self.bottom + dy, self.left + dx)

    def grown(self, pad: int) -> Box:
        """The box with `pad` pixels more on every side."""
        return Box(self.top - pad, self.right + pad, self.bottom + pad, self.left - pad)

    def clipped(self, height: int, width: int) -> Box:
        return Box(max(self.top, 0), min(self.right, width), min(self.bottom, height), max(self.left, 0))

    def intersection(self, other: Box) -> int:
        """The area both boxes cover."""
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        return w * h if w > 0 and h > 0 else 0

    def iou(self, other: Box) -> float:
        """Intersection over union: 1 for the same box, 0 for boxes that do not touch."""
        inter = self.intersection(other)
        return inter / (self.area + other.area - inter) if inter else 0.0

    def contains(self, point: tuple[float, float]) -> bool:
        x, y = point
        return self.left <= x <= self.right and self.top <= y <= self.bottom

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The part of `image` inside the box (clipped to the image), as a view."""
        b = self.clipped(*image.shape[:2])
        return image[b.top : b.bottom, b.left : b.right]

    def as_list(self) -> list[int]:
        return [self.top, self.right, self.bottom, self.left]


def same_face(a: Box, b: Box) -> bool:
    """Whether two boxes frame the same face: enough overlap, one mostly inside the other, or
    either's centre inside the other (detectors also box an off-centre part of a face)."""
    inter = a.intersection(b)
    if inter == 0 or a.area <= 0 or b.area <= 0:
        return False
    if inter / (a.area + b.area - inter) >= SAME_FACE_IOU or inter / min(a.area, b.area) >= SAME_FACE_COVER:
        return True
    return a.contains(b.center) or b.contains(a.center)
