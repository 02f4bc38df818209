"""Recognising the same unknown visitor when they come back within a time window.

Unknown faces are remembered (in memory only, as a few encodings each) for
`window` seconds after they were last seen, by every camera of the device.  A
new unknown track whose encodings are a match for a remembered visitor's
(edgeguard.common.match_rule, the same thresholds as the watchlist) is that
visitor, and the window starts again; the visitor keeps one capture per
location (edgeguard.events.recorder).  Callers hold the site's lock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..common.match_rule import MatchDecision, MatchThresholds

MAX_ENCODINGS = 5  # per visitor: enough to cover pose changes, little memory


@dataclass
class Visitor:
    id: int
    encodings: np.ndarray
    last_seen: float
    captures: dict[str, str | None] = field(default_factory=dict)  # location -> capture of this visit there
    stranger: int | None = None  # the persistent stranger they are (edgeguard.events.strangers)


class UnknownVisitors:
    def __init__(self, window: float, thresholds: MatchThresholds) -> None:
        self.window = window
        self.thresholds = thresholds
        self._visitors: list[Visitor] = []
        self._ids = itertools.count(1)

    def recall(self, encodings: np.ndarray, now: float) -> Visitor | None:
        """The remembered visitor these encodings belong to, if any (and refresh them)."""
        self._forget_before(now - self.window)
        best, best_distance = None, float("inf")
        for visitor in self._visitors:
            distances = np.linalg.norm(visitor.encodings[:, None, :] - encodings[None, :, :], axis=2)
            distance = float(np.median(distances.min(axis=0)))
            if self.thresholds.decide(distance) is MatchDecision.MATCH and distance <= best_distance:
                best, best_distance = visitor, distance
        if best is not None:
            best.last_seen = now
            best.encodings = np.concatenate([best.encodings, encodings])[-MAX_ENCODINGS:]
        return best

    def remember(self, encodings: np.ndarray, now: float) -> Visitor:
        visitor = Visitor(next(self._ids), encodings[-MAX_ENCODINGS:], now)
        self._visitors.append(visitor)
        return visitor

    def _forget_before(self, cutoff: float) -> None:
        self._visitors = [v for v in self._visitors if v.last_seen >= cutoff]
