"""The search index of the past: one encoding per recorded face decision, searched by face.

Every event of a face with a capture (known_face, unknown_face, loitering, return_visit; a no_mask
event shows its decision's face again) is one row: the mean of
the encodings of the samples that voted for the decision (read from the
capture's sidecar, edgeguard.store.face_captures), with the event's seq, time,
camera and location.  The mean of a vote's samples is less noisy than any one
of them and makes a row of fixed size: 128 float32 (512 bytes) plus 28 bytes of
seq, time, norm and codes, about 54 MB per 100,000 faces (bench/search_speed.py
measures it).  A revisit of an unknown visitor is its own event and its own row
(it points at the visit's capture), so every event of the face is found.

A search is one matrix product over the rows, masked by time, camera and
location: the Euclidean distance of the query encoding to every row from
|q|² + |x|² − 2 q·x.  A row is a hit when the one match rule
(edgeguard.common.match_rule) calls that distance a MATCH, and its words are the
rule's ("strong", "possible").

The index is built lazily, from the event log, on the first search; after that
`add` keeps it current with each event the event bus hands it
(edgeguard.outputs.face_index), and a gap in the seqs it is handed (an event
dropped from a full queue) is read back from the event log, as is, at each
search, anything logged that the bus has not handed over yet.  Rows whose capture
retention has deleted are left out of the results and dropped from the index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..common.match_rule import MatchThresholds
from ..events.event import DECISIONS, Event, EventType
from .face_captures import CaptureError, CaptureFolder

log = logging.getLogger(__name__)

DIMENSIONS = 128
READ_BATCH = 2000  # events read from the event log at a time while loading
FIRST_ROWS = 1024
INDEXED = (*DECISIONS, EventType.LOITERING, EventType.RETURN_VISIT)


class EventSource(Protocol):
    """Where the index reads the recorded events from: the event log (EventLog, EventReader)."""

    def after(self, seq: int, limit: int) -> list[Event]: ...


@dataclass(frozen=True)
class SearchFilter:
    """What a search is limited to; None: any."""

    since: float | None = None
    camera: str | None = None
    location: str | None = None


EVERYWHERE = SearchFilter()


@dataclass(frozen=True)
class Hit:
    seq: int  # the event's
    distance: float
    words: str  # "strong" or "possible", by the match rule


class FaceIndex:
    """The encodings of every recorded face decision, searched by face; safe to use from several threads."""

    def __init__(
        self,
        events: EventSource,
        captures: CaptureFolder,
        thresholds: MatchThresholds,
        retention_seconds: float | None = None,
    ) -> None:
        self.events = events
        self.captures = captures
        self.thresholds = thresholds
        self.retention_seconds = retention_seconds
        self._lock = threading.Lock()
        self._loaded = False
        self._seq = 0  # the last event read (indexed or not)
        self._rows = 0
        self._encodings = np.empty((0, DIMENSIONS), np.float32)
        self._norms = np.empty(0, np.float32)  # |x|² of each row
        self._seqs = np.empty(0, np.int64)
        self._times = np.empty(0, np.float64)
        self._cameras = np.empty(0, np.int32)
        self._locations = np.empty(0, np.int32)
        self._codes: dict[str, dict[str, int]] = {"camera": {}, "location": {}}
        self.unreadable = 0  # events whose capture had no readable encodings when they were indexed

    @property
    def size(self) -> int:
        """Rows indexed (0 until the first search loads the index)."""
        return self._rows

    @property
    def nbytes(self) -> int:
        """Memory the rows take, allocated room included."""
        arrays = (self._encodings, self._norms, self._seqs, self._times, self._cameras, self._locations)
        return sum(a.nbytes for a in arrays)

    def add(self, event: Event) -> None:
        """Index a newly recorded event (the event bus's output); before the first search, nothing: the
        load reads it from the event log."""
        with self._lock:
            if not self._loaded or event.seq is None or event.seq <= self._seq:
                return
            if event.seq > self._seq + 1:  # events were not handed over: read them from the log
                self._read_log()
                return
            self._take([event])

    def add_encodings(
        self, seqs: np.ndarray, times: np.ndarray, camera: str, location: str, encodings: np.ndarray
    ) -> None:
        """Index encodings of one camera directly, in bulk (the benchmark's synthetic faces); marks the
        index loaded."""
        with self._lock:
            self._loaded = True
            n, end = len(seqs), self._rows + len(seqs)
            if end > len(self._seqs):
                self._grow(end)
            rows = slice(self._rows, end)
            self._encodings[rows] = encodings
            self._norms[rows] = np.einsum("ij,ij->i", self._encodings[rows], self._encodings[rows])
            self._seqs[rows], self._times[rows] = seqs, times
            self._cameras[rows], self._locations[rows] = (
                self._code("camera", camera),
                self._code("location", location),
            )
            self._rows = end
            self._seq = max(self._seq, int(np.max(seqs))) if n else self._seq

    def search(self, encoding: np.ndarray, where: SearchFilter = EVERYWHERE, limit: int = 100) -> list[Hit]:
        """The events whose face is a match for `encoding`, nearest first, at most `limit`."""
        query = np.asarray(encoding, np.float32).reshape(DIMENSIONS)
        with self._lock:
            if self._loaded:
                self._read_log()  # what the event bus has not handed over yet (usually nothing)
            else:
                self._load()
            self._expire()
            n = self._rows
            distances = self._norms[:n] + float(query @ query) - 2.0 * (self._encodings[:n] @ query)
            np.sqrt(np.maximum(distances, 0.0, out=distances), out=distances)
            keep = distances <= self.thresholds.tolerance  # a MATCH by the rule (MatchThresholds.decide)
            if where.since is not None:
                keep &= self._times[:n] >= where.since
            for column, name in (("camera", where.camera), ("location", where.location)):
                if name is not None:
                    codes = self._cameras if column == "camera" else self._locations
                    keep &= codes[:n] == self._codes[column].get(name, -1)
            found = np.flatnonzero(keep)
            order = found[np.argsort(distances[found], kind="stable")][:limit]
            return [self._hit(int(self._seqs[i]), float(distances[i])) for i in order]

    def forget(self, seqs: Iterable[int]) -> None:
        """Drop the rows of these events (their captures are gone: retention, erasure)."""
        gone = np.fromiter(seqs, np.int64)
        with self._lock:
            self._compact(~np.isin(self._seqs[: self._rows], gone))

    def _hit(self, seq: int, distance: float) -> Hit:
        return Hit(seq, round(distance, 4), self.thresholds.words(distance, others_named=False))

    def _load(self) -> None:
        started = time.monotonic()
        self._read_log()
        self._loaded = True
        log.info(
            "search index: %d face(s) of %d event(s) loaded in %.1f s (%.1f MB)",
            self._rows,
            self._seq,
            time.monotonic() - started,
            self.nbytes / 1e6,
        )

    def _read_log(self) -> None:
        while True:
            batch = self.events.after(self._seq, READ_BATCH)
            if not batch:
                return
            self._take(batch)

    def _take(self, events: list[Event]) -> None:
        for event in events:
            assert event.seq is not None
            self._seq = max(self._seq, event.seq)
            if event.type not in INDEXED or not event.capture:
                continue
            encoding = self._encoding_of(event)
            if encoding is not None:
                self._append(event.seq, event.time, event.camera, event.location, encoding)

    def _encoding_of(self, event: Event) -> np.ndarray | None:
        """The mean encoding of the samples that voted, from the event's capture; None (counted) when the
        capture is gone or has none."""
        capture = self.captures.of(event.capture)
        if capture is None:
            return None
        try:
            samples = np.asarray(capture.sidecar_data().get("encodings") or [], np.float32)
        except (CaptureError, ValueError, TypeError):
            samples = np.empty((0,))
        if samples.ndim != 2 or samples.shape[1] != DIMENSIONS or len(samples) == 0:
            self.unreadable += 1
            return None
        return samples.mean(axis=0)

    def _append(self, seq: int, when: float, camera: str, location: str, encoding: np.ndarray) -> None:
        if self._rows == len(self._seqs):
            self._grow(max(FIRST_ROWS, 2 * self._rows))
        i = self._rows
        self._encodings[i] = encoding
        self._norms[i] = float(self._encodings[i] @ self._encodings[i])
        self._seqs[i] = seq
        self._times[i] = when
        self._cameras[i] = self._code("camera", camera)
        self._locations[i] = self._code("location", location)
        self._rows += 1

    def _code(self, column: str, name: str) -> int:
        return self._codes[column].setdefault(name, len(self._codes[column]))

    def _grow(self, room: int) -> None:
        def grown(array: np.ndarray) -> np.ndarray:
            bigger = np.empty((room, *array.shape[1:]), array.dtype)
            bigger[: self._rows] = array[: self._rows]
            return bigger

        self._encodings, self._norms, self._seqs = map(grown, (self._encodings, self._norms, self._seqs))
        self._times, self._cameras, self._locations = map(
            grown, (self._times, self._cameras, self._locations)
        )

    def _expire(self) -> None:
        """Drop the rows past retention (retention has deleted their captures, or is about to)."""
        if self.retention_seconds is None or not self._rows:
            return
        cutoff = time.time() - self.retention_seconds
        if self._times[: self._rows].min() < cutoff:
            self._compact(self._times[: self._rows] >= cutoff)

    def _compact(self, keep: np.ndarray) -> None:
        kept = int(keep.sum())
        for name in ("_encodings", "_norms", "_seqs", "_times", "_cameras", "_locations"):
            array = getattr(self, name)
            array[:kept] = array[: self._rows][keep]
        self._rows = kept
