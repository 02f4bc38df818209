"""What the events stage writes to: the event log and the capture store, as it sees them.

The store (edgeguard.store: EventLog, CaptureStore) comes later in the flow:
it keeps what this stage decides, so it knows `Event` and this stage does not
import it.  The daemon builds the store and hands it to `SiteEvents`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .event import Event


class EventWriter(Protocol):
    def append(self, event: Event) -> Event:
        """Keep an event; the event as kept (with its `seq`)."""
        ...

    def last_seq(self) -> int:
        """The seq of the newest event kept (0: none)."""
        ...

    def after(self, seq: int, limit: int) -> list[Event]:
        """At most `limit` events kept after `seq`, in order (those another process logged too)."""
        ...


class SavedFiles(Protocol):
    @property
    def face(self) -> Path: ...

    @property
    def frame(self) -> Path: ...


class CaptureWriter(Protocol):
    def save(
        self, when: float, camera: str, crop: np.ndarray, frame: np.ndarray, sidecar: dict[str, Any]
    ) -> SavedFiles | str:
        """Write a capture; its files, or the reason it could not be written."""
        ...
