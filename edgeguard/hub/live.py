"""Live updates on the hub's event log: while someone watches, the events stored since the last look (by any
hub process: they are read from the database, the one state hub processes share) are handed to the open
streams every POLL_SECONDS.  `received` is each storing process's clock, so the look goes SKEW_SECONDS back
and remembers what it has handed on in that window: a row stored a little late, or by a process whose clock
is a little behind, still comes once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from ..web.events import EventHub
from .store import HubStore

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
SKEW_SECONDS = 10.0


class LiveRows:
    def __init__(self, store: HubStore, hub: EventHub, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock
        self._seen: dict[str, float] = {}  # event_id -> received, of the rows handed on within the window
        self._cursor = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.look()
            except SQLAlchemyError as exc:  # the database is away: the next look tries again
                log.warning("hub: live updates cannot read the database: %s", str(exc).splitlines()[0][:200])

    def look(self) -> int:
        """Hand the rows stored since the last look to the streams (none watching: nothing read); how many."""
        if not self.hub.watching():
            self._cursor, self._seen = self.clock(), {}
            return 0
        rows = [
            r
            for r in self.store.events_received_since(self._cursor - SKEW_SECONDS)
            if r["event_id"] not in self._seen
        ]
        for row in rows:
            self._seen[row["event_id"]] = row["received"]
            self.hub.publish(row)
        if rows:
            self._cursor = max(self._cursor, max(r["received"] for r in rows))
        edge = self._cursor - SKEW_SECONDS
        self._seen = {k: v for k, v in self._seen.items() if v >= edge}
        return len(rows)
