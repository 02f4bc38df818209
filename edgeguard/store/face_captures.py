"""Saving captured faces (unknown visitors, sightings of watchlist people) to `Unknown_Face_Captures/`,
and keeping that folder within limits.

Each capture is three files sharing one stem: `<stem>-face.jpg` (the best
crop of the track), `<stem>-frame.jpg` (the whole frame it came from) and
`<stem>.json` (time, camera, location, box, best distance).  They are
biometric data: files 0600 in a 0700 folder.  Retention deletes whole
captures older than `retention_days`, then the oldest until the folder is
under `max_mb`.  A failed write (disk full, read-only card) is logged once,
reported to the caller, and never stops the pipeline.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..common.files import write_private
from ..detect import Box

log = logging.getLogger(__name__)

JPEG_QUALITY = 90
SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class SavedCapture:
    face: Path
    frame: Path
    sidecar: Path


class CaptureStore:
    def __init__(self, folder: Path, retention_days: float, max_mb: float) -> None:
        self.folder = folder
        self.retention_seconds = retention_days * 86400
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._failing = False

    def save(
        self, when: float, camera: str, crop: np.ndarray, frame: np.ndarray, sidecar: dict[str, Any]
    ) -> SavedCapture | str:
        """Write a capture; returns its files, or the reason it could not be written."""
        stamp = datetime.fromtimestamp(when).strftime("%Y%m%d-%H%M%S")
        stem = f"{stamp}-{int(when * 1000) % 1000:03d}-{SAFE.sub('_', camera)}"
        if (self.folder / f"{stem}.json").exists():  # two faces decided on one frame: never overwrite
            stem = f"{stem}-{sidecar.get('track', 'x')}"
        saved = SavedCapture(
            self.folder / f"{stem}-face.jpg", self.folder / f"{stem}-frame.jpg", self.folder / f"{stem}.json"
        )
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(saved.face, encode_jpeg(crop))
            write_private(saved.frame, encode_jpeg(frame))
            write_private(saved.sidecar, json.dumps(sidecar, indent=2).encode())
        except (OSError, ValueError, cv2.error) as exc:
            for path in (saved.face, saved.frame, saved.sidecar):
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass  # the folder itself is unusable: nothing was written
            reason = f"capture not saved: {exc}"
            if not self._failing:
                log.error(
                    "%s (%s); events go on without captures until writing works again", reason, self.folder
                )
            self._failing = True
            return reason
        if self._failing:
            log.info("captures are being saved again in %s", self.folder)
            self._failing = False
        return saved

    def enforce_retention(self, now: float | None = None) -> int:
        """Delete captures past the age limit, then the oldest over the size limit; returns how many.

        The newest capture is kept whatever its size: it is the one a guard may be looking at.
        """
        now = time.time() if now is None else now
        groups = self._groups()
        removed = 0
        total = sum(size for _, size, _ in groups)
        for mtime, size, files in groups[:-1]:  # oldest first, never the newest
            if now - mtime <= self.retention_seconds and total <= self.max_bytes:
                break
            for path in files:
                path.unlink(missing_ok=True)
            total -= size
            removed += 1
        if groups and now - groups[-1][0] > self.retention_seconds:  # the newest is past the age limit too
            for path in groups[-1][2]:
                path.unlink(missing_ok=True)
            removed += 1
        if removed:
            log.info("retention: deleted %d old capture(s) from %s", removed, self.folder)
        return removed

    def prune_for_space(self, free_bytes: int) -> int:
        """Delete the oldest captures (never the newest) until the disk has `free_bytes` free; how many."""
        removed = 0
        for _, _, files in self._groups()[:-1]:
            if shutil.disk_usage(self.folder).free >= free_bytes:
                break
            for path in files:
                path.unlink(missing_ok=True)
            removed += 1
        return removed

    def _groups(self) -> list[tuple[float, int, list[Path]]]:
        """Captures as (time, bytes, files), oldest first."""
        by_stem: dict[str, list[Path]] = {}
        if not self.folder.is_dir():
            return []
        for path in self.folder.iterdir():
            if path.is_file() and path.suffix in (".jpg", ".json"):
                stem = path.name.removesuffix(".json").removesuffix("-face.jpg").removesuffix("-frame.jpg")
                by_stem.setdefault(stem, []).append(path)
        groups = []
        for files in by_stem.values():
            stats = [p.stat() for p in files]
            groups.append((min(s.st_mtime for s in stats), sum(s.st_size for s in stats), files))
        return sorted(groups, key=lambda g: g[0])


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """`image` (BGR) as JPEG bytes; ValueError if it cannot be encoded (empty, wrong shape)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def capture_to_photo(capture: Path, folder: Path) -> Path:
    """The full frame of a capture, cut to the face with a generous margin, as a photo in `folder`.

    The saved face crop is tight and small; enrolment gets a better encoding from
    the frame, cut around the box recorded in the sidecar.
    """
    stem = capture.name.removesuffix(".json").removesuffix("-face.jpg").removesuffix("-frame.jpg")
    sidecar = capture.parent / f"{stem}.json"
    frame_path = capture.parent / f"{stem}-frame.jpg"
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        top, right, bottom, left = meta["box"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{capture}: not a capture with a readable sidecar {sidecar.name} ({exc})") from None
    frame = cv2.imread(str(frame_path))
    if frame is None:
        raise ValueError(f"{capture}: its frame image {frame_path.name} is missing or unreadable")
    box = Box(top, right, bottom, left)
    cut = box.grown(max(box.width, box.height)).crop(frame)
    target = folder / f"{stem}.jpg"
    write_private(target, encode_jpeg(cut))
    return target
