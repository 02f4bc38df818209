"""The encoding cache under `TrainingImageLabel/`, keyed by each photo's content.

A restart with a thousand watchlist photos should not re-run detection and
encoding on each one.  Entries are keyed by the SHA-256 of the photo bytes, so
renaming or moving a photo keeps its entry and editing it does not.  Failures
(no face, two faces ...) are cached too, so an unusable photo is not retried
on every reload.  The file is stamped with a signature of everything that
shapes an encoding; a file that is corrupt, foreign or from other settings is
rebuilt, never trusted.  Encodings are biometric data: the folder is 0700, the
file 0600, and entries of photos that are gone are dropped on save.  With a
sealer (`[privacy] encrypt`) the file is sealed with the data key; a plain file
from before is read and written back sealed on the next save.

Which encoder made the entries (`[recognition] encoder`, opencv or dlib) is
not part of the signature: both run the same network on the same chips, and
their encodings agree within 1e-5 (the test photos' largest distance is
2.5e-6, tests/test_encode.py holds every one to 1e-3), far below the 0.56
tolerance and the uncertain band, so switching encoder keeps the cache and
spares re-encoding every photo; tests/test_watchlist_build.py checks that a
cache made by one serves the other.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.files import private_folder, read_regular, write_private
from ..common.sealing import Sealer, SealError, is_sealed, seal, unseal
from ..faces.encode import ENCODING_SIZE

log = logging.getLogger(__name__)

CACHE_FILE = "encodings.npz"
FORMAT = "edgeguard-encodings-1"
ROLE = f"encodings/{CACHE_FILE}"


@dataclass(frozen=True)
class CacheEntry:
    """What a photo gave: an encoding, or the reason it is unusable."""

    encoding: np.ndarray | None
    error: str = ""


def photo_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class EncodingCache:
    def __init__(self, folder: Path, signature: str, sealer: Sealer | None = None) -> None:
        self.path = folder / CACHE_FILE
        self.sealer = sealer
        self.signature = f"{FORMAT}|{signature}"
        self._entries: dict[str, CacheEntry] = {}
        self._dirty = False

    def load(self) -> None:
        """Read the cache file; anything wrong with it means starting empty."""
        self._entries = {}
        if not self.path.exists():
            return
        try:
            self._entries = self._read()
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            EOFError,
            zipfile.BadZipFile,
            SealError,
        ) as exc:
            log.warning("encoding cache %s is unusable (%s); rebuilding it", self.path, exc)
            self._dirty = True

    def _read(self) -> dict[str, CacheEntry]:
        blob = read_regular(self.path)
        if self.sealer is not None and not is_sealed(blob):
            self._dirty = True  # written before encryption was on: the next save seals it
        with np.load(io.BytesIO(unseal(self.sealer, blob, ROLE)), allow_pickle=False) as data:
            signature = str(data["signature"])
            if signature != self.signature:
                raise ValueError("made with other settings or another version")
            digests, encodings, errors = data["digests"], data["encodings"], data["errors"]
        if encodings.shape != (len(digests), ENCODING_SIZE) or len(errors) != len(digests):
            raise ValueError("arrays do not line up")
        if not np.isfinite(encodings).all():
            raise ValueError("holds values that are not numbers")
        return {
            str(d): CacheEntry(None if e else enc.astype(np.float32), str(e))
            for d, enc, e in zip(digests, encodings, errors)
        }

    def get(self, digest: str) -> CacheEntry | None:
        return self._entries.get(digest)

    def put(self, digest: str, entry: CacheEntry) -> None:
        self._entries[digest] = entry
        self._dirty = True

    def __len__(self) -> int:
        return len(self._entries)

    def save(self, keep: set[str]) -> None:
        """Write the entries whose digest is in `keep` (the photos that still exist)."""
        stale = set(self._entries) - keep
        if not self._dirty and not stale:
            return
        for digest in stale:
            del self._entries[digest]
        digests = sorted(self._entries)
        encodings = np.zeros((len(digests), ENCODING_SIZE), dtype=np.float32)
        for i, digest in enumerate(digests):
            if self._entries[digest].encoding is not None:
                encodings[i] = self._entries[digest].encoding
        errors = np.array([self._entries[d].error for d in digests], dtype=str)
        private_folder(self.path.parent)
        data = io.BytesIO()
        np.savez(
            data,
            signature=np.array(self.signature),
            digests=np.array(digests, dtype=str),
            encodings=encodings,
            errors=errors,
        )
        write_private(self.path, seal(self.sealer, data.getvalue(), ROLE))
        self._dirty = False
