"""Strangers remembered (edgeguard.events.strangers, store/strangers.py, the recorder): real photos through
the real events stage (EventRecorder, EventLog, CaptureStore, StrangerStore), a restart between sightings,
return visits, corrections and retention."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import Site, lfw_photos

from edgeguard.capture import Frame
from edgeguard.common.match_rule import MatchThresholds
from edgeguard.config import Config, RecognitionConfig
from edgeguard.events.event import Event
from edgeguard.events.recorder import SiteEvents
from edgeguard.events.strangers import nearest, visit_starts
from edgeguard.faces.engine import FaceEngine
from edgeguard.live.pipeline import Observation
from edgeguard.live.track import Sample, Track
from edgeguard.live.vote import Verdict
from edgeguard.service.doctor import check_strangers
from edgeguard.store.event_log import EventLog
from edgeguard.store.face_captures import CaptureStore
from edgeguard.store.strangers import open_strangers

DAY = 86400.0
RULE = MatchThresholds()


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig())
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def faces(engine: FaceEngine) -> dict[Path, tuple[np.ndarray, object, np.ndarray]]:
    """Each LFW photo used here: its image, the subject's box and encoding (computed once)."""
    out = {}
    for person in ("Tony_Blair", "Colin_Powell", "George_W_Bush", "Donald_Rumsfeld"):
        for photo in lfw_photos(person)[:4]:
            bgr = cv2.imread(str(photo))
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            box = min(
                (d.box for d in engine.find_in_photo(rgb)),
                key=lambda b: (b.center[0] - h / 2) ** 2 + (b.center[1] - w / 2) ** 2,
            )
            [encoding] = engine.encoder.encode(rgb, [box])
            out[photo] = (bgr, box, encoding)
    return out


class Device:
    """The events stage of one site, opened and closed like a daemon's (a restart is a new Device)."""

    def __init__(self, site: Site, extra: str = "") -> None:
        site.write_config(extra)
        self.config: Config = site.config()
        self.log = EventLog(self.config.paths.events_db)
        self.strangers = open_strangers(self.config)
        captures = CaptureStore(self.config.paths.captures, 30, 100)
        self.site = SiteEvents(self.config, self.log, captures, strangers=self.strangers)
        self.recorder = self.site.recorder(self.config.cameras[0])
        self.tracks = 0

    def unknown(self, faces, photo: Path, when: float) -> list[Event]:
        """An unknown face decided on a frame at `when` (two samples of the photo's encoding); the events."""
        bgr, box, encoding = faces[photo]
        self.tracks += 1
        frame = Frame(bgr, self.tracks, None, when)
        track = Track(self.tracks, box, when)
        track.offer_view(frame, box, 200.0)
        for n in range(2):
            track.add_sample(Sample(Verdict.UNKNOWN, 0.9, encoding + n * 1e-3), when)
        before = self.log.last_seq()
        self.recorder.handle(Observation("unknown_face", frame, track, None, 0.9))
        return self.log.after(before, 10)

    def close(self) -> None:
        self.strangers.close()
        self.log.close()


def stranger_of(events: list[Event]) -> int:
    return events[0].extra["stranger"]


