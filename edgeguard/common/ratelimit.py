"""Log lines held to one a minute per key, so that a flood of bad requests or frames
writes one line a minute."""

from __future__ import annotations

import threading
import time


class EveryMinute:
    """Whether something about a key (a client address, a kind of refused frame) may be logged now: at most
    once a minute per key."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def due(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            if now - self._last.get(key, -60.0) < 60.0:
                return False
            if len(self._last) > 10_000:  # many addresses: forget those logged over a minute ago
                self._last = {k: t for k, t in self._last.items() if now - t < 60.0}
            self._last[key] = now
            return True
