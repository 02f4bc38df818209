"""The per-frame pipeline on the real Hamilton clip, the identity vote and the tracker."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLIP, CLIP_FRAMES, LFW, held_apart, make_site, split_of

from edgeguard.capture import Frame
from edgeguard.common.match_rule import MatchThresholds
from edgeguard.config import MaskConfig, RecognitionConfig
from edgeguard.detect import Box, Detection
from edgeguard.events.recorder import SiteEvents
from edgeguard.events.rules import EventRules
from edgeguard.faces.engine import FaceEngine
from edgeguard.live.pipeline import (
    FrameProcessor,
    Observation,
    add_identity_sample,
    pooled_identity,
    sample_label,
)
from edgeguard.live.track import Sample, Track, Tracker
from edgeguard.live.vote import MajorityVote, Verdict
from edgeguard.mask import vote_label
from edgeguard.store.event_log import EventLog
from edgeguard.store.face_captures import CaptureStore
from edgeguard.watchlist.build import Watchlist, build_watchlist, open_cache
from edgeguard.watchlist.details import Person

LIN = "1"
CUTS = (20, 82, 211)  # scene cuts in the clip (approximately)


def found(*boxes: Box) -> list[Detection]:
    """Detections of these boxes, as a detector would report them."""
    return [Detection(box, 1.0) for box in boxes]


def clip_frames(path: Path = CLIP):
    """(Frame, image) for each frame of a video, numbered by position with its timestamp."""
    cap = cv2.VideoCapture(str(path))
    number = 0
    try:
        while True:
            ok, image = cap.read()
            if not ok:
                return
            yield Frame(image, number, cap.get(cv2.CAP_PROP_POS_MSEC), time.time())
            number += 1
    finally:
        cap.release()


@dataclass
class FrameRecord:
    number: int
    observations: list[Observation]
    decided: dict[int, str | None]  # track id -> vote result so far
    in_view: int


@dataclass
class Replay:
    records: list[FrameRecord] = field(default_factory=list)
    detections: int = 0
    region_searches: int = 0
    encodings: int = 0

    def observations(self, kind: str) -> list[Observation]:
        return [o for r in self.records for o in r.observations if o.kind == kind]


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig(), MaskConfig())
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def replay(tmp_path_factory, engine) -> Replay:
    """The whole clip through one FrameProcessor, with a crowd rule that fires for any face."""
    site = make_site(
        tmp_path_factory.mktemp("pipeline") / "site", "[events]\nmax_people = 0\ncrowd_min_seconds = 0.2\n"
    )
    config = site.config()
    watchlist = build_watchlist(config, engine, open_cache(config))
    assert watchlist.enrolled == 4
    processor = FrameProcessor(config, engine, lambda: watchlist)
    rules = EventRules(config.events, config.mask)
    out = Replay()
    for frame in clip_frames():
        observations = rules.due(processor.process(frame))
        decided = {t.id: t.decided for t in processor.tracker.tracks.values()}
        out.records.append(FrameRecord(frame.number, observations, decided, processor.people_in_view))
    out.detections, out.region_searches, out.encodings = (
        processor.detections,
        processor.region_searches,
        processor.encodings,
    )
    return out


# ---------------------------------------------------------------- the clip


def test_replay_covers_every_frame(replay):
    assert [r.number for r in replay.records] == list(range(CLIP_FRAMES))


def test_lin_manuel_is_decided_within_15_frames(replay):
    first_seen = next(r.number for r in replay.records if r.in_view)
    assert first_seen < 5  # he is on stage from the first frame
    known = replay.observations("known_face")
    assert known, "Lin-Manuel was never named"
    assert known[0].person.id == LIN and known[0].person.name == "Lin-Manuel Miranda"
    assert known[0].frame.number - first_seen <= 15
    assert known[0].distance is not None and known[0].distance <= 0.56
    # the close-up after the cut at ~82 is him again: a new track, named again soon after it appears
    close_up = [o for o in known if o.frame.number > CUTS[1]]
    assert close_up and close_up[0].person.id == LIN
    first_in_close_up = next(r.number for r in replay.records if r.number > CUTS[1] and r.in_view)
    assert close_up[0].frame.number - first_in_close_up <= 15


def test_the_vote_never_names_anyone_else(replay):
    named = {
        label for r in replay.records for label in r.decided.values() if label not in (None, Verdict.UNKNOWN)
    }
    assert named == {LIN}
    assert {o.person.id for o in replay.observations("known_face")} == {LIN}
    assert all(o.person is None for o in replay.observations("unknown_face"))


def test_each_track_is_decided_once(replay):
    decisions = replay.observations("known_face") + replay.observations("unknown_face")
    track_ids = [o.track.id for o in decisions]
    assert len(track_ids) == len(set(track_ids))
    assert len(replay.observations("known_face")) == 2  # the stage shot and the close-up


def test_audience_face_is_unknown(replay):
    unknown = replay.observations("unknown_face")
    assert len(unknown) == 1
    obs = unknown[0]
    assert CUTS[2] <= obs.frame.number < CUTS[2] + 15
    assert obs.track.decided == Verdict.UNKNOWN
    assert obs.track.best is not None and obs.track.best.crop.size > 0
    assert obs.track.best.frame.image.shape == (360, 640, 3)
    assert obs.distance is None or obs.distance > 0.56


def test_detection_and_encoding_stay_far_below_the_frame_count(replay):
    assert 3 <= replay.detections < 40  # about one a second, plus one after each cut
    assert 3 <= replay.encodings < 40  # only while a vote is open, and a re-check every few seconds
    assert replay.region_searches < CLIP_FRAMES


def test_crowd_fires_once_per_stay_and_again_after_the_view_empties(tmp_path, engine):
    """The stage shot (30 frames), an empty view (1.5 s of black: past forget_seconds), the stage shot
    again."""
    site = make_site(tmp_path / "site", "[events]\nmax_people = 0\ncrowd_min_seconds = 0.2\n")
    config = site.config()
    watchlist = build_watchlist(config, engine, open_cache(config))
    processor = FrameProcessor(config, engine, lambda: watchlist)
    rules = EventRules(config.events, config.mask)
    stage = [f.image for f in itertools.islice(clip_frames(), 30)]
    images = stage + [np.zeros_like(stage[0])] * 45 + stage
    crowd_frames, in_view = [], []
    for number, image in enumerate(images):
        report = processor.process(Frame(image, number, number * 1000 / 29.97, time.time()))
        crowd_frames += [number for o in rules.due(report) if o.kind == "crowd"]
        in_view.append(report.people)
    assert len(crowd_frames) == 2, crowd_frames
    first, second = crowd_frames
    assert first < 30 <= 75 <= second  # once in each stay, never in the empty view
    assert 0 in in_view[30:75]
    for number in crowd_frames:
        # the crowd had lasted crowd_min_seconds (0.2 s = 6 frames) when it fired
        start = number
        while start - 1 >= 0 and in_view[start - 1] >= 1:
            start -= 1
        assert number - start >= 5


def test_crowd_not_reported_at_or_below_max_people(tmp_path, engine):
    site = make_site(tmp_path / "site", "[events]\nmax_people = 1\ncrowd_min_seconds = 0.0\n", people=[])
    config = site.config()
    watchlist = build_watchlist(config, engine, open_cache(config))
    processor = FrameProcessor(config, engine, lambda: watchlist)
    rules = EventRules(config.events, config.mask)
    in_view, crowd = [], []
    for frame in clip_frames():
        if CUTS[1] + 5 <= frame.number < CUTS[1] + 60:  # the close-up: one face
            crowd += [o for o in rules.due(processor.process(frame)) if o.kind == "crowd"]
            in_view.append(processor.people_in_view)
    assert max(in_view) == 1
    assert crowd == []


# ---------------------------------------------------------------- a tracked known face replaced by a stranger


def empty_stage() -> np.ndarray:
    """The stage of frame 50, blurred until nobody on it is a face any detector finds (YuNet finds the
    actors there; HOG did not)."""
    stage = next(f.image for f in clip_frames() if f.number == 50)
    return cv2.GaussianBlur(stage, (0, 0), 12)


def composite(background: np.ndarray, face: np.ndarray, size: int = 200) -> np.ndarray:
    image = background.copy()
    image[80 : 80 + size, 220 : 220 + size] = cv2.resize(face, (size, size))
    return image


def test_known_face_replaced_by_a_stranger_becomes_an_unknown_capture_of_the_stranger(tmp_path, engine):
    """A track decided as a watchlist person is re-checked; when a stranger now stands there the vote
    reopens and decides unknown.  The unknown_face event must be recorded with a capture of the stranger
    (not of the person named before), and handling it must not raise."""
    bush = sorted((LFW / "George_W_Bush").glob("*.jpg"))
    site = make_site(tmp_path / "site", people=[("5", "George Bush", bush[0])])
    config = site.config()
    watchlist = build_watchlist(config, engine, open_cache(config))
    processor = FrameProcessor(config, engine, lambda: watchlist)
    event_log = EventLog(tmp_path / "events.db")
    recorder = SiteEvents(config, event_log, CaptureStore(tmp_path / "caps", 30, 100)).recorder(
        config.cameras[0]
    )
    background = empty_stage()
    known_face = cv2.imread(str(bush[1]))
    stranger = cv2.imread(str(sorted((LFW / "Tony_Blair").glob("*.jpg"))[0]))
    decisions = []
    try:
        for n in range(30 * 14):  # 2 s of Bush, then 12 s of Blair in the same place
            image = composite(background, known_face if n < 60 else stranger)
            for obs in processor.process(Frame(image, n, n * 1000 / 30, time.time())).decisions:
                decisions.append((n, obs.kind, obs.person.id if obs.person else None))
                if obs.kind == "unknown_face":
                    event = recorder.handle(obs)
                    assert event.capture is not None, event.extra
                    saved_frame = cv2.imread(event.extra["frame_image"])
                    assert np.abs(saved_frame.astype(int) - composite(background, stranger)).mean() < 5
                    face = cv2.imread(event.capture)
                    top, right, bottom, left = json.loads(
                        Path(event.capture.replace("-face.jpg", ".json")).read_text()
                    )["box"]
                    stranger_crop = composite(background, stranger)[top:bottom, left:right]
                    known_crop = composite(background, known_face)[top:bottom, left:right]
                    assert (
                        np.abs(face.astype(int) - stranger_crop).mean()
                        < np.abs(face.astype(int) - known_crop).mean()
                    )
    finally:
        event_log.close()
    assert decisions[0][1:] == ("known_face", "5") and decisions[0][0] < 15
    assert ("unknown_face", None) in [d[1:] for d in decisions], decisions


# ---------------------------------------------------------------- the vote rule


def sample(label: str, distance: float | None = 0.4) -> Sample:
    return Sample(label, distance, np.zeros(128))


def new_track(vote_frames: int = 3) -> Track:
    return Track(1, Box(0, 100, 100, 0), 0.0, vote_frames)


def vote(labels: list[str], vote_frames: int = 3) -> tuple[Track, list[bool]]:
    track = new_track(vote_frames)
    results = [track.add_sample(sample(label), i * 0.1) for i, label in enumerate(labels)]
    return track, results


def test_two_agreeing_names_decide_with_three_ballots():
    track, results = vote(["7", "7"])
    assert results == [False, True]
    assert track.decided == "7"
    assert track.last_sample_time == pytest.approx(0.1)


def test_two_agreeing_unknowns_decide_unknown():
    track, results = vote([Verdict.UNKNOWN, Verdict.UNKNOWN])
    assert results == [False, True] and track.decided == Verdict.UNKNOWN


def test_one_sample_never_decides():
    track, results = vote(["7"])
    assert results == [False] and track.decided is None


def test_a_larger_vote_needs_more_agreeing_samples():
    track, results = vote(["7", "7", "7"], vote_frames=5)
    assert results == [False, False, True] and track.decided == "7"


def test_majority_of_decisive_samples_names():
    track, results = vote(["7", "8", "7"])
    assert results == [False, False, True] and track.decided == "7"


def test_uncertain_samples_abstain():
    track, results = vote([Verdict.ABSTAIN, "7", Verdict.ABSTAIN, Verdict.ABSTAIN, "7"])
    assert results == [False, False, False, False, True] and track.decided == "7"
    track, results = vote([Verdict.ABSTAIN, Verdict.UNKNOWN, Verdict.ABSTAIN, Verdict.UNKNOWN])
    assert results[-1] and track.decided == Verdict.UNKNOWN


def test_only_uncertain_samples_end_unknown():
    track, results = vote([Verdict.ABSTAIN] * 9)
    assert results == [False] * 8 + [True]
    assert track.decided == Verdict.UNKNOWN


def test_a_split_vote_never_names_anyone_and_ends_unknown():
    labels = ["7", "8", Verdict.UNKNOWN, "7", "8", Verdict.UNKNOWN, "9", "9", "8"]
    track = new_track()
    for i, label in enumerate(labels[:-1]):
        assert not track.add_sample(sample(label), float(i))
        assert track.decided is None, (i, label)
    assert track.add_sample(sample(labels[-1]), 8.0)  # 3 x vote_frames samples: decided
    assert track.decided == Verdict.UNKNOWN
    assert len(track.samples) == 9


def test_a_decided_track_reopens_after_two_disagreeing_samples_in_a_row():
    track, _ = vote(["7", "7"])
    assert not track.add_sample(sample("8"), 1.0)
    assert track.decided == "7"  # one disagreement is not enough
    assert not track.add_sample(sample("7"), 2.0)
    assert not track.add_sample(sample("8"), 3.0)
    assert track.decided == "7"  # not in a row
    assert not track.add_sample(sample(Verdict.ABSTAIN), 4.0)
    assert track.decided == "7"
    assert not track.add_sample(sample(Verdict.UNKNOWN), 5.0)
    assert not track.add_sample(sample(Verdict.UNKNOWN), 6.0)
    assert track.decided is None  # reopened
    assert [s.label for s in track.samples] == [Verdict.UNKNOWN]  # the new vote starts from the latest sample
    assert track.add_sample(sample(Verdict.UNKNOWN), 7.0)
    assert track.decided == Verdict.UNKNOWN


def test_rechecks_agreeing_with_the_decision_keep_it():
    track, _ = vote(["7", "7"])
    for i in range(10):
        assert not track.add_sample(sample("7" if i % 2 else Verdict.ABSTAIN), float(i))
    assert track.decided == "7"
    assert len(track.samples) == 2  # re-checks are not added to the vote


def test_best_distance_and_encodings_for_a_label():
    track = new_track()
    track.add_sample(Sample("7", 0.5, np.full(128, 1.0)), 0.0)
    track.add_sample(Sample(Verdict.ABSTAIN, 0.6, np.full(128, 2.0)), 0.1)
    track.add_sample(Sample("7", 0.3, np.full(128, 3.0)), 0.2)
    assert track.best_distance("7") == 0.3
    assert track.best_distance("8") is None
    assert track.encodings_for("7")[:, 0].tolist() == [1.0, 3.0]


# ---------------------------------------------------------------- the tracker


def test_a_box_moving_a_little_stays_the_same_track():
    tracker = Tracker(forget_seconds=1.0)
    [track] = tracker.update(found(Box(100, 200, 200, 100)), 0.0)
    assert tracker.update(found(Box(110, 215, 210, 115)), 0.1) == [track]  # overlapping
    assert tracker.update(found(Box(110, 290, 210, 190)), 0.2) == [track]  # moved most of a face width
    assert track.box == Box(110, 290, 210, 190) and track.last_time == 0.2
    assert list(tracker.tracks) == [track.id]


def test_a_far_box_makes_a_new_track():
    tracker = Tracker(forget_seconds=1.0)
    [first] = tracker.update(found(Box(100, 200, 200, 100)), 0.0)
    [second] = tracker.update(found(Box(100, 500, 200, 400)), 0.1)
    assert second.id != first.id
    assert set(tracker.tracks) == {first.id, second.id}
    assert first.box == Box(100, 200, 200, 100)  # untouched


def test_a_much_larger_face_in_the_same_place_is_someone_else():
    tracker = Tracker(forget_seconds=1.0)
    [first] = tracker.update(found(Box(100, 200, 200, 100)), 0.0)
    [second] = tracker.update(found(Box(50, 250, 250, 50)), 0.1)  # twice the size: overlap 0.25
    assert second.id != first.id


def test_two_faces_in_one_detection_get_two_tracks():
    tracker = Tracker(forget_seconds=1.0)
    a, b = Box(100, 200, 200, 100), Box(100, 330, 180, 250)
    seen = tracker.update(found(b, a), 0.0)
    assert [t.box for t in seen] == [a, b]  # largest first
    moved = tracker.update(found(Box(105, 205, 205, 105), Box(100, 335, 180, 255)), 0.1)
    assert [t.id for t in moved] == [t.id for t in seen]  # each keeps its own track


def test_candidates_restrict_which_tracks_a_box_may_join():
    tracker = Tracker(forget_seconds=1.0)
    a, b = tracker.update(found(Box(100, 200, 200, 100), Box(100, 500, 200, 400)), 0.0)
    seen = tracker.update(found(Box(100, 200, 200, 100)), 0.1, candidates=[b])
    assert seen == [] and set(tracker.tracks) == {
        a.id,
        b.id,
    }  # a region search around b neither feeds a nor adds a track
    assert a.last_time == 0.0


def test_tracks_expire_after_forget_seconds():
    tracker = Tracker(forget_seconds=1.0)
    [old] = tracker.update(found(Box(100, 200, 200, 100)), 0.0)
    [young] = tracker.update(found(Box(100, 500, 200, 400)), 0.6)
    assert tracker.expire(1.0) == []  # exactly forget_seconds: still here
    assert tracker.expire(1.05) == [old]
    assert list(tracker.tracks) == [young.id]
    assert tracker.expire(1.7) == [young]
    assert tracker.tracks == {}
    [again] = tracker.update(found(Box(100, 200, 200, 100)), 2.0)
    assert again.id not in (old.id, young.id)  # a returning face is a new track


def test_clear_forgets_every_track():
    tracker = Tracker(forget_seconds=1.0)
    tracks = tracker.update(found(Box(100, 200, 200, 100), Box(100, 500, 200, 400)), 0.0)
    assert sorted(t.id for t in tracker.clear()) == sorted(t.id for t in tracks)
    assert tracker.tracks == {}


# ---------------------------------------------------------------- the mask vote


def mask_vote(labels: list[bool | None], vote_frames: int = 3) -> Track:
    track = new_track(vote_frames)
    for i, label in enumerate(labels):
        track.add_mask_sample(label, i * 0.1)
    return track


def test_two_sure_samples_decide_the_mask_vote():
    assert mask_vote([False]).masked is None
    assert mask_vote([False, False]).masked is False
    assert mask_vote([True, None, True]).masked is True
    assert mask_vote([True, False, None, None]).masked is None  # no majority yet
    assert mask_vote([True, False, False]).masked is False


def test_unsure_samples_abstain_from_the_mask_vote():
    assert vote_label(0.5) is None and vote_label(0.7) is None and vote_label(0.3) is None
    assert vote_label(0.8) is True and vote_label(0.2) is False
    assert mask_vote([None] * 20).masked is None


def test_a_mask_coming_off_reopens_the_mask_vote():
    track = mask_vote([True, True])
    track.add_mask_sample(False, 5.0)
    assert track.masked is True  # one disagreement is not enough
    track.add_mask_sample(True, 6.0)
    track.add_mask_sample(False, 7.0)
    assert track.masked is True  # a sure sample for the outcome breaks the row
    track.add_mask_sample(None, 7.5)  # an unsure one does not
    track.add_mask_sample(False, 8.0)
    assert track.masked is None
    track.add_mask_sample(False, 8.1)  # the new vote started from the latest sample: one more decides
    assert track.masked is False and track.mask_time == 8.1


def test_a_mask_vote_keeps_a_window_of_three_times_its_ballots():
    vote = MajorityVote(3)
    for ballot in [True, False] + [Verdict.ABSTAIN] * 10:
        assert not vote.add(ballot)
    assert len(vote.samples) == 9 and vote.outcome is None  # no give-up label: it never ends undecided


def test_each_time_the_face_is_voted_masked_a_new_bare_episode_starts():
    track = mask_vote([False, False])
    assert track.masked is False and track.mask_episode == 0
    for t, ballot in enumerate([True, True, True], start=1):  # two against reopen, a third decides
        track.add_mask_sample(ballot, float(t))
    assert track.masked is True and track.mask_episode == 1
    for t, ballot in enumerate([False, False, False], start=4):
        track.add_mask_sample(ballot, float(t))
    assert track.masked is False and track.mask_episode == 1  # bare again: one more no_mask is due


def test_a_reopened_identity_vote_reopens_the_mask_vote():
    track, _ = vote(["7", "7"])
    track.add_mask_sample(False, 0.1)
    track.add_mask_sample(False, 0.2)
    episode = track.mask_episode
    track.add_sample(sample("8"), 1.0)
    track.add_sample(sample("8"), 2.0)  # someone else stands there now
    assert track.decided is None and track.masked is None and track.mask_episode == episode + 1


def mask_engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig(), MaskConfig())
    engine.warm_up()
    return engine


def run_frames(
    processor: FrameProcessor, rules: EventRules, images, fps: float = 30, start: float | None = None
) -> list[tuple[int, str, int | None]]:
    """(frame, kind, track id) of every observation the events rules let through; frame n is
    taken at `start` (default now) plus n / fps seconds."""
    start = time.time() if start is None else start
    out = []
    for n, image in enumerate(images):
        report = processor.process(Frame(image, n, n * 1000 / fps, start + n / fps))
        out += [(n, o.kind, o.track.id if o.track else None) for o in rules.due(report)]
    return out


@pytest.fixture(scope="module")
def mask_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Held-apart synthetic portraits of the same people with and without a mask."""
    pairs = []
    for masked in held_apart("synthetic", "with_mask", 200):
        bare = masked.parent.parent / "without_mask" / masked.name.replace("-with-mask", "")
        if "-with-mask" in masked.name and bare.exists() and split_of(bare.name) == "test":
            pairs.append((cv2.imread(str(masked)), cv2.imread(str(bare))))
    assert len(pairs) >= 3
    return pairs[:3]


