"""The per-frame path: frames in, facts out (whose identity was decided, which faces are bare, how many people).

Detection and encoding are the expensive steps, so neither runs on every frame:

- A full detection, on a grey frame shrunk to `detect_width`, runs every
  `detect_every` seconds, on the first frame, and at once after a scene cut
  (the frame differs from the previous one across the whole picture).  HOG
  misses a face on the odd frame, so after the start or a cut a detection that
  finds nothing is repeated every `track_every` seconds, up to EAGER_TRIES times.
- In between, every `track_every` seconds, each tracked face is looked for
  again only in a small region around its last box, scaled so the face is
  about 100 px: a few milliseconds instead of a whole frame.  That keeps the
  tracks' boxes current and is how the identity vote gets its samples.
- A track is encoded (on the full-size frame) only while its identity vote is
  open, and once every `recheck_seconds` after that to confirm it.  Faces
  below `min_face_size` or blurrier than `min_sharpness` are never encoded.
- The mask model classifies each tracked face at every sighting while its
  mask vote (edgeguard.live.track) is open and every MASK_RECHECK_SECONDS after.
  With `[mask] find_masked = "always"` both detections also keep HOG's
  sub-threshold candidates that the mask model verifies as masked faces; the
  score that verified such a face is its mask sample for that frame.

The pipeline reports facts in a `FrameReport`; what becomes an event (opening
hours, once per face, how long a crowd must last) is the events stage's rule
(edgeguard.events.rules).  Durations (re-checks, forgetting tracks) use the
video position for files, so a file replayed as fast as possible behaves as
it would live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..capture import Frame
from ..config import Config
from ..faces.box import Box
from ..faces.engine import FaceEngine
from ..mask import CANDIDATE_FLOOR, split_faces, vote_label
from ..watchlist.build import Identity, Watchlist
from ..watchlist.details import Person
from .track import Sample, Track, Tracker
from .vote import Verdict

log = logging.getLogger(__name__)

# Mean absolute change (0-255) between consecutive 64x36 grey thumbnails above
# which the frame shows another scene (a cut, a camera moved).  Ordinary motion
# on the test footage stays below 13 in 98% of frames; cuts measure 28-30.
SCENE_CUT = 20.0
THUMB_SIZE = (64, 36)
SHARPNESS_SIDE = 64  # face crops are scaled to this before measuring blur
# Region search: the face is scaled to REGION_FACE px (dlib's HOG window finds
# faces from 80 px without upsampling) in a region REGION_CONTEXT face sizes
# around its last box, enough for the movement of a few frames.
REGION_FACE = 90
REGION_CONTEXT = 0.5
EAGER_TRIES = 2
# A decided mask vote is re-checked this often: a mask sample costs under a
# millisecond (no encoding), so a mask coming off is noticed within seconds.
MASK_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Observation:
    """Something that may become an event: an identity decided here, or (from the events rules) a bare
    face or a crowd."""

    kind: str  # "known_face", "unknown_face", "no_mask" or "crowd"
    frame: Frame
    track: Track | None = None
    person: Person | None = None
    distance: float | None = None
    count: int | None = None


@dataclass(frozen=True)
class BareFace:
    """A face whose identity is decided and whose mask vote says bare, seen on this frame."""

    track: Track
    person: Person | None  # None: an unknown face


@dataclass(frozen=True)
class FrameReport:
    """What the pipeline concluded on one frame."""

    frame: Frame
    decisions: list[Observation]  # identity votes decided on this frame
    bare: list[BareFace]
    people: int  # faces in view


class FrameProcessor:
    def __init__(self, config: Config, engine: FaceEngine, watchlist: Callable[[], Watchlist]) -> None:
        self.cfg = config.pipeline
        self.min_face_size = config.recognition.min_face_size
        self.engine = engine
        self.watchlist = watchlist
        self.tracker = Tracker(self.cfg.forget_seconds, self.cfg.vote_frames)
        self._last_full = self._last_region = float("-inf")
        self._last_number = -1
        self._eager = EAGER_TRIES
        self._last_thumb: np.ndarray | None = None
        self._verified: dict[Box, float] = {}  # masked faces verified on this frame, with their mask scores
        self.detections = 0
        self.region_searches = 0
        self.encodings = 0

    @property
    def people_in_view(self) -> int:
        return len(self.tracker.tracks)

    def process(self, frame: Frame) -> FrameReport:
        now = frame.media_time
        grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        if self._scene_cut(grey) or frame.number < self._last_number:
            self.tracker.clear()
            self._last_full = float("-inf")
            self._eager = EAGER_TRIES
        self._last_number = frame.number
        self._verified = {}
        seen = self._look(grey, frame.image, now)
        self.tracker.expire(now)
        usable = [(t, s) for t in seen if (s := self._sharpness(grey, t.box)) is not None]
        decisions = self._vote(frame, usable, now)
        bare = self._mask_votes(frame, [t for t, _ in usable], now)
        return FrameReport(frame, decisions, bare, self.people_in_view)

    def _scene_cut(self, grey: np.ndarray) -> bool:
        thumb = cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._last_thumb = self._last_thumb, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > SCENE_CUT

    def _look(self, grey: np.ndarray, bgr: np.ndarray, now: float) -> list[Track]:
        """Run the detection due on this frame, if any; the tracks it saw."""
        since = now - self._last_full
        if since >= self.cfg.detect_every or (self._eager and since >= self.cfg.track_every):
            self._last_full = self._last_region = now
            self.detections += 1
            boxes = self._detect_full(grey, bgr)
            self._eager = 0 if boxes else max(0, self._eager - 1)
            return self.tracker.update(boxes, now)
        if self.tracker.tracks and now - self._last_region >= self.cfg.track_every:
            self._last_region = now
            seen = []
            for track in list(self.tracker.tracks.values()):
                self.region_searches += 1
                seen += self.tracker.update(self._detect_around(grey, bgr, track.box), now, [track])
            return seen
        return []

    def _detect_full(self, grey: np.ndarray, bgr: np.ndarray) -> list[Box]:
        height, width = grey.shape
        scale = min(1.0, self.cfg.detect_width / width) * (2 ** self.cfg.upsample)
        small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        return self._faces(small, bgr, lambda b: b.scaled(1 / scale).clipped(height, width))

    def _detect_around(self, grey: np.ndarray, bgr: np.ndarray, box: Box) -> list[Box]:
        height, width = grey.shape
        region = box.grown(int(box.size * REGION_CONTEXT)).clipped(height, width)
        scale = REGION_FACE / max(box.size, 1)
        patch = cv2.resize(region.crop(grey), None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        return self._faces(patch, bgr, lambda b: b.scaled(1 / scale).shifted(region.top, region.left).clipped(height, width))

    def _faces(self, grey: np.ndarray, bgr: np.ndarray, to_frame: Callable[[Box], Box]) -> list[Box]:
        """HOG's faces in `grey` (a scaled part of the frame), in frame coordinates; with the live
        masked-face search, also the sub-threshold candidates the mask model verifies as masked faces."""
        search = self.engine.masks if self.engine.find_masked_live else None
        scored = [(to_frame(b), score) for b, score in self.engine.detector.scored(grey, 0, CANDIDATE_FLOOR if search else 0.0)]
        if search is None:
            return [box for box, _ in scored]
        faces, masked = split_faces(bgr, scored, search, rgb=False)
        self._verified.update(masked)
        return faces + [box for box, _ in masked]

    def _vote(self, frame: Frame, usable: list[tuple[Track, float]], now: float) -> list[Observation]:
        """Identity samples for the usable faces (with their sharpness) whose vote is open or due a re-check."""
        due = [(t, s) for t, s in usable if t.decided is None or now - t.last_sample_time >= self.cfg.recheck_seconds]
        if not due:
            return []
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        watchlist = self.watchlist()
        encodings = self.engine.encoder.encode(rgb, [t.box for t, _ in due])
        self.encodings += len(due)
        decisions = []
        for (track, sharpness), encoding, identity in zip(due, encodings, watchlist.identify(encodings)):
            if track.decided is None:
                track.offer_view(frame, track.box, sharpness)
            sample = Sample(self._label(identity, watchlist.tolerance), identity.distance, encoding)
            if track.add_sample(sample, now):
                decisions.append(self._decision(track, frame, watchlist))
        return decisions

    def _mask_votes(self, frame: Frame, usable: list[Track], now: float) -> list[BareFace]:
        """Mask samples for the usable faces (cheap: every sighting while the vote is open, every
        MASK_RECHECK_SECONDS after); the faces among them voted bare whose identity is decided
        (so that an event can say who, and an unknown face's capture exists)."""
        if self.engine.masks is None:
            return []
        due = [t for t in usable if now - t.mask_time >= (self.cfg.track_every if t.masked is None else MASK_RECHECK_SECONDS)]
        unverified = [t for t in due if t.box not in self._verified]
        results = self.engine.masks.classify(frame.image, [t.box for t in unverified], rgb=False)
        scores = {t.id: r.score for t, r in zip(unverified, results)}
        for track in due:
            score = self._verified[track.box] if track.box in self._verified else scores[track.id]
            track.add_mask_sample(vote_label(score), now)
        return [BareFace(t, self._person(t.decided)) for t in usable if t.masked is False and t.decided is not None]

    def _person(self, label: str | Verdict | None) -> Person | None:
        return self.watchlist().people.get(label) if isinstance(label, str) else None

    def _sharpness(self, grey: np.ndarray, box: Box) -> float | None:
        """The face's sharpness if it is big and sharp enough to decide anything, else None."""
        if box.size < self.min_face_size:
            return None
        face = cv2.resize(box.crop(grey), (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
        sharpness = float(cv2.Laplacian(face, cv2.CV_64F).var())
        return sharpness if sharpness >= self.cfg.min_sharpness else None

    def _label(self, identity: Identity, tolerance: float) -> str | Verdict:
        if identity.person is not None:
            return identity.person.id
        if identity.distance is not None and identity.distance <= tolerance + self.cfg.unknown_margin:
            return Verdict.ABSTAIN
        return Verdict.UNKNOWN

    def _decision(self, track: Track, frame: Frame, watchlist: Watchlist) -> Observation:
        if track.decided is Verdict.UNKNOWN:
            return Observation("unknown_face", frame, track, None, track.best_distance(Verdict.UNKNOWN))
        person = watchlist.people.get(track.decided)
        return Observation("known_face", frame, track, person, track.best_distance(track.decided))
