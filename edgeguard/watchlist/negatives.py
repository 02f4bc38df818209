"""Negative examples from feedback: "event 12 was not Id 7", kept as the encodings of that event's face.

One file per person, `TrainingImageLabel/negatives/<Id>.json`, beside the
encoding cache (and, like it, biometric data: 0600 in a 0700 folder, written
atomically).  Each entry names the event it came from, when that event
happened and when the correction was made, the capture it was read from, and
the encodings of the samples that voted for the wrong name.  The watchlist
(edgeguard.watchlist.build) reads every file at each build: a sample nearer to
one of a person's negatives than to that person's photos does not vote for
them.  A file that cannot be used (not JSON, wrong shape, values that are no
numbers, another encoder, a symbolic link) is a watchlist problem naming the
file; it is skipped, never trusted and never overwritten.

Writers (`edgeguard feedback` and the dashboard, two processes) take an
advisory lock on the folder around each read-change-write, so two corrections
made at once both land.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..common.files import UnsafeFile, private_folder, read_regular, write_private
from ..config import Config
from ..faces.encode import ENCODER_SIGNATURE, ENCODING_SIZE
from .details import VALID_ID, Problem

FOLDER = "negatives"
FORMAT = "edgeguard-negatives-1"
MAX_FILE_BYTES = 64 * 1024 * 1024  # about 20,000 encodings: far beyond any real list of corrections


class NegativesError(Exception):
    """A negatives file that cannot be read or changed; the message names it and says why."""


@dataclass(frozen=True)
class Negative:
    """One correction: the face of event `event` is not this person."""

    event: int
    time: float  # when the event happened
    added: float  # when the correction was made
    by: str  # who made it: a dashboard user, or "command line"
    capture: str | None  # the capture's face image (a file name in the captures folder) it was read from
    encodings: np.ndarray  # (n, 128) float32

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "time": self.time,
            "added": self.added,
            "by": self.by,
            "capture": self.capture,
            "encodings": [[round(float(x), 6) for x in row] for row in self.encodings],
        }


def folder_of(config: Config) -> Path:
    """Where the negatives files of a site are: `negatives/` in the encoding cache folder."""
    return config.paths.encodings_cache / FOLDER


def make_folder(folder: Path) -> None:
    """Make the negatives folder and the cache folder it is in, both 0700."""
    private_folder(folder.parent)
    private_folder(folder)


def path_of(folder: Path, person_id: str) -> Path:
    if not VALID_ID.match(person_id):
        raise NegativesError(f"Id {person_id!r} is not a watchlist Id")
    return folder / f"{person_id}.json"


def read_negatives(folder: Path, person_id: str) -> list[Negative]:
    """A person's negatives in the order they were added; [] without a file;
    NegativesError if it is damaged."""
    path = path_of(folder, person_id)
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise NegativesError(
            f"{path}: "
            f"{exc.strerror if isinstance(exc, UnsafeFile) else f'cannot read: {exc.strerror or exc}'}"
        ) from None
    return _parse(path, data, person_id)


def load_negatives(folder: Path) -> tuple[dict[str, np.ndarray], list[Problem]]:
    """Every person's negative encodings (Id -> (n, 128) array), and each file that
    cannot be used as a problem."""
    found: dict[str, np.ndarray] = {}
    problems: list[Problem] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix != ".json":
            continue  # a writer's temporary file, or something that is not ours
        person_id = path.name.removesuffix(".json")
        if not VALID_ID.match(person_id):
            continue
        try:
            data = read_regular(path)
        except OSError as exc:
            reason = exc.strerror if isinstance(exc, UnsafeFile) else f"cannot read: {exc.strerror or exc}"
            problems.append(
                Problem(str(path), f"the negatives of Id {person_id} cannot be used ({reason}); skipped")
            )
            continue
        try:
            negatives = _parse(path, data, person_id)
        except NegativesError as exc:
            problems.append(
                Problem(
                    str(path),
                    f"the negatives of Id {person_id} cannot be used ({_why(exc, path)}); "
                    "skipped: these corrections do not apply until the file is fixed or removed",
                    version=hashlib.sha256(data).hexdigest(),
                )
            )
            continue
        if negatives:
            found[person_id] = np.concatenate([n.encodings for n in negatives]).astype(np.float32)
    return found, problems


def add_negative(folder: Path, person_id: str, negative: Negative) -> bool:
    """Keep `negative` for `person_id`; False if that event is one of theirs already (nothing changes)."""
    path = path_of(folder, person_id)
    with _locked(folder):
        negatives = read_negatives(folder, person_id)
        if any(n.event == negative.event for n in negatives):
            return False
        _write(path, person_id, [*negatives, negative])
    return True


def remove_negative(folder: Path, person_id: str, event: int) -> bool:
    """Forget the negative of `event` for `person_id`; False if there was none."""
    path = path_of(folder, person_id)
    if not path.exists():
        return False
    with _locked(folder):
        negatives = read_negatives(folder, person_id)
        kept = [n for n in negatives if n.event != event]
        if len(kept) == len(negatives):
            return False
        if kept:
            _write(path, person_id, kept)
        else:
            path.unlink()
    return True


def remove_all(folder: Path, person_id: str) -> None:
    """Forget every negative of a person (they are removed from the watchlist)."""
    path = path_of(folder, person_id)
    if not folder.is_dir():
        return
    with _locked(folder):
        path.unlink(missing_ok=True)


def count_negatives(folder: Path) -> dict[str, int]:
    """How many corrections each person has (damaged files count as none)."""
    counts = {}
    if not folder.is_dir():
        return counts
    for path in folder.glob("*.json"):
        person_id = path.name.removesuffix(".json")
        try:
            counts[person_id] = len(read_negatives(folder, person_id))
        except NegativesError:
            continue
    return counts


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on the negatives folder (another process may be writing too)."""
    make_folder(folder)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write(path: Path, person_id: str, negatives: list[Negative]) -> None:
    data = {
        "format": FORMAT,
        "encoder": ENCODER_SIGNATURE,
        "id": person_id,
        "negatives": [n.to_json() for n in negatives],
    }
    write_private(path, json.dumps(data, separators=(",", ":")).encode())