def test_a_mask_coming_off_in_view_gives_one_no_mask_event(tmp_path, mask_pairs):
    """Each person stands masked for 3 s, then takes the mask off for 5 s: no no_mask while
    masked, exactly one within 3 s of the mask coming off, after the face's identity is decided."""
    engine = mask_engine()
    site = make_site(
        tmp_path / "site", people=[("5", "George Bush", sorted((LFW / "George_W_Bush").glob("*.jpg"))[0])]
    )
    config = site.config()
    watchlist = build_watchlist(config, engine, open_cache(config))
    background = empty_stage()
    for masked, bare in mask_pairs:
        processor = FrameProcessor(config, engine, lambda: watchlist)
        images = [composite(background, masked)] * 90 + [composite(background, bare)] * 150
        observations = run_frames(processor, EventRules(config.events, config.mask), images)
        no_mask = [(n, track) for n, kind, track in observations if kind == "no_mask"]
        identity = [(n, track) for n, kind, track in observations if kind in ("known_face", "unknown_face")]
        assert len(no_mask) == 1 and 90 <= no_mask[0][0] < 180, observations
        assert any(n <= no_mask[0][0] and track == no_mask[0][1] for n, track in identity), observations


def test_no_mask_events_switched_off_or_outside_opening_hours(tmp_path, mask_pairs):
    engine = mask_engine()
    background = empty_stage()
    images = [composite(background, mask_pairs[0][1])] * 60
    now = time.localtime()
    closed = f"{(now.tm_hour + 2) % 24:02d}:00-{(now.tm_hour + 3) % 24:02d}:00"
    for extra, expected in [("", 1), ("[mask]\nevents = false\n", 0), (f'[mask]\nhours = "{closed}"\n', 0)]:
        site = make_site(tmp_path / f"site{expected}{len(extra)}", extra, people=[])
        config = site.config()
        watchlist = build_watchlist(config, engine, open_cache(config))
        processor = FrameProcessor(config, engine, lambda watchlist=watchlist: watchlist)
        kinds = [kind for _, kind, _ in run_frames(processor, EventRules(config.events, config.mask), images)]
        assert kinds.count("no_mask") == expected, (extra, kinds)
        assert kinds.count("unknown_face") == 1


