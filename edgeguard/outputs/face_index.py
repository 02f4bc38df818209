"""The search index kept current: an output of the event bus handing each recorded event to the FaceIndex
(edgeguard.store.face_index).  Not durable: the index is built from the event log when it is first searched,
and reads back from the log any event it was not handed (a gap in the seqs)."""

from __future__ import annotations

from ..events.event import Event, EventType
from ..store.face_index import FaceIndex
from .base import Output


class FaceIndexOutput(Output):
    name = "search"

    def __init__(self, index: FaceIndex) -> None:
        self.index = index

    def handle(self, event: Event) -> None:
        if event.type == EventType.ERASED:  # edgeguard forget: the erased events' faces leave the index
            self.index.forget(seq for seq, _ in event.extra.get("events", []))
        self.index.add(event)