class TestOnRealPhotos:
    def test_a_stranger_keeps_one_id_across_a_restart_and_two_are_not_merged(self, tmp_path, faces):
        site, now = Site(tmp_path / "site"), time.time()
        first = Device(site)
        blair = stranger_of(first.unknown(faces, lfw_photos("Tony_Blair")[0], now - 2 * DAY))
        powell = stranger_of(first.unknown(faces, lfw_photos("Colin_Powell")[0], now - 2 * DAY + 60))
        first.close()
        again = Device(site)  # the daemon restarted
        assert stranger_of(again.unknown(faces, lfw_photos("Tony_Blair")[1], now - DAY)) == blair
        assert stranger_of(again.unknown(faces, lfw_photos("Colin_Powell")[2], now - DAY + 60)) == powell
        bush = stranger_of(again.unknown(faces, lfw_photos("George_W_Bush")[0], now))
        assert len({blair, powell, bush}) == 3
        listed = {s.id: s for s in again.strangers.list()}
        assert listed[blair].visits == 2 and listed[blair].sightings == 2
        assert listed[blair].best_capture and listed[bush].visits == 1
        again.close()

    def test_return_visits_fire_on_the_third_visit_and_not_before(self, tmp_path, faces):
        device, now = Device(Site(tmp_path / "site")), time.time()
        photos = lfw_photos("Tony_Blair")
        kinds = [[e.type for e in device.unknown(faces, photos[n], now - (3 - n) * DAY)] for n in range(3)]
        assert kinds == [["unknown_face"], ["unknown_face"], ["unknown_face", "return_visit"]]
        back = device.log.after(0, 100)[-1]
        assert (
            back.type == "return_visit"
            and back.extra["stranger"] == device.log.after(0, 1)[0].extra["stranger"]
        )
        assert len(back.extra["visits"]) == 3 and back.capture == device.log.after(0, 100)[-2].capture
        # the same visit seen again (within revisit_minutes) is no new visit
        assert [e.type for e in device.unknown(faces, photos[3], now - DAY + 60)] == ["unknown_face"]
        device.close()

    def test_a_wrong_merge_is_split_and_a_wrong_split_merged(self, tmp_path, faces):
        device, now = Device(Site(tmp_path / "site")), time.time()
        blair = stranger_of(device.unknown(faces, lfw_photos("Tony_Blair")[0], now - DAY))
        powell = stranger_of(device.unknown(faces, lfw_photos("Colin_Powell")[0], now))
        device.strangers.merge(powell, blair)  # someone merged them by mistake
        assert [s.id for s in device.strangers.list()] == [blair]
        powell_sighting = [s for s in device.strangers.sightings(blair) if s[1] == now][0][0]
        apart = device.strangers.split(powell_sighting)
        assert {s.id for s in device.strangers.list()} == {blair, apart}
        device.strangers.enrolled(apart, "12")
        assert {s.id: s.person_id for s in device.strangers.list()}[apart] == "12"
        device.close()

    def test_retention_forgets_sightings_encodings_and_empty_strangers(self, tmp_path, faces):
        device, now = Device(Site(tmp_path / "site")), time.time()
        device.unknown(faces, lfw_photos("Tony_Blair")[0], now - 40 * DAY)
        kept = stranger_of(device.unknown(faces, lfw_photos("Colin_Powell")[0], now))
        assert device.strangers.kept().strangers == 2
        assert device.strangers.expire(now - 30 * DAY) == 1
        assert [s.id for s in device.strangers.list()] == [kept]
        assert device.strangers.kept().encodings == 2 and device.strangers.kept().oldest == now
        device.close()

    def test_a_deleted_capture_takes_its_sightings_and_encodings_along(self, tmp_path, faces):
        device, now = Device(Site(tmp_path / "site")), time.time()
        [erased] = device.unknown(faces, lfw_photos("Tony_Blair")[0], now - DAY)
        kept = stranger_of(device.unknown(faces, lfw_photos("Colin_Powell")[0], now))
        store = CaptureStore(device.config.paths.captures, 30, 100)
        assert device.strangers.forget_gone(store.kept) == 0
        store.of(erased.capture).face.unlink()  # erased (or deleted for space)
        assert device.strangers.forget_gone(store.kept) == 1
        assert [s.id for s in device.strangers.list()] == [kept]
        assert device.strangers.kept().encodings == 2
        device.close()


def test_the_rule_needs_a_match_and_a_margin_to_the_next_stranger():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.09, (2, 128)).astype(np.float32)
    face = a[None] + 0.01
    assert nearest(face, {1: a[None], 2: b[None]}, RULE) == 1
    between = ((a + b) / 2)[None]
    close = {1: between + 0.001, 2: between - 0.001}  # two strangers nearly alike: no merge by this face
    assert nearest(between, close, RULE) is None
    assert nearest(face, {}, RULE) is None


def test_visits_are_runs_without_a_long_gap():
    assert visit_starts([0, 60, 120, 5000, 5010, 20000], 1800) == [0, 5000, 20000]


@pytest.fixture
def board(tmp_path, faces):
    from test_web import Board  # tests/test_web.py: the dashboard over real HTTP

    site, now = Site(tmp_path / "site"), time.time()
    device = Device(site)
    ids = [
        stranger_of(device.unknown(faces, lfw_photos("Tony_Blair")[0], now - DAY)),
        stranger_of(device.unknown(faces, lfw_photos("Colin_Powell")[0], now)),
    ]
    device.close()
    board = Board(site)
    board.dashboard.strangers = open_strangers(board.config)
    board.ids = ids
    yield board
    board.dashboard.strangers.close()
    board.stop()


