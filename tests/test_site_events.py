"""Tests for edgeguard.events.recorder's SiteEvents: several cameras recording into one event log, with
one memory of visitors and sightings (real photos, real encodings, a real SQLite event log and captures)."""

from __future__ import annotations

import threading
import time

import cv2
import pytest
from conftest import lfw_photos

from edgeguard.capture import Frame
from edgeguard.config import Config
from edgeguard.events.recorder import SiteEvents
from edgeguard.faces.engine import FaceEngine
from edgeguard.live.pipeline import FrameReport, Observation
from edgeguard.live.track import Sample, Track
from edgeguard.live.vote import Verdict
from edgeguard.store.event_log import EventLog
from edgeguard.store.face_captures import CaptureStore

CAMERAS = (
    '[[camera]]\nname = "gate"\nlocation = "Front Gate"\nlatitude = 51.5\nlongitude = -0.12\n'
    '[[camera]]\nname = "gate 2"\nlocation = "Front Gate"\n'
    '[[camera]]\nname = "door"\nlocation = "Back Door"\n'
)


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    config = Config()
    return FaceEngine(config.recognition, config.mask)


@pytest.fixture
def site_events(site, tmp_path):
    site.write_config(CAMERAS)
    config = site.config()
    log = EventLog(tmp_path / "events.db")
    yield SiteEvents(config, log, CaptureStore(tmp_path / "caps", 30, 100)), config
    log.close()


def unknown_track(engine: FaceEngine, photo, track_id: int) -> tuple[Track, Frame]:
    """A track of the face in `photo` decided unknown by three samples, with its best view."""
    bgr = cv2.imread(str(photo))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    detection = max(engine.find_in_photo(rgb), key=lambda d: d.box.area)  # the subject, not a bystander
    [encoding] = engine.encoder.encode(rgb, [detection.box])
    now = time.time()
    frame = Frame(bgr, track_id, None, now)
    track = Track(track_id, detection.box, now)
    track.offer_view(frame, detection.box, 200.0)
    for _ in range(3):
        track.add_sample(Sample(Verdict.UNKNOWN, 0.9, encoding), now)
    assert track.decided is Verdict.UNKNOWN
    return track, frame


def test_a_visitor_walking_past_cameras_is_one_visitor_with_one_capture_per_location(site_events, engine):
    site, config = site_events
    gate, gate2, door = (site.recorder(c) for c in config.cameras)
    photo = lfw_photos("Tony_Blair")[0]  # the same face seen by each camera in turn
    events = []
    for n, recorder in enumerate((gate, gate2, door), start=1):
        track, frame = unknown_track(engine, photo, n)
        events.append(recorder.handle(Observation("unknown_face", frame, track, None, 0.9)))
    first, second, third = events
    assert [e.camera for e in events] == ["gate", "gate 2", "door"]
    assert [e.location for e in events] == ["Front Gate", "Front Gate", "Back Door"]
    assert (first.latitude, first.longitude, third.latitude) == (51.5, -0.12, None)
    assert first.extra["visitor"] == second.extra["visitor"] == third.extra["visitor"]
    assert second.extra.get("revisit") and second.capture == first.capture  # same place: no new capture
    assert not third.extra.get("revisit") and third.capture not in (
        None,
        first.capture,
    )  # another place: its own


def test_cameras_record_from_their_own_threads_into_one_log(site_events, engine):
    site, config = site_events
    people = ("Tony_Blair", "Colin_Powell", "George_W_Bush")
    tracks = [unknown_track(engine, lfw_photos(p)[0], n) for n, p in enumerate(people, start=1)]
    recorders = [site.recorder(c) for c in config.cameras]
    errors: list[BaseException] = []

    def record(recorder, track, frame):
        try:
            for _ in range(5):  # through record(), as the camera threads do (it takes the site's lock)
                recorder.record(
                    FrameReport(frame, [Observation("unknown_face", frame, track, None, 0.9)], [], 1)
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(r, *t)) for r, t in zip(recorders, tracks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stored = site.event_log.query()
    assert len(stored) == 15 and len({e.seq for e in stored}) == 15
    assert sorted({e.camera for e in stored}) == ["door", "gate", "gate 2"]