# ---------------------------------------------------------------- pooling an open vote's samples


def pooling_watchlist() -> Watchlist:
    photo = np.zeros(128, dtype=np.float32)
    other = np.zeros(128, dtype=np.float32)
    other[127] = 1.5  # someone far from everyone here
    people = {"1": Person("1", "One Photo"), "2": Person("2", "Someone Else")}
    return Watchlist(
        people, {"1": [photo], "2": [other]}, [], MatchThresholds(tolerance=0.56, unknown_margin=0.08)
    )


def near_miss(axis: int, distance: float = 0.58) -> np.ndarray:
    """A sample `distance` from person 1's photo, in its own direction (samples vary independently)."""
    sample = np.zeros(128, dtype=np.float32)
    sample[axis] = distance
    return sample


def sample_of(watchlist: Watchlist, encoding: np.ndarray) -> Sample:
    [identity] = watchlist.identify(encoding[None])
    return Sample(sample_label(identity), identity.distance, encoding)


def test_samples_just_beyond_the_tolerance_abstain_but_their_mean_names_the_person():
    watchlist = pooling_watchlist()
    track = Track(1, Box(0, 100, 100, 0), 0.0)
    first, second = sample_of(watchlist, near_miss(0)), sample_of(watchlist, near_miss(1))
    assert first.label is Verdict.ABSTAIN and second.label is Verdict.ABSTAIN
    assert not add_identity_sample(track, first, watchlist, 0.0)  # one sample is never pooled
    assert add_identity_sample(track, second, watchlist, 0.1)
    assert track.decided == "1"
    # the mean lies 0.58 / sqrt(2) = 0.41 from the photo, within 0.56 - 0.08 / sqrt(2) = 0.503
    assert track.best_distance("1") == pytest.approx(0.58 / np.sqrt(2), abs=1e-4)
    assert pooled_identity([first], watchlist) is None