class TestStrangersPage:
    def test_a_viewer_sees_the_strangers_and_corrects_nothing(self, board):
        http, _ = board.login("victor")
        page = http.get(f"{board.url}/strangers")
        assert page.status_code == 200
        assert [int(s) for s in re.findall(r'data-stranger="(\d+)"', page.text)] == board.ids[::-1]
        assert "Merge" not in page.text and "/captures/" in page.text
        detail = http.get(f"{board.url}/strangers/{board.ids[0]}")
        assert detail.status_code == 200 and "1 sighting(s)" in detail.text
        refused = http.post(
            f"{board.url}/strangers/{board.ids[0]}/merge",
            data={"csrf": board.csrf(http, "/strangers"), "into": str(board.ids[1])},
        )
        assert refused.status_code == 403

    def test_an_admin_merges_splits_and_adds_a_stranger_to_the_watchlist(self, board):
        http, _ = board.login()
        blair, powell = board.ids
        merged = http.post(
            f"{board.url}/strangers/{powell}/merge",
            data={"csrf": board.csrf(http, "/strangers"), "into": str(blair)},
        )
        assert merged.status_code == 200 and "2 sighting(s)" in merged.text
        sighting = re.findall(r'data-sighting="(\d+)"', merged.text)[-1]
        split = http.post(
            f"{board.url}/strangers/sightings/{sighting}/split", data={"csrf": board.csrf(http, "/strangers")}
        )
        assert split.status_code == 200 and "1 sighting(s)" in split.text
        added = http.post(
            f"{board.url}/strangers/{blair}/enrol",
            data={"csrf": board.csrf(http, "/strangers"), "id": "7", "name": "Tony Blair"},
        )
        assert added.status_code == 200 and f"Stranger {blair} is now Id 7" in added.text, added.text[-800:]
        assert "now <a" in added.text and (board.site.training / "7").is_dir()
        record = http.get(f"{board.url}/records/7")
        assert 'id="stranger-history"' in record.text and f"stranger {blair}</a>" in record.text
        bad = http.post(
            f"{board.url}/strangers/{blair}/merge", data={"csrf": board.csrf(http, "/strangers"), "into": "x"}
        )
        assert "give the number of a stranger" in bad.text


def test_check_says_how_many_strangers_and_encodings_are_kept_and_until_when(tmp_path, faces):
    site, now = Site(tmp_path / "site"), time.time()
    assert check_strangers(site.config())[0].detail == "none remembered yet"
    device = Device(site)
    device.unknown(faces, lfw_photos("Tony_Blair")[0], now - DAY)
    device.unknown(faces, lfw_photos("Colin_Powell")[0], now)
    [finding] = check_strangers(device.config)
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(now - DAY + 30 * DAY))
    assert finding.level == "ok" and "2 stranger(s) with 4 face encoding(s)" in finding.detail
    assert f"kept until {until}" in finding.detail
    device.close()


def test_erasure_reaches_the_strangers(tmp_path, faces):
    """`edgeguard forget --capture` takes the stranger's sighting (and encodings) with the capture;
    `forget ID` of a stranger added to the watchlist takes the stranger they were."""
    from edgeguard.service.erasure import forget_capture, forget_person
    from edgeguard.watchlist.details import upsert_person

    device, now = Device(Site(tmp_path / "site")), time.time()
    blair_events = device.unknown(faces, lfw_photos("Tony_Blair")[0], now - DAY)
    blair = stranger_of(blair_events)
    powell = stranger_of(device.unknown(faces, lfw_photos("Colin_Powell")[0], now))
    device.strangers.enrolled(powell, "9")
    device.close()
    upsert_person(device.config.paths.details_csv, "9", "Colin Powell", None)

    said = forget_capture(device.config, blair_events[0].capture)
    assert any(line.startswith("strangers: 1 sighting") for line in said), said
    said = forget_person(device.config, "9")
    assert any(line.startswith("strangers: 1 sighting") for line in said), said
    again = open_strangers(device.config)
    try:
        assert [s.id for s in again.list()] == []
        assert again.kept().encodings == 0
    finally:
        again.close()
    assert blair != powell
