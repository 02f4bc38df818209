"""The strangers remembered, told of an erasure: an output of the event bus that has the daemon's
StrangerStore (edgeguard.store.strangers) read its file again when `edgeguard forget`, in another process,
has erased strangers from it.  Not durable: the store reads the file whole at every start."""

from __future__ import annotations

from ..events.event import Event, EventType
from ..store.strangers import StrangerStore
from .base import Output


class StrangersOutput(Output):
    name = "strangers"

    def __init__(self, strangers: StrangerStore) -> None:
        self.strangers = strangers

    def handle(self, event: Event) -> None:
        if event.type == EventType.ERASED:
            self.strangers.refresh()
