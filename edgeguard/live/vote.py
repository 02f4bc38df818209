"""The majority vote that decides who a tracked face is and whether it wears a mask.

A vote has `ballots` ballots.  Each sample casts one: a label (a watchlist Id,
`Verdict.UNKNOWN`, True/False for a mask) or `Verdict.ABSTAIN` when it is too
unsure to count.  As soon as one label holds more than half of the ballots and
a strict majority of the decisive samples so far, it is the outcome (with 3
ballots, two agreeing samples decide).  Without that the vote goes on: a vote
with a `give_up` label ends with it after three times `ballots` samples (an
identity is never given without a majority, so a split vote ends unknown);
one without keeps only the latest three times `ballots` samples.

A decided vote is re-checked now and then: two samples in a row against the
outcome reopen it, starting from the latest one (someone else took the tracked
face's place; a mask went on or came off).  A sample for the outcome breaks
the row.  Whether an abstention breaks it too is the vote's `abstain_confirms`:
an uncertain identity sample lies near the watchlist (most often near the
decided person, just beyond the tolerance), so it does; an unsure mask sample
says nothing either way, so it does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from enum import Enum
from typing import Generic, TypeVar


class Verdict(Enum):
    """Ballots that are not a label of their own kind."""

    UNKNOWN = "unknown"  # an identity sample that matched nobody
    ABSTAIN = "abstain"  # too unsure to count either way

    def __repr__(self) -> str:
        return f"Verdict.{self.name}"


L = TypeVar("L", bound=Hashable)


class MajorityVote(Generic[L]):
    def __init__(self, ballots: int, give_up: L | None = None, abstain_confirms: bool = False) -> None:
        self.ballots = ballots
        self.give_up = give_up
        self.abstain_confirms = abstain_confirms
        self.samples: list[L | Verdict] = []
        self.outcome: L | None = None
        self._against = 0  # re-check samples in a row against the outcome

    def add(self, ballot: L | Verdict) -> bool:
        """Count one ballot; True when it decided the vote (a re-check never does: it confirms or reopens)."""
        if self.outcome is not None:
            self._recheck(ballot)
            return False
        self.samples.append(ballot)
        window = 3 * self.ballots
        if self.give_up is None:
            self.samples = self.samples[-window:]
        decisive = [b for b in self.samples if b is not Verdict.ABSTAIN]
        label = _majority(decisive)
        if label is not None and decisive.count(label) * 2 > self.ballots:
            self.decide(label)
            return True
        if self.give_up is not None and len(self.samples) >= window:
            self.decide(self.give_up)
            return True
        return False

    def decide(self, label: L | Verdict) -> None:
        """End the vote with `label` (the vote's own majority, or a rule outside it such as pooling)."""
        self.outcome = label  # type: ignore[assignment]  # ABSTAIN never wins: it is not decisive
        self._against = 0

    def _recheck(self, ballot: L | Verdict) -> None:
        if ballot == self.outcome or (ballot is Verdict.ABSTAIN and self.abstain_confirms):
            self._against = 0
            return
        if ballot is Verdict.ABSTAIN:
            return
        self._against += 1
        if self._against >= 2:
            self.samples, self.outcome, self._against = [ballot], None, 0


def _majority(labels: list) -> Hashable | None:
    if not labels:
        return None
    label, count = Counter(labels).most_common(1)[0]
    return label if count * 2 > len(labels) else None
