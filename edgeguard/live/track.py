"""Following faces between detections, and what is known about each one (identity and mask votes, best view).

Detection does not run on every frame, so a face is followed as a `Track`:
each detection is given to the existing track whose last box it overlaps
most (or, failing overlap, whose centre is within one face width, for a face
that moved between two detections), or starts a new track.  A track that has
not been seen for `forget_seconds` has left the view.

Who the face is, is decided by a majority vote (edgeguard.live.vote) over
identity samples: the nearest watchlist person within the tolerance; unknown
when farther than the tolerance plus `unknown_margin`; an abstention in
between.  Whether it wears a mask is decided the same way over mask samples
(edgeguard.mask.vote_label: a sample abstains unless the model is sure).
Only this module changes a track; the pipeline feeds it samples and views.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..capture import Frame
from ..detect import Box, Detection
from .vote import MajorityVote, Verdict

# A box overlapping a track's last box at least this much (IoU) is that face again.
SAME_TRACK_IOU = 0.3


@dataclass(frozen=True)
class BestView:
    frame: Frame
    box: Box
    score: float

    @property
    def crop(self) -> np.ndarray:
        return self.box.crop(self.frame.image)


@dataclass
class Sample:
    label: str | Verdict  # a watchlist Id, Verdict.UNKNOWN or Verdict.ABSTAIN
    distance: float | None
    encoding: np.ndarray


class Track:
    def __init__(self, id: int, box: Box, now: float, ballots: int = 3) -> None:
        self.id = id
        self.box = box
        self.frontal = True  # whether it faced the camera enough, when last seen, for an identity sample
        self.last_time = now  # when it was last seen
        self.last_sample_time = float("-inf")  # when its identity was last sampled
        self.mask_time = float("-inf")  # when its mask was last sampled
        # Bumped whenever the face is voted masked or someone else takes the track's place:
        # a bare face is reported once per episode (edgeguard.events.rules).
        self.mask_episode = 0
        self.samples: list[Sample] = []  # the open (or deciding) identity vote's samples
        self.best: BestView | None = None  # the view a capture is made of
        self.pooled_distance: float | None = (
            None  # set when pooling decided the vote (edgeguard.live.pipeline)
        )
        self._ballots = ballots
        self._identity: MajorityVote[str | Verdict] = MajorityVote(
            ballots, Verdict.UNKNOWN, abstain_confirms=True
        )
        self._mask: MajorityVote[bool] = MajorityVote(ballots)

    @property
    def decided(self) -> str | Verdict | None:
        """The identity: a watchlist Id, Verdict.UNKNOWN, or None while the vote is open."""
        return self._identity.outcome

    @property
    def masked(self) -> bool | None:
        """Whether the face wears a mask, None while its mask vote is open."""
        return self._mask.outcome

    def seen(self, detection: Detection, now: float) -> None:
        self.box, self.frontal, self.last_time = detection.box, detection.frontal, now

    def add_sample(self, sample: Sample, now: float) -> bool:
        """Record one identity sample; True if this decided the track.

        Two re-check samples against the decision start a new vote (someone else
        stands there now): with a new best view and a new mask vote.
        """
        self.last_sample_time = now
        was_decided = self.decided is not None
        if not was_decided:
            self.samples.append(sample)
        decided = self._identity.add(sample.label)
        if was_decided and self.decided is None:
            self.samples = [sample]
            self.best = None
            self.pooled_distance = None
            self._mask = MajorityVote(self._ballots)
            self.mask_episode += 1
        return decided

    def decide_pooled(self, person_id: str, distance: float) -> None:
        """Name the face from its pooled samples (edgeguard.live.pipeline.pooled_identity)
        while the vote is open."""
        self._identity.decide(person_id)
        self.pooled_distance = distance

    def add_mask_sample(self, masked: bool | None, now: float) -> None:
        """Record one mask sample: True masked, False bare, None unsure (it abstains)."""
        self.mask_time = now
        if self._mask.add(Verdict.ABSTAIN if masked is None else masked) and self.masked:
            self.mask_episode += 1

    def offer_view(self, frame: Frame, box: Box, sharpness: float) -> None:
        """Keep the best view of the face seen so far: the largest, sharpest one."""
        score = box.area * min(sharpness, 500.0)
        if self.best is None or score > self.best.score:
            self.best = BestView(frame, box, score)

    def take_view(self) -> BestView | None:
        """The best view, handed over once: the track lets go of its frame."""
        best, self.best = self.best, None
        return best

    def encodings_for(self, label: str | Verdict) -> np.ndarray:
        """The encodings of the samples that voted for `label`."""
        return np.array([s.encoding for s in self.samples if s.label == label])

    def all_encodings(self) -> np.ndarray:
        return np.array([s.encoding for s in self.samples])

    def best_distance(self, label: str | Verdict) -> float | None:
        """The nearest sample voting for `label`; for a pooled decision, the pooled samples' distance."""
        distances = [s.distance for s in self.samples if s.label == label and s.distance is not None]
        if self.pooled_distance is not None and label == self.decided:
            distances.append(self.pooled_distance)
        return min(distances) if distances else None


def _near(a: Box, b: Box) -> bool:
    """Same face moved a little: centres within one face width, sizes within 1.5x."""
    (ax, ay), (bx, by) = a.center, b.center
    size_ratio = max(a.width, b.width) / max(1, min(a.width, b.width))
    return (ax - bx) ** 2 + (ay - by) ** 2 <= max(a.width, b.width) ** 2 and size_ratio <= 1.5


class Tracker:
    """Associates each detection with a track; owns the tracks in view."""

    def __init__(self, forget_seconds: float, ballots: int = 3) -> None:
        self.forget_seconds = forget_seconds
        self.ballots = ballots
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def update(
        self, found: list[Detection], now: float, candidates: list[Track] | None = None
    ) -> list[Track]:
        """Give each detection to a track (among `candidates`, default all) or a new one.

        With `candidates` (a search around known tracks) a box that fits none of
        them is dropped, not made a new track.  Returns the tracks seen, largest face first.
        """
        unmatched = {t.id for t in candidates} if candidates is not None else set(self.tracks)
        seen: list[Track] = []
        for detection in sorted(found, key=lambda d: -d.box.area):
            track = self._best_track(detection.box, unmatched)
            if track is None and candidates is not None:
                continue
            if track is None:
                track = Track(next(self._ids), detection.box, now, self.ballots)
                self.tracks[track.id] = track
            else:
                unmatched.discard(track.id)
            track.seen(detection, now)
            seen.append(track)
        return seen

    def expire(self, now: float) -> list[Track]:
        """Drop the tracks not seen for `forget_seconds`; returns them."""
        gone = [t for t in self.tracks.values() if now - t.last_time > self.forget_seconds]
        for track in gone:
            del self.tracks[track.id]
        return gone

    def _best_track(self, box: Box, candidates: set[int]) -> Track | None:
        scored = [(box.iou(self.tracks[t].box), self.tracks[t]) for t in candidates]
        overlapping = [(score, track) for score, track in scored if score >= SAME_TRACK_IOU]
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
