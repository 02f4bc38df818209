"""Strangers remembered across cameras, days and restarts: the rule that says which stranger an unknown
face is, and what a visit is.

An unknown face is decided by the encodings of the samples that voted
(edgeguard.events.recorder).  Its distance to a remembered stranger is the
median, over those samples, of each sample's distance to the nearest of the
stranger's kept encodings (as edgeguard.events.visitors recalls a visitor).
The face is the nearest stranger when that distance is a MATCH by the one
match rule (edgeguard.common.match_rule: at most `tolerance`) and every other
stranger is at least `unknown_margin` farther: two strangers who both come
close are not merged by a face that lies between them; the face becomes a
new stranger instead (a wrong split can be merged from the dashboard, a wrong
merge split).

A visit is a run of sightings with no gap longer than `[events]
revisit_minutes`; a stranger's visits are what `return_visit` counts
(edgeguard.events.rules).  The store (edgeguard.store.strangers) keeps the
strangers, their encodings and sightings, and asks `nearest` which one a face is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..common.match_rule import MatchDecision, MatchThresholds

KEPT_ENCODINGS = 12  # per stranger: poses and lights from several sightings, little memory


def distance_to(face: np.ndarray, kept: np.ndarray) -> float:
    """The median over `face`'s samples of each one's distance to the nearest of `kept`."""
    distances = np.linalg.norm(kept[:, None, :] - face[None, :, :], axis=2)
    return float(np.median(distances.min(axis=0)))


def nearest(face: np.ndarray, strangers: dict[int, np.ndarray], thresholds: MatchThresholds) -> int | None:
    """The stranger `face` (its samples' encodings) is, by the rule above; None: a new stranger."""
    if not strangers or len(face) == 0:
        return None
    scored = sorted((distance_to(face, kept), sid) for sid, kept in strangers.items())
    best, sid = scored[0]
    if thresholds.decide(best) is not MatchDecision.MATCH:
        return None
    if len(scored) > 1 and scored[1][0] - best < thresholds.unknown_margin:
        return None
    return sid


def visit_starts(times: list[float], gap: float) -> list[float]:
    """The start of each visit among sighting `times`: a new visit after more than `gap` seconds unseen."""
    starts: list[float] = []
    last = float("-inf")
    for when in sorted(times):
        if when - last > gap:
            starts.append(when)
        last = when
    return starts


@dataclass(frozen=True)
class StrangerSighting:
    """Which stranger a face is, and their visits (start times, oldest first, this one included)."""

    stranger: int
    visits: list[float] = field(default_factory=list)
    new_visit: bool = True


class StrangerKeeper(Protocol):
    """What the events stage asks of the stranger store (edgeguard.store.strangers.StrangerStore)."""

    def sighted(
        self, face: np.ndarray, when: float, camera: str, location: str, capture: str | None, size: int
    ) -> StrangerSighting:
        """Which stranger `face` is (a new one if nobody), with this sighting kept."""
        ...

    def seen_again(
        self, stranger: int, when: float, camera: str, location: str, capture: str | None
    ) -> StrangerSighting:
        """A sighting of a stranger already known for this face (a visitor recalled within a visit)."""
        ...