def test_pooling_never_overrides_a_sample_naming_someone_else_nor_counts_unknown_ones():
    watchlist = pooling_watchlist()
    someone_else = sample_of(watchlist, np.eye(128, dtype=np.float32)[127] * 1.5)
    assert someone_else.label == "2"
    near = [sample_of(watchlist, near_miss(axis)) for axis in range(3)]
    assert pooled_identity(near + [someone_else], watchlist) is None
    far = sample_of(watchlist, near_miss(5, 0.9))
    assert far.label is Verdict.UNKNOWN
    assert pooled_identity([near[0], far], watchlist) is None  # only one sample left to pool
    assert pooled_identity(near[:2] + [far], watchlist)[0] == "1"


def test_a_lookalike_consistently_beyond_the_tolerance_is_not_pooled_into_a_name():
    """Two samples 0.63 away in different directions (a person's varying views) average to 0.45: named.
    Two along one direction (a lookalike, consistently beyond the tolerance) average to 0.62: not."""
    watchlist = pooling_watchlist()
    spread = [sample_of(watchlist, near_miss(axis, 0.63)) for axis in range(2)]
    alike = [sample_of(watchlist, near_miss(0, 0.63)), sample_of(watchlist, near_miss(0, 0.61))]
    assert all(s.label is Verdict.ABSTAIN for s in spread + alike)
    assert pooled_identity(spread, watchlist) is not None
    assert pooled_identity(alike, watchlist) is None
