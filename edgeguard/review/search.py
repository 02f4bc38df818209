"""Searching the past by face: the one face of a photo, looked up in the search index
(edgeguard.store.face_index), and the events it was seen in, nearest first (`edgeguard search`, the
dashboard's Search page).

The photo must show one person, checked as a watchlist photo is
(`FaceEngine.enrolment_encoding`: no face, two faces, a face turned away or too
small are refused with the reason), so that the face searched is the face meant
and the same photo can be added to the watchlist.  A hit whose capture
retention or erasure has deleted is not shown and leaves the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..events.event import Event
from ..faces.engine import FaceEngine
from ..store.face_captures import CaptureFolder
from ..store.face_index import EVERYWHERE, FaceIndex, SearchFilter

MOST_RESULTS = 200


class EventsById(Protocol):
    def get(self, seq: int) -> Event | None: ...


@dataclass(frozen=True)
class Found:
    """An event whose face matches the searched one, with the distance and the match rule's words."""

    event: Event
    distance: float
    words: str

    def to_json(self) -> dict[str, Any]:
        """The event as `edgeguard events --json` prints it, `distance` being the search's (the decision's
        own distance kept as `decided_distance`), with `match`: the distance in words."""
        out = self.event.to_json()
        out["decided_distance"] = out["distance"]
        out["distance"] = self.distance
        out["match"] = self.words
        return out


def face_to_search(engine: FaceEngine, rgb: np.ndarray) -> np.ndarray:
    """The encoding of the one person in a search photo; PhotoError (edgeguard.faces.photos) says why not."""
    return engine.enrolment_encoding(rgb)


def search_events(
    index: FaceIndex,
    events: EventsById,
    captures: CaptureFolder,
    encoding: np.ndarray,
    where: SearchFilter = EVERYWHERE,
    limit: int = MOST_RESULTS,
) -> list[Found]:
    """The recorded events of the face `encoding`, nearest first, whose capture is still kept."""
    found, gone = [], []
    for hit in index.search(encoding, where, limit):
        event = events.get(hit.seq)
        capture = captures.of(event.capture) if event is not None else None
        if event is None or capture is None or not capture.exists():
            gone.append(hit.seq)
            continue
        found.append(Found(event, hit.distance, hit.words))
    if gone:
        index.forget(gone)
    return found
