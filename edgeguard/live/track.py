"""Tracking faces between detections, and deciding who a track is by a vote.

Detection does not run on every frame, so a face is followed as a `Track`:
each detection is given to the existing track whose last box it overlaps
most (or, failing overlap, whose centre is within one face width, for a face
that moved between two detections), or starts a new track.  A track that has
not been seen for `forget_seconds` has left the view.

The vote rule: a track collects one sample per encoding: the nearest watchlist
person within the tolerance; unknown when farther than the tolerance plus
`unknown_margin`; uncertain in between (an abstention).  The vote has
`vote_frames` ballots: as soon as one label holds more than half of them, and
a strict majority of the decisive samples so far, it is the track's identity
(with 3 ballots, two agreeing samples decide).  Without that the track keeps
sampling, and after three times `vote_frames` samples in all it is decided
unknown: a name is never given without a majority.  A decided track is re-checked now and
then; two disagreeing samples in a row reopen the vote (a different person
took the place of the tracked one).

The mask vote follows the same rule over mask samples (edgeguard.mask.vote_label:
a sample abstains unless the model is sure), and is re-checked the same way:
a mask can go on or come off.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .capture import Frame
from .detect import Box

UNKNOWN = ""  # the vote label of a face that matched nobody
UNCERTAIN = "?"  # a face just beyond the tolerance: neither names nor rejects


@dataclass(frozen=True)
class BestView:
    frame: Frame
    box: Box
    score: float

    @property
    def crop(self) -> np.ndarray:
        height, width = self.frame.image.shape[:2]
        b = self.box.clipped(height, width)
        return self.frame.image[b.top:b.bottom, b.left:b.right]


@dataclass
class Sample:
    label: str  # a watchlist Id, or UNKNOWN
    distance: float | None
    encoding: np.ndarray


@dataclass
class MaskVote:
    """Whether a tracked face wears a mask, decided like its identity over mask ballots."""

    samples: list[bool | None] = field(default_factory=list)  # None: the sample abstained
    masked: bool | None = None  # the outcome, None while undecided
    disagreements: int = 0
    last_time: float = float("-inf")
    reported: bool = False  # a no_mask observation was made for this face being bare

    def add(self, label: bool | None, vote_frames: int, now: float) -> None:
        """Record one mask ballot (None abstains); the identity vote's majority rule decides,
        over the latest three times `vote_frames` samples.  A decided face is re-checked too:
        two sure samples against the outcome, with no sure one for it between, reopen the vote
        (the mask went on or off).
        """
        self.last_time = now
        if self.masked is not None:
            self._recheck(label)
            return
        self.samples = (self.samples + [label])[-3 * vote_frames:]
        decisive = [m for m in self.samples if m is not None]
        for outcome in (True, False):
            if decisive.count(outcome) * 2 > max(vote_frames, len(decisive)):
                self.masked = outcome
                if outcome:
                    self.reported = False
                return

    def _recheck(self, label: bool | None) -> None:
        if label is None:  # unsure: neither confirms the outcome nor counts against it
            return
        if label == self.masked:
            self.disagreements = 0
            return
        self.disagreements += 1
        if self.disagreements >= 2:
            self.samples, self.masked, self.disagreements = [label], None, 0


@dataclass
class Track:
    id: int
    box: Box
    first_frame: int
    last_frame: int
    last_time: float
    samples: list[Sample] = field(default_factory=list)
    decided: str | None = None  # None while the vote is open
    decided_frame: int | None = None
    disagreements: int = 0
    last_sample_frame: int = -(10**9)
    last_sample_time: float = float("-inf")
    best: BestView | None = None  # the view an unknown-face capture is made of
    mask: MaskVote = field(default_factory=MaskVote)

    def add_sample(self, sample: Sample, vote_frames: int, frame: int, now: float) -> bool:
        """Record one identity sample; True if this decided (or re-decided) the track."""
        self.last_sample_frame = frame
        self.last_sample_time = now
        if self.decided is not None:
            return self._recheck(sample)
        self.samples.append(sample)
        decisive = [s.label for s in self.samples if s.label != UNCERTAIN]
        label = _majority(decisive)
        if label is not None and decisive.count(label) * 2 > vote_frames:
            self._decide(label, frame)
            return True
        if len(self.samples) >= 3 * vote_frames:
            self._decide(UNKNOWN, frame)
            return True
        return False

    def _decide(self, label: str, frame: int) -> None:
        self.decided = label
        self.decided_frame = frame
        self.disagreements = 0

    def _recheck(self, sample: Sample) -> bool:
        if sample.label in (self.decided, UNCERTAIN):
            self.disagreements = 0
            return False
        self.disagreements += 1
        if self.disagreements >= 2:  # someone else took this place: a new vote, a new best view, a new mask vote
            self.decided = None
            self.decided_frame = None
            self.samples = [sample]
            self.best = None
            self.mask = MaskVote()
        return False

    def offer_view(self, frame: Frame, box: Box, sharpness: float) -> None:
        """Keep the best view of the face seen so far: the largest, sharpest one."""
        score = box.width * box.height * min(sharpness, 500.0)
        if self.best is None or score > self.best.score:
            self.best = BestView(frame, box, score)

    def encodings_for(self, label: str) -> np.ndarray:
        """The encodings of the samples that voted for `label`."""
        return np.array([s.encoding for s in self.samples if s.label == label])

    def best_distance(self, label: str) -> float | None:
        distances = [s.distance for s in self.samples if s.label == label and s.distance is not None]
        return min(distances) if distances else None


def _majority(labels: list[str]) -> str | None:
    if not labels:
        return None
    label, count = Counter(labels).most_common(1)[0]
    return label if count * 2 > len(labels) else None


def iou(a: Box, b: Box) -> float:
    inter_w = min(a.right, b.right) - max(a.left, b.left)
    inter_h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    return inter / (a.width * a.height + b.width * b.height - inter)


def _near(a: Box, b: Box) -> bool:
    """Same face moved a little: centres within one face width, sizes within 1.5x."""
    (ax, ay), (bx, by) = a.center, b.center
    size_ratio = max(a.width, b.width) / max(1, min(a.width, b.width))
    return (ax - bx) ** 2 + (ay - by) ** 2 <= max(a.width, b.width) ** 2 and size_ratio <= 1.5


class Tracker:
    """Associates each detection with a track; owns the tracks in view."""

    def __init__(self, forget_seconds: float) -> None:
        self.forget_seconds = forget_seconds
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def update(self, boxes: list[Box], frame: int, now: float,
               candidates: list[Track] | None = None) -> list[Track]:
        """Give each detection to a track (among `candidates`, default all) or a new one.

        With `candidates` (a search around known tracks) a box that fits none of
        them is dropped, not made a new track.  Returns the tracks seen, largest face first.
        """
        unmatched = {t.id for t in candidates} if candidates is not None else set(self.tracks)
        seen: list[Track] = []
        for box in sorted(boxes, key=lambda b: -b.width * b.height):
            track = self._best_track(box, unmatched)
            if track is None and candidates is not None:
                continue
            if track is None:
                track = Track(next(self._ids), box, frame, frame, now)
                self.tracks[track.id] = track
            else:
                unmatched.discard(track.id)
                track.box, track.last_frame, track.last_time = box, frame, now
            seen.append(track)
        return seen

    def expire(self, now: float) -> list[Track]:
        """Drop the tracks not seen for `forget_seconds`; returns them."""
        gone = [t for t in self.tracks.values() if now - t.last_time > self.forget_seconds]
        for track in gone:
            del self.tracks[track.id]
        return gone

    def _best_track(self, box: Box, candidates: set[int]) -> Track | None:
        scored = [(iou(box, self.tracks[t].box), self.tracks[t]) for t in candidates]
        overlapping = [(score, track) for score, track in scored if score >= 0.3]
        if overlapping:
            return max(overlapping, key=lambda st: st[0])[1]
        near = [track for _, track in scored if _near(box, track.box)]
        return min(near, key=lambda t: _centre_distance(box, t.box)) if near else None

    def clear(self) -> list[Track]:
        """Forget every track (a scene cut); returns them."""
        gone = list(self.tracks.values())
        self.tracks.clear()
        return gone


def _centre_distance(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = a.center, b.center
    return (ax - bx) ** 2 + (ay - by) ** 2
