"""What every kind of source shares: the `Frame` it delivers, its errors, and the checks on a frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, TypeGuard

import numpy as np

log = logging.getLogger("edgeguard.capture")

MAX_BAD_READS = 10  # consecutive failed reads before a file counts as ended or a stream as lost
BAD_FRAME_LOG_EVERY = 100  # warn about skipped frames on the first and then every Nth
# Backend timeouts are this much longer than our own watchdog's, so that the
# watchdog notices a stall first and the backend frees the abandoned thread soon after.
BACKEND_TIMEOUT_GRACE = 2.0


class SourceError(Exception):
    """The source can never work as configured (missing file, library or backend)."""


class OpenFailed(Exception):
    """This attempt to open a live source failed; a later one may succeed."""


@dataclass(frozen=True, eq=False)  # eq=False: images are compared by identity, not pixel by pixel
class Frame:
    """One image from the source, with where and when it was taken."""

    image: np.ndarray  # BGR uint8, H x W x 3
    number: int  # files: position in the file (0 = first frame); live: count since start()
    pos_ms: float | None  # files: timestamp in the file; live: None
    time: float  # time.time() when the frame was read

    @property
    def media_time(self) -> float:
        """Seconds on the footage's own clock: the position in a file, else the wall clock.

        Durations measured with it (crowd time, re-checks, forgetting tracks) behave
        the same when a file is replayed as fast as possible as they would live.
        """
        return self.pos_ms / 1000.0 if self.pos_ms is not None else self.time


class VideoInput(Protocol):
    """What the reader needs of a capture: cv2.VideoCapture has it, Picamera2 gets a wrapper."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


def usable(image: object, shape: tuple[int, ...] | None) -> TypeGuard[np.ndarray]:
    """A BGR uint8 image, of `shape` when given (the shape of the capture's first frame)."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.size > 0
        and (shape is None or image.shape == shape)
    )


class BadFrames:
    """Counts unusable frames and warns on the first and then every BAD_FRAME_LOG_EVERY-th."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.count = 0

    def skipped(self, n: int = 1) -> None:
        before, self.count = self.count, self.count + n
        if before == 0 or before // BAD_FRAME_LOG_EVERY != self.count // BAD_FRAME_LOG_EVERY:
            log.warning(
                "camera %s: skipped unreadable or malformed frames (%d so far)", self._name, self.count
            )
