"""Loitering and return visits (edgeguard.events.rules): the rules on made-up frames, and loitering through
the real pipeline and events stage on a still stream of a real photo, a looping one and a walk-by."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from conftest import PEOPLE, Site

from edgeguard.alerts.wording import alert_body
from edgeguard.capture import Frame
from edgeguard.config import CameraConfig, EventsConfig, MaskConfig, RecognitionConfig
from edgeguard.detect import Box
from edgeguard.events.event import Event, EventType
from edgeguard.events.recorder import SiteEvents
from edgeguard.events.rules import STAY_GAP_SECONDS, EventRules
from edgeguard.faces.engine import FaceEngine
from edgeguard.live.pipeline import BareFace, FrameProcessor, FrameReport
from edgeguard.live.track import Sample, Track
from edgeguard.live.vote import Verdict
from edgeguard.store.event_log import EventLog
from edgeguard.store.face_captures import CaptureStore
from edgeguard.watchlist.build import build_watchlist, open_cache
from edgeguard.watchlist.details import Person

IMAGE = np.zeros((8, 8, 3), np.uint8)
ANN = Person("7", "Ann Lee", "", {})


def decided_track(track_id: int, label: str | Verdict = Verdict.UNKNOWN) -> Track:
    track = Track(track_id, Box(0, 100, 100, 0), 0.0)
    for _ in range(3):
        track.add_sample(Sample(label, 0.3, np.zeros(128, np.float32)), 0.0)
    assert track.decided == label
    return track


def seen(rules: EventRules, faces: list[tuple[Track, Person | None]], media: float, number: int = 0):
    """The loitering observations of one file frame at `media` seconds with these decided faces in view."""
    frame = Frame(IMAGE, number, media * 1000.0, time.time())
    report = FrameReport(frame, [], [], len(faces), [BareFace(t, p) for t, p in faces])
    return [o for o in rules.due(report) if o.kind == EventType.LOITERING]


def rules(minutes: float = 10.0, **camera) -> EventRules:
    events = EventsConfig(loiter_minutes=minutes, max_people=10)
    return EventRules(events, MaskConfig(), CameraConfig(loiter_minutes=minutes, max_people=10, **camera))


class TestLoiteringRule:
    def test_once_per_stay_after_loiter_minutes(self):
        r, ann = rules(), decided_track(1, "7")
        fired = [o for t in range(0, 1500, 5) for o in seen(r, [(ann, ANN)], float(t))]
        assert len(fired) == 1 and fired[0].frame.media_time == 600.0 and fired[0].since == 0.0
        assert fired[0].person is ANN

    def test_a_walk_by_does_not_fire(self):
        r, track = rules(), decided_track(1)
        assert [o for t in range(0, 60, 2) for o in seen(r, [(track, None)], float(t))] == []

    def test_a_new_stay_after_the_face_left(self):
        r, ann = rules(1.0), decided_track(1, "7")
        first = [o for t in range(0, 90, 5) for o in seen(r, [(ann, ANN)], float(t))]
        seen(r, [], 90.0 + STAY_GAP_SECONDS + 1)  # gone long enough
        back = [o for t in range(200, 300, 5) for o in seen(r, [(ann, ANN)], float(t))]
        assert len(first) == 1 and len(back) == 1 and back[0].since == 200.0

    def test_a_broken_track_of_the_same_person_is_the_same_stay(self):
        r = rules(1.0)
        fired = [o for t in range(0, 40, 5) for o in seen(r, [(decided_track(1, "7"), ANN)], float(t))]
        fired += [o for t in range(40, 90, 5) for o in seen(r, [(decided_track(2, "7"), ANN)], float(t))]
        assert len(fired) == 1 and fired[0].since == 0.0

    def test_a_looping_file_goes_on_counting(self):
        r, track = rules(1.0), decided_track(1)
        fired = [o for t in range(0, 40, 5) for o in seen(r, [(track, None)], float(t), t)]
        fired += [o for t in range(0, 40, 5) for o in seen(r, [(track, None)], float(t), t)]  # the loop
        assert len(fired) == 1

    def test_unknown_tracks_of_one_visitor_are_one_stay(self):
        visitors = {1: 5, 2: 5}
        r = EventRules(
            EventsConfig(max_people=10),
            MaskConfig(),
            CameraConfig(loiter_minutes=1.0, max_people=10),
            visitor_of=visitors.get,
        )
        fired = [o for t in range(0, 40, 5) for o in seen(r, [(decided_track(1), None)], float(t))]
        fired += [o for t in range(40, 90, 5) for o in seen(r, [(decided_track(2), None)], float(t))]
        assert len(fired) == 1

    def test_switched_off_per_camera(self):
        r, ann = rules(0.0), decided_track(1, "7")
        assert [o for t in range(0, 1500, 30) for o in seen(r, [(ann, ANN)], float(t))] == []


class TestReturnVisitRule:
    def test_the_third_visit_within_the_window_and_not_before(self):
        day, r = 86400.0, rules(return_visits=3, return_window_days=7.0)
        now = 100 * day
        assert not r.returned([now], now)
        assert not r.returned([now - 2 * day, now], now)
        assert r.returned([now - 3 * day, now - 2 * day, now], now)
        assert not r.returned([now - 9 * day, now - 2 * day, now], now)  # one is outside the window

    def test_switched_off(self):
        r = rules(return_visits=0)
        assert not r.returned([1.0, 2.0, 3.0, 4.0], 4.0)


def test_the_texts_say_how_long_and_the_earlier_visits():
    when = time.time()
    loiter = Event(EventType.LOITERING, when, "gate", "ATM", extra={"minutes": 10.5})
    assert "loitering: unknown person in view 10.5 min" in alert_body(loiter, None)
    visits = [when - 2 * 86400, when - 86400, when]
    back = Event(EventType.RETURN_VISIT, when, "gate", "ATM", extra={"visits": visits, "stranger": 4})
    body = alert_body(back, None)
    assert "return visit" in body and "visit 3" in body
    assert time.strftime("%H:%M", time.localtime(visits[0])) in body


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig())
    engine.warm_up()
    return engine


def replay(site: Site, engine: FaceEngine, frames: list[tuple[np.ndarray, int, float]]) -> list[Event]:
    """The events of the real pipeline and events stage on `frames` (image, frame number, media seconds):
    loiter_minutes 0.1 (6 s), nobody on the watchlist."""
    site.write_config("[events]\nloiter_minutes = 0.1\n")
    config = site.config()
    watchlist = build_watchlist(config, engine, open_cache(config))
    processor = FrameProcessor(config, engine, lambda: watchlist)
    log = EventLog(config.paths.events_db)
    try:
        recorder = SiteEvents(config, log, CaptureStore(config.paths.captures, 30, 100)).recorder(
            config.cameras[0]
        )
        start = time.time()
        events = []
        for image, number, media in frames:
            events += recorder.record(processor.process(Frame(image, number, media * 1000, start + media)))
        return events
    finally:
        log.close()


FPS = 5


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return cv2.imread(str(PEOPLE / "obama.jpg"))


class TestLoiteringOnRealFrames:
    def test_a_still_stream_fires_once(self, tmp_path, engine, face):
        events = replay(Site(tmp_path / "s"), engine, [(face, n, n / FPS) for n in range(16 * FPS)])
        kinds = [e.type for e in events]
        assert kinds.count("unknown_face") == 1 and kinds.count("loitering") == 1, kinds
        loiter = next(e for e in events if e.type == "loitering")
        first = next(e for e in events if e.type == "unknown_face")
        assert loiter.capture == first.capture and loiter.extra["visitor"] == first.extra["visitor"]
        assert 0.1 <= loiter.extra["minutes"] < 0.15

    def test_a_looping_clip_fires_once_per_stay(self, tmp_path, engine, face):
        loop = [(face, n, n / FPS) for n in range(4 * FPS)]  # 4 s, played four times
        events = replay(Site(tmp_path / "s"), engine, loop * 4)
        assert [e.type for e in events].count("loitering") == 1, [e.type for e in events]

    def test_a_walk_by_does_not_fire(self, tmp_path, engine, face):
        empty = np.full_like(face, 128)
        frames = [(face, n, n / FPS) for n in range(3 * FPS)] + [
            (empty, n, n / FPS) for n in range(3 * FPS, 16 * FPS)
        ]
        events = replay(Site(tmp_path / "s"), engine, frames)
        assert "loitering" not in [e.type for e in events], [e.type for e in events]
