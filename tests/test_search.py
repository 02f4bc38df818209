"""Searching the past by face (edgeguard.store.face_index, outputs/face_index.py, review/search.py,
`edgeguard search`): the index's arithmetic on synthetic encodings; the hits on real photos, with events and
captures written by the real events stage (EventRecorder, EventLog, CaptureStore)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import helpers  # tests/helpers.py
import numpy as np
import pytest
import requests
from conftest import PEOPLE, TESTDATA, Site, lfw_photos
from recorded import Recorded  # tests/recorded.py

from edgeguard.common.match_rule import MatchThresholds
from edgeguard.config import RecognitionConfig
from edgeguard.events.event import Event, EventType
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.photos import PhotoError, load_photo
from edgeguard.outputs.bus import EventBus
from edgeguard.outputs.face_index import FaceIndexOutput
from edgeguard.review.search import face_to_search, search_events
from edgeguard.store.event_log import EventLog
from edgeguard.store.face_captures import CaptureFolder, CaptureStore
from edgeguard.store.face_index import FaceIndex, SearchFilter

MAX_PIXELS = RecognitionConfig().max_image_pixels
RULE = MatchThresholds()


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig())
    engine.warm_up()
    return engine


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    """Random encodings of the scale of dlib's (norm about 1)."""
    x = rng.normal(size=(n, 128)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def decided(log: EventLog, store: CaptureStore, encodings: np.ndarray, camera: str, when: float) -> Event:
    """An unknown_face event whose capture's sidecar holds `encodings`, as the recorder writes them."""
    image = np.zeros((40, 40, 3), np.uint8)
    saved = store.save(when, camera, image, image, {"encodings": encodings.tolist(), "track": 1})
    assert not isinstance(saved, str), saved
    return log.append(
        Event(EventType.UNKNOWN_FACE, when, camera, f"{camera} place", capture=str(saved.face), track=1)
    )


class TestIndex:
    def test_nearest_first_with_the_rules_words_and_only_matches(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(1)
        log, store = EventLog(tmp_path / "events.db"), CaptureStore(tmp_path / "captures", 30, 100)
        face = unit(rng)[0]
        step = 0.3 * unit(rng)[0]  # the samples' mean is 0.3 from the face: a match, "strong"
        near = decided(log, store, np.stack([face + step * 0.9, face + step * 1.1]), "gate", time.time() - 50)
        nearer = decided(log, store, face[None], "till", time.time() - 40)
        other = decided(log, store, unit(rng), "gate", time.time() - 30)
        index = FaceIndex(log, store, RULE)
        assert index.size == 0  # lazy: nothing read before the first search
        hits = index.search(face)
        assert [h.seq for h in hits] == [nearer.seq, near.seq]
        assert hits[0].distance == pytest.approx(0.0, abs=1e-3)
        assert hits[1].distance == pytest.approx(0.3, abs=1e-3)
        assert [h.words for h in hits] == [RULE.words(0.0, False), RULE.words(0.3, False)] == ["strong"] * 2
        assert other.seq not in [h.seq for h in hits]
        assert index.size == 3
        log.close()

    def test_since_camera_and_location_filters(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(2)
        log, store = EventLog(tmp_path / "events.db"), CaptureStore(tmp_path / "captures", 30, 100)
        face = unit(rng)[0]
        old = decided(log, store, face[None], "gate", time.time() - 7200)
        new = decided(log, store, face[None], "till", time.time() - 60)
        index = FaceIndex(log, store, RULE)
        seqs = lambda where: [h.seq for h in index.search(face, where)]  # noqa: E731
        assert sorted(seqs(SearchFilter())) == [old.seq, new.seq]
        assert seqs(SearchFilter(since=time.time() - 3600)) == [new.seq]
        assert seqs(SearchFilter(camera="gate")) == [old.seq]
        assert seqs(SearchFilter(location="till place")) == [new.seq]
        assert seqs(SearchFilter(camera="nowhere")) == []
        log.close()

    def test_an_erasure_takes_its_events_out_of_the_index(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(4)
        log, store = EventLog(tmp_path / "events.db"), CaptureStore(tmp_path / "captures", 30, 100)
        face = unit(rng)[0]
        kept = decided(log, store, face[None], "gate", time.time() - 50)
        erased = decided(log, store, face[None], "till", time.time() - 40)
        index = FaceIndex(log, store, RULE)
        assert sorted(h.seq for h in index.search(face)) == [kept.seq, erased.seq]
        forgotten = log.append(
            Event(
                type="erased", time=time.time(), camera="", location="", extra={"events": [[erased.seq, 0]]}
            )
        )
        FaceIndexOutput(index).handle(forgotten)  # edgeguard forget's event, handed over by the bus
        assert [h.seq for h in index.search(face)] == [kept.seq]
        log.close()

    def test_kept_current_by_the_event_bus_and_gaps_read_from_the_log(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(3)
        log, store = EventLog(tmp_path / "events.db"), CaptureStore(tmp_path / "captures", 30, 100)
        faces = unit(rng, 3)
        index = FaceIndex(log, store, RULE)
        bus = EventBus(log, [FaceIndexOutput(index)])
        bus.start()
        first = decided(log, store, faces[0][None], "gate", time.time())
        bus.publish(first)
        assert [h.seq for h in index.search(faces[0])] == [first.seq]  # the load read it
        unpublished = decided(log, store, faces[1][None], "gate", time.time())  # a queue dropped it
        second = decided(log, store, faces[2][None], "gate", time.time())
        bus.publish(second)
        bus.stop(2.0)
        assert [h.seq for h in index.search(faces[2])] == [second.seq]
        assert [h.seq for h in index.search(faces[1])] == [unpublished.seq]  # read back at the gap
        assert index.size == 3
        log.close()

    def test_gone_captures_and_retention_leave_the_results(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(4)
        log, store = EventLog(tmp_path / "events.db"), CaptureStore(tmp_path / "captures", 30, 100)
        face = unit(rng)[0]
        old = decided(log, store, face[None], "gate", time.time() - 3 * 86400)
        kept = decided(log, store, face[None], "gate", time.time() - 60)
        erased = decided(log, store, face[None], "gate", time.time() - 30)
        store.of(erased.capture).face.unlink()
        index = FaceIndex(log, store, RULE, retention_seconds=86400)
        found = search_events(index, log, store, face)
        assert [f.event.seq for f in found] == [kept.seq]
        assert old.seq not in [h.seq for h in index.search(face)]
        assert index.size == 1
        log.close()

    def test_a_capture_without_encodings_is_counted_not_indexed(self, tmp_path: Path) -> None:
        log, store = EventLog(tmp_path / "events.db"), CaptureStore(tmp_path / "captures", 30, 100)
        decided(log, store, np.empty((0, 128)), "gate", time.time())
        index = FaceIndex(log, store, RULE)
        assert index.search(np.zeros(128)) == []
        assert (index.size, index.unreadable) == (0, 1)
        log.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, engine: FaceEngine) -> Recorded:
    """Strangers on the real events stage: Colin Powell, Tony Blair and George W Bush as unknown faces."""
    site = Site(tmp_path_factory.mktemp("search") / "site")
    recorded = Recorded(site, engine)
    recorded.events = [
        recorded.event("unknown_face", lfw_photos("Colin_Powell")[0]),
        recorded.event("unknown_face", lfw_photos("Tony_Blair")[0]),
        recorded.event("unknown_face", lfw_photos("George_W_Bush")[0]),
    ]
    return recorded


class TestRealPhotos:
    def test_a_stranger_is_found_by_another_photo_of_them(self, recorded: Recorded, engine: FaceEngine):
        config = recorded.config
        blair = recorded.events[1]
        log = EventLog(config.paths.events_db)
        try:
            index = FaceIndex(log, CaptureFolder(config.paths.captures), config.match_thresholds)
            encoding = face_to_search(engine, load_photo(lfw_photos("Tony_Blair")[3], MAX_PIXELS))
            found = search_events(index, log, CaptureFolder(config.paths.captures), encoding)
        finally:
            log.close()
        assert found and found[0].event.seq == blair.seq
        assert all(f.event.seq == blair.seq for f in found)  # Powell and Bush are not Blair
        assert found[0].distance <= config.match_thresholds.tolerance
        assert found[0].words in ("strong", "possible")

    def test_cli_json_is_the_events_form_with_the_distance(self, recorded: Recorded):
        result = helpers.edgeguard(
            recorded.site.config_path, "search", "--json", str(lfw_photos("Colin_Powell")[2])
        )
        assert result.returncode == 0, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        assert [line["seq"] for line in lines] == [recorded.events[0].seq]
        events = helpers.edgeguard(recorded.site.config_path, "events", "--json")
        listed = {json.loads(line)["seq"]: json.loads(line) for line in events.stdout.splitlines()}
        first = lines[0]
        assert set(listed[first["seq"]]) <= set(first)
        assert first["capture"] == listed[first["seq"]]["capture"]
        assert first["match"] in ("strong", "possible")
        assert first["distance"] <= recorded.config.match_thresholds.tolerance
        filtered = helpers.edgeguard(
            recorded.site.config_path, "search", "--camera", "elsewhere", str(lfw_photos("Colin_Powell")[2])
        )
        assert filtered.returncode == 0 and "no event of this face" in filtered.stdout

    @pytest.mark.parametrize(
        "photo, why",
        [
            (TESTDATA / "crowd" / "dogs.jpg", "no face"),
            (PEOPLE / "two_people.jpg", "2 faces"),
        ],
    )
    def test_a_photo_without_one_person_is_refused(self, engine: FaceEngine, photo: Path, why: str):
        with pytest.raises(PhotoError, match=why):
            face_to_search(engine, load_photo(photo, MAX_PIXELS))

    def test_cli_bad_photos_get_a_clear_answer(self, recorded: Recorded, tmp_path: Path):
        corrupt = tmp_path / "corrupt.jpg"
        corrupt.write_bytes((PEOPLE / "obama.jpg").read_bytes()[:3000])
        result = helpers.edgeguard(recorded.site.config_path, "search", str(corrupt))
        assert result.returncode == 1
        assert "corrupt or truncated image" in result.stderr and "Traceback" not in result.stderr
        result = helpers.edgeguard(recorded.site.config_path, "search", str(PEOPLE / "two_people.jpg"))
        assert result.returncode == 1 and "2 faces found" in result.stderr


@pytest.fixture
def board(tmp_path: Path, engine: FaceEngine):
    from test_web import Board  # tests/test_web.py: the dashboard over real HTTP

    site = Site(tmp_path / "site")
    recorded = Recorded(site, engine)
    recorded.events = [
        recorded.event("unknown_face", lfw_photos("Colin_Powell")[0]),
        recorded.event("unknown_face", lfw_photos("Tony_Blair")[0]),
    ]
    board = Board(site, '[captures]\nknown_categories = ["*"]\n')
    board.recorded = recorded
    yield board
    board.stop()


def post_search(board, http, photo: tuple[str, bytes], path: str = "/search"):
    return http.post(f"{board.url}{path}", data={"csrf": board.csrf(http, "/search")}, files={"photo": photo})


class TestSearchPage:
    def test_a_viewer_finds_the_stranger_and_cannot_enrol(self, board):
        http, _ = board.login("victor")
        photo = lfw_photos("Tony_Blair")[3]
        answer = post_search(board, http, (photo.name, photo.read_bytes()))
        assert answer.status_code == 200, answer.text[-600:]
        rows = [int(seq) for seq in re.findall(r'<tr data-seq="(\d+)"', answer.text)]
        assert rows == [board.recorded.events[1].seq]
        assert "match<br>" in answer.text and "/captures/" in answer.text
        assert 'id="search-enrol"' not in answer.text
        refused = http.post(
            f"{board.url}/search/enrol", data={"csrf": board.csrf(http, "/search"), "id": "7"}
        )
        assert refused.status_code == 403

    def test_an_admin_adds_the_person_with_the_search_photo(self, board):
        http, _ = board.login()
        photo = lfw_photos("Tony_Blair")[3]
        answer = post_search(board, http, (photo.name, photo.read_bytes()))
        carried = re.search(r'name="photo" value="([^"]+)"', answer.text).group(1)
        added = http.post(
            f"{board.url}/search/enrol",
            data={"csrf": board.csrf(http, "/search"), "id": "7", "name": "Tony Blair", "photo": carried},
        )
        assert added.status_code == 200 and "now a photo of Id 7" in added.text, added.text[-600:]
        assert len(list((board.site.training / "7").iterdir())) == 1
        assert "Tony Blair" in board.site.details.read_text()

    @pytest.mark.parametrize(
        "name, data, expected",
        [
            ("dogs.jpg", (TESTDATA / "crowd" / "dogs.jpg").read_bytes(), "no face found"),
            ("two.jpg", (PEOPLE / "two_people.jpg").read_bytes(), "2 faces found"),
            ("cut.jpg", (PEOPLE / "obama.jpg").read_bytes()[:3000], "corrupt or truncated image"),
            ("notes.txt", b"hello", "not a .jpg"),
            ("bomb.png", None, "image too large"),
        ],
    )
    def test_bad_photos_get_a_clear_answer(self, board, name: str, data: bytes | None, expected: str):
        from test_web import png_bomb  # a 60000 x 60000 PNG of a few hundred bytes

        data = png_bomb(60000, 60000) if data is None else data
        http, _ = board.login("victor")
        answer = post_search(board, http, (name, data))
        assert answer.status_code == 400 and expected in answer.text, answer.text[-600:]

    def test_a_50_mb_upload_is_refused_before_it_is_read(self, board):
        http, _ = board.login("victor")
        answer = post_search(board, http, ("big.jpg", b"\0" * 50_000_000))
        assert answer.status_code == 413

    def test_nobody_searches_without_logging_in(self, board):
        photo = lfw_photos("Tony_Blair")[3]
        answer = requests.post(
            f"{board.url}/search", files={"photo": (photo.name, photo.read_bytes())}, allow_redirects=False
        )
        assert answer.status_code in (302, 303, 403)