def _parse(path: Path, data: bytes, person_id: str) -> list[Negative]:
    """The entries of a negatives file; NegativesError naming the file and what is wrong with it."""
    if len(data) > MAX_FILE_BYTES:
        raise NegativesError(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NegativesError(f"{path}: not a negatives file (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("negatives"), list):
        raise NegativesError(f"{path}: not a negatives file (no {FORMAT!r} format and list of negatives)")
    if doc.get("encoder") != ENCODER_SIGNATURE:
        raise NegativesError(
            f"{path}: made with another face encoder ({doc.get('encoder')!r}); "
            "its encodings cannot be compared with today's"
        )
    if doc.get("id") != person_id:
        raise NegativesError(f"{path}: holds the negatives of Id {doc.get('id')!r}, not of Id {person_id}")
    out = []
    for n, entry in enumerate(doc["negatives"], 1):
        try:
            out.append(_entry(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise NegativesError(f"{path}: entry {n} is damaged ({exc})") from None
    return out


def _entry(entry: Any) -> Negative:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    event, when, added = entry["event"], float(entry["time"]), float(entry["added"])
    if (
        not isinstance(event, int)
        or isinstance(event, bool)
        or not (math.isfinite(when) and math.isfinite(added))
    ):
        raise ValueError("event or times are not numbers")
    encodings = np.array(entry["encodings"], dtype=np.float64)
    if encodings.ndim != 2 or encodings.shape[1] != ENCODING_SIZE or len(encodings) == 0:
        raise ValueError(f"encodings are not a list of {ENCODING_SIZE}-number lists")
    if not np.isfinite(encodings).all():
        raise ValueError("encodings hold values that are not numbers")
    capture = entry.get("capture")
    return Negative(
        event,
        when,
        added,
        str(entry.get("by", "")),
        capture if isinstance(capture, str) else None,
        encodings.astype(np.float32),
    )


def _why(exc: NegativesError, path: Path) -> str:
    """The reason of an error without the file name in front (the problem names the file already)."""
    return str(exc).removeprefix(f"{path}: ")
