"""Slots for the streams a page holds open (live views, event streams): a cap for the whole site, and a
smaller one per user, so that one user (or one stolen session) cannot take every slot and shut the others
out.  Each stream holds a server thread until it ends, so the site's cap is what the server has threads for
(edgeguard.web.server); the user's cap is what one person's open pages need."""

from __future__ import annotations

import threading
from collections import Counter


class SlotsFull(Exception):
    """No slot for this user: the site's are all taken, or the user holds their share already."""

    def __init__(self, limit: int, per_user: bool) -> None:
        super().__init__(f"{limit} {'for this user' if per_user else 'for the site'}")
        self.limit = limit
        self.per_user = per_user


class Slots:
    def __init__(self, total: int, per_user: int) -> None:
        self.total = total
        self.per_user = per_user
        self.taken = 0  # read without the lock by the frame loop (LiveHub.wants): an int is read whole
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, user: str) -> None:
        """Take a slot for `user`; SlotsFull when there is none for them (the user's cap is checked first:
        their own pages are what they can close)."""
        with self._lock:
            if self._held[user] >= self.per_user:
                raise SlotsFull(self.per_user, per_user=True)
            if self.taken >= self.total:
                raise SlotsFull(self.total, per_user=False)
            self._held[user] += 1
            self.taken += 1

    def give_back(self, user: str) -> None:
        with self._lock:
            self._held[user] -= 1
            if self._held[user] <= 0:
                del self._held[user]
            self.taken -= 1
