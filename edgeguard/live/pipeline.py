"""The per-frame path: frames in, facts out (whose identity was decided, which faces are bare, how many
people).

Detection and encoding are the expensive steps, so neither runs on every frame:

- A full detection, on the frame shrunk to `detect_width` (colour for YuNet,
  grey for dlib's detectors), runs every `detect_every` seconds, on the first
  frame, and at once after a scene cut (the frame differs from the previous one
  across the whole picture).  A detector misses a face on the odd frame, so
  after the start or a cut a detection that finds nothing is repeated every
  `track_every` seconds, up to EAGER_TRIES times.  YuNet's boxes from a full
  detection are checked by the mask model's "not a face" class
  (edgeguard.faces.engine); a face tracked since needs no new check.
- In between, every `track_every` seconds, each tracked face is looked for
  again only in a small region around its last box, scaled so the face is
  REGION_FACE px: a few milliseconds instead of a whole frame.  That keeps the
  tracks' boxes current and is how the identity vote gets its samples.
- A track is encoded (on the full-size frame) only while its identity vote is
  open, and once every `recheck_seconds` after that to confirm it.  While the
  vote is open, its samples are also pooled (pooled_identity): their mean
  encoding can name a person the single samples only came close to.  Faces
  below `min_face_size`, blurrier than `min_sharpness`, turned too far from
  the camera when last seen (YuNet's pose gate, edgeguard.detectors.yunet) or cut
  off by the frame's edge (less than WHOLE_IN_VIEW of the box inside) are never
  encoded: dlib's encoder cannot judge a profile or half a face, and a sample it
  gets wrong could name the wrong person or call an enrolled one unknown.
- The mask model classifies each tracked face at every sighting while its
  mask vote (edgeguard.live.track) is open and every MASK_RECHECK_SECONDS after
  (turned faces too: a mask shows from the side).  With `detector = "hog"` and
  `[mask] find_masked = "always"` both detections also keep HOG's
  sub-threshold candidates that the mask model verifies as masked faces; the
  score that verified such a face is its mask sample for that frame.  YuNet
  finds masked faces itself.

The pipeline reports facts in a `FrameReport`; what becomes an event (opening
hours, once per face, how long a crowd must last) is the events stage's rule
(edgeguard.events.rules).  Durations (re-checks, forgetting tracks) use the
video position for files, so a file replayed as fast as possible behaves as
it would live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..capture import Frame
from ..common.event_types import EventType
from ..common.match_rule import MatchDecision
from ..config import CameraConfig, Config
from ..detect import Box, Detection
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
# faces from 80 px without upsampling; YuNet all of lfw10's from 24 px, but its
# boxes, and so the mask samples, are steadier at 64: a 128 px patch, about
# 2 ms) in a region REGION_CONTEXT face sizes around its last box, enough for
# the movement of a few frames.  YuNet's patches are padded to one size: a new
# input size costs it a quarter more.
REGION_FACE = 90
REGION_FACE_YUNET = 64
REGION_CONTEXT = 0.5
EAGER_TRIES = 2
# A face with less than this share of its box inside the frame gives no identity sample.
WHOLE_IN_VIEW = 0.9
# A decided mask vote is re-checked this often: a mask sample costs under a
# millisecond (no encoding), so a mask coming off is noticed within seconds.
MASK_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Observation:
    """Something that may become an event: an identity decided here, or (from the events rules) a bare
    face or a crowd."""

    kind: EventType  # KNOWN_FACE or UNKNOWN_FACE from here; NO_MASK, CROWD or LOITERING from the events rules
    frame: Frame
    track: Track | None = None
    person: Person | None = None
    distance: float | None = None
    count: int | None = None
    since: float | None = None  # LOITERING: when the stay began (media time, as frame.media_time)


@dataclass(frozen=True)
class BareFace:
    """A face whose identity is decided (and, in `FrameReport.bare`, whose mask vote says bare), seen on
    this frame."""

    track: Track
    person: Person | None  # None: an unknown face


@dataclass(frozen=True)
class FrameReport:
    """What the pipeline concluded on one frame."""

    frame: Frame
    decisions: list[Observation]  # identity votes decided on this frame
    bare: list[BareFace]
    people: int  # faces in view
    decided: list[BareFace] = field(default_factory=list)  # every face in view whose identity is decided


class FrameProcessor:
    """One camera's pipeline (default: the first camera's settings); not shared between threads."""

    def __init__(
        self,
        config: Config,
        engine: FaceEngine,
        watchlist: Callable[[], Watchlist],
        camera: CameraConfig | None = None,
    ) -> None:
        camera = camera or config.cameras[0]
        self.cfg = config.pipeline
        self.detect_width = camera.detect_width
        self.min_face_size = camera.min_face_size
        self.engine = engine
        self.watchlist = watchlist
        self.tracker = Tracker(self.cfg.forget_seconds, self.cfg.vote_frames)
        self._last_full = self._last_region = float("-inf")
        self._last_number = -1
        self._eager = EAGER_TRIES
        self._last_thumb: np.ndarray | None = None
        self._verified: dict[Box, float] = {}  # masked faces verified on this frame, with their mask scores
        # YuNet finds faces from 20 px without upsampling; HOG's window is 80 px.
        self._upsample = self.cfg.upsample if engine.detector.name != "yunet" else 0
        self._region_face = REGION_FACE_YUNET if engine.detector.name == "yunet" else REGION_FACE
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
        seen = self._look(frame.image, grey, now)
        self.tracker.expire(now)
        usable = [(t, s) for t in seen if (s := self._sharpness(grey, t.box)) is not None]
        decisions = self._vote(frame, [(t, s) for t, s in usable if t.frontal], now)
        bare = self._mask_votes(frame, [t for t, _ in usable], now)
        decided = [
            BareFace(t, self._person(t.decided))
            for t in self.tracker.tracks.values()
            if t.decided is not None
        ]
        return FrameReport(frame, decisions, bare, self.people_in_view, decided)

    def _scene_cut(self, grey: np.ndarray) -> bool:
        thumb = cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._last_thumb = self._last_thumb, thumb
        return previous is not None and float(np.abs(thumb - previous).mean()) > SCENE_CUT

    def _look(self, bgr: np.ndarray, grey: np.ndarray, now: float) -> list[Track]:
        """Run the detection due on this frame, if any; the tracks it saw."""
        since = now - self._last_full
        image = bgr if self.engine.detector.colour else grey
        if since >= self.cfg.detect_every or (self._eager and since >= self.cfg.track_every):
            self._last_full = self._last_region = now
            self.detections += 1
            found = self.engine.checked(bgr, self._detect_full(image, bgr), rgb=False)
            self._eager = 0 if found else max(0, self._eager - 1)
            return self.tracker.update(found, now)
        if self.tracker.tracks and now - self._last_region >= self.cfg.track_every:
            self._last_region = now
            seen = []
            for track in list(self.tracker.tracks.values()):
                self.region_searches += 1
                seen += self.tracker.update(self._detect_around(image, bgr, track.box), now, [track])
            return seen
        return []

    def _detect_full(self, image: np.ndarray, bgr: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_width / width) * (2**self._upsample)
        small = cv2.resize(
            image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        return self._faces(small, bgr, lambda b: b.scaled(1 / scale))

    def _detect_around(self, image: np.ndarray, bgr: np.ndarray, box: Box) -> list[Detection]:
        height, width = image.shape[:2]
        region = box.grown(int(box.size * REGION_CONTEXT)).clipped(height, width)
        scale = self._region_face / max(box.size, 1)
        patch = cv2.resize(
            region.crop(image),
            None,
            fx=scale,
            fy=scale,
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        if self.engine.detector.name == "yunet":
            patch = _padded(patch, int(self._region_face * (1 + 2 * REGION_CONTEXT)))
        return self._faces(patch, bgr, lambda b: b.scaled(1 / scale).shifted(region.top, region.left))

    def _faces(self, image: np.ndarray, bgr: np.ndarray, to_frame: Callable[[Box], Box]) -> list[Detection]:
        """The detector's faces in `image` (a scaled part of the frame), in frame coordinates; with HOG's
        live masked-face search, also the sub-threshold candidates the mask model verifies as masked faces."""
        search = self.engine.masks if self.engine.find_masked_live else None
        height, width = bgr.shape[:2]
        found = []
        for d in self.engine.detector.find(image, 0, CANDIDATE_FLOOR if search else 0.0):
            box = to_frame(d.box)
            seen = box.clipped(height, width)
            # a face cut off by the frame's edge cannot be judged either (YuNet boxes half faces, HOG
            # does not)
            found.append(Detection(seen, d.score, d.frontal and seen.area >= WHOLE_IN_VIEW * box.area))
        if search is None:
            return found
        faces, masked = split_faces(bgr, [(d.box, d.score) for d in found], search, rgb=False)
        self._verified.update(masked)
        return [Detection(box, 0.0) for box in faces] + [Detection(box, score) for box, score in masked]

    def _vote(self, frame: Frame, usable: list[tuple[Track, float]], now: float) -> list[Observation]:
        """Identity samples for the usable faces (with their sharpness) whose vote is open or due a
        re-check."""
        due = [
            (t, s)
            for t, s in usable
            if t.decided is None or now - t.last_sample_time >= self.cfg.recheck_seconds
        ]
        if not due:
            return []
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        watchlist = self.watchlist()
        encodings = self.engine.encoder.encode(rgb, [t.box for t, _ in due])
        self.encodings += len(due)
        decisions = []
        for (track, sharpness), encoding, identity in zip(
            due, encodings, watchlist.identify(encodings), strict=True
        ):
            if track.decided is None:
                track.offer_view(frame, track.box, sharpness)
            if identity.vetoed is not None:
                log.debug(
                    "track %d: nearest %s (Id %s), vetoed by feedback",
                    track.id,
                    identity.vetoed.name,
                    identity.vetoed.id,
                )
            sample = Sample(sample_label(identity), identity.distance, encoding)
            if add_identity_sample(track, sample, watchlist, now):
                decisions.append(self._decision(track, frame, watchlist))
        return decisions

    def _mask_votes(self, frame: Frame, usable: list[Track], now: float) -> list[BareFace]:
        """Mask samples for the usable faces (cheap: every sighting while the vote is open, every
        MASK_RECHECK_SECONDS after); the faces among them voted bare whose identity is decided
        (so that an event can say who, and an unknown face's capture exists)."""
        if self.engine.masks is None:
            return []
        due = [
            t
            for t in usable
            if now - t.mask_time >= (self.cfg.track_every if t.masked is None else MASK_RECHECK_SECONDS)
        ]
        unverified = [t for t in due if t.box not in self._verified]
        results = self.engine.masks.classify(frame.image, [t.box for t in unverified], rgb=False)
        scores = {t.id: r.score for t, r in zip(unverified, results, strict=True)}
        for track in due:
            score = self._verified[track.box] if track.box in self._verified else scores[track.id]
            track.add_mask_sample(vote_label(score), now)
        return [
            BareFace(t, self._person(t.decided))
            for t in usable
            if t.masked is False and t.decided is not None
        ]

    def _person(self, label: str | Verdict | None) -> Person | None:
        return self.watchlist().people.get(label) if isinstance(label, str) else None

    def _sharpness(self, grey: np.ndarray, box: Box) -> float | None:
        """The face's sharpness if it is big and sharp enough to decide anything, else None."""
        if box.size < self.min_face_size:
            return None
        face = cv2.resize(box.crop(grey), (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
        sharpness = float(cv2.Laplacian(face, cv2.CV_64F).var())
        return sharpness if sharpness >= self.cfg.min_sharpness else None

    def _decision(self, track: Track, frame: Frame, watchlist: Watchlist) -> Observation:
        if track.decided is Verdict.UNKNOWN:
            return Observation(
                EventType.UNKNOWN_FACE, frame, track, None, track.best_distance(Verdict.UNKNOWN)
            )
        person = watchlist.people.get(track.decided)
        return Observation(EventType.KNOWN_FACE, frame, track, person, track.best_distance(track.decided))


def _padded(patch: np.ndarray, side: int) -> np.ndarray:
    """The patch padded with black at its bottom and right to at least side x side (coordinates unchanged)."""
    height, width = patch.shape[:2]
    if height >= side and width >= side:
        return patch
    return cv2.copyMakeBorder(patch, 0, max(side - height, 0), 0, max(side - width, 0), cv2.BORDER_CONSTANT)


def sample_label(identity: Identity) -> str | Verdict:
    """An identity sample's ballot, from the watchlist's decision (edgeguard.common.match_rule): the person
    on a match, unknown when unknown, an abstention when uncertain."""
    if identity.person is not None:
        return identity.person.id
    if identity.match is MatchDecision.UNCERTAIN:
        return Verdict.ABSTAIN
    return Verdict.UNKNOWN


def add_identity_sample(track: Track, sample: Sample, watchlist: Watchlist, now: float) -> bool:
    """Give a track one identity sample; True if that decided it, by the vote's majority or by pooling."""
    if track.add_sample(sample, now):
        return True
    if track.decided is not None:
        return False
    pooled = pooled_identity(track.samples, watchlist)
    if pooled is not None:
        track.decide_pooled(*pooled)
    return pooled is not None


def pooled_identity(samples: list[Sample], watchlist: Watchlist) -> tuple[str, float] | None:
    """The person the mean of a track's samples names, with its distance, or None.

    The samples pooled are those not voting unknown; they must name nobody
    but that person (abstentions are typically just beyond the tolerance), and
    there must be two or more.  The mean of k encodings is less noisy than each,
    so it is held to `tolerance - unknown_margin / sqrt(k)` (the watchlist's
    thresholds, `MatchThresholds.pooled_limit`): a single sample within the
    margin beyond the tolerance abstains, and the mean must clear the
    tolerance by its own, narrower band.  This names people enrolled from one
    photo, whose live samples often land just beyond the tolerance, without
    lowering the bar for any single sample (bench/recognition_accuracy.py).
    """
    pool = [s for s in samples if s.label is not Verdict.UNKNOWN]
    named = {s.label for s in pool if isinstance(s.label, str)}
    if len(pool) < 2 or len(named) > 1:
        return None
    [identity] = watchlist.identify(np.mean([s.encoding for s in pool], axis=0)[None])
    if identity.person is None or (named and identity.person.id not in named):
        return None
    if identity.distance is None or identity.distance > watchlist.thresholds.pooled_limit(len(pool)):
        return None
    return identity.person.id, identity.distance
