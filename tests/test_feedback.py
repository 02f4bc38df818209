"""Wrong names, corrected (edgeguard.review.feedback, watchlist.negatives, build's veto,
`edgeguard feedback`): real photos, real encodings, events and captures written by the real
events stage (EventRecorder, EventLog, CaptureStore)."""

from __future__ import annotations

import json
import logging
import stat
import time
from pathlib import Path

import cv2
import helpers  # tests/helpers.py
import numpy as np
import pytest
from conftest import PEOPLE, Site, lfw_photos, make_site
from recorded import Recorded  # tests/recorded.py

from edgeguard.config import RecognitionConfig
from edgeguard.events.event import Event
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.matching import Gallery
from edgeguard.faces.photos import load_photo
from edgeguard.watchlist.build import build_watchlist, open_cache
from edgeguard.watchlist.enrol import remove_person
from edgeguard.watchlist.negatives import (
    FORMAT,
    Negative,
    NegativesError,
    add_negative,
    folder_of,
    load_negatives,
    read_negatives,
    remove_negative,
)

MAX_PIXELS = RecognitionConfig().max_image_pixels
TOLERANCE = RecognitionConfig().tolerance
BLAIR = lfw_photos("Tony_Blair")
OBAMA = ("1", "Barack Obama", "obama.jpg")


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig())
    engine.warm_up()
    return engine


def encoding_of(engine: FaceEngine, photo: Path) -> np.ndarray:
    return engine.enrolment_encoding(load_photo(photo, MAX_PIXELS))


def negative(event: int, encodings: np.ndarray, capture: str | None = None) -> Negative:
    return Negative(
        event, time.time() - 60, time.time(), "test", capture, np.atleast_2d(encodings).astype(np.float32)
    )


def build(site: Site, engine: FaceEngine):
    config = site.config()
    return build_watchlist(config, engine, open_cache(config))


# --- matching: the nearest encoding of a given owner ----------------------------------------------


def test_nearest_of_is_the_nearest_encoding_of_each_querys_own_owner():
    rng = np.random.default_rng(7)
    encodings = rng.normal(size=(40, 128)).astype(np.float32)
    owners = rng.integers(0, 5, size=40)
    queries = rng.normal(size=(6, 128)).astype(np.float32)
    asked = np.array([0, 1, 2, 3, 4, 9])  # nobody has owner 9
    got = Gallery(encodings, owners).nearest_of(queries, asked)
    for j, owner in enumerate(asked[:5]):
        expected = np.linalg.norm(encodings[owners == owner] - queries[j], axis=1).min()
        assert got[j] == pytest.approx(expected, abs=1e-4)
    assert got[5] == np.inf
    assert np.all(Gallery(np.zeros((0, 128)), np.zeros(0)).nearest_of(queries, asked) == np.inf)


# --- the veto in Watchlist.identify, with real photos ---------------------------------------------


@pytest.fixture
def blair_site(tmp_path) -> Site:
    """Tony Blair enrolled from his first LFW photo, Colin Powell from his."""
    return make_site(
        tmp_path / "site",
        people=[("7", "Tony Blair", BLAIR[0]), ("8", "Colin Powell", lfw_photos("Colin_Powell")[0])],
    )


def test_a_face_nearer_a_negative_than_the_persons_photos_is_not_named_them(engine, blair_site):
    photo_a, marked, near_marked, near_photo = (encoding_of(engine, BLAIR[i]) for i in (0, 2, 8, 9))
    # The photos as they are: both queries are Blair within the tolerance ...
    before = build(blair_site, engine).identify(np.array([near_marked, near_photo]))
    assert [i.person.id for i in before] == ["7", "7"]
    # ... photo 8 lies nearer photo 2 than his enrolled photo, photo 9 nearer the enrolled photo.
    assert np.linalg.norm(near_marked - marked) < np.linalg.norm(near_marked - photo_a) <= TOLERANCE
    assert np.linalg.norm(near_photo - photo_a) < np.linalg.norm(near_photo - marked)

    assert add_negative(folder_of(blair_site.config()), "7", negative(12, marked))  # "event 12 was not Blair"
    watchlist = build(blair_site, engine)
    vetoed, named = watchlist.identify(np.array([near_marked, near_photo]))
    assert vetoed.person is None and vetoed.vetoed is not None and vetoed.vetoed.id == "7"
    assert vetoed.distance == pytest.approx(float(np.linalg.norm(near_marked - photo_a)), abs=1e-4)
    assert named.person is not None and named.person.id == "7" and named.vetoed is None
    assert watchlist.negative_counts == {"7": 1}


def test_a_negative_of_someone_else_vetoes_nobody(engine, blair_site):
    marked, near_marked = encoding_of(engine, BLAIR[2]), encoding_of(engine, BLAIR[8])
    add_negative(folder_of(blair_site.config()), "8", negative(12, marked))  # a negative of Powell, not Blair
    [identity] = build(blair_site, engine).identify(near_marked[None, :])
    assert identity.person is not None and identity.person.id == "7" and identity.vetoed is None


def test_a_stranger_beyond_the_tolerance_is_plain_unknown_whatever_the_negatives(engine, blair_site):
    stranger = encoding_of(engine, lfw_photos("Vladimir_Putin")[0])
    add_negative(folder_of(blair_site.config()), "7", negative(1, stranger))
    [identity] = build(blair_site, engine).identify(stranger[None, :])
    assert identity.person is None and identity.vetoed is None and identity.distance > TOLERANCE


# --- the negatives files -----------------------------------------------------------------------------


def test_negatives_are_written_0600_in_0700_folders_atomically_and_read_back(tmp_path):
    folder = tmp_path / "TrainingImageLabel" / "negatives"
    first = np.linspace(-0.2, 0.2, 128, dtype=np.float32)
    assert add_negative(folder, "7", negative(3, np.stack([first, -first]), "x-face.jpg"))
    assert not add_negative(folder, "7", negative(3, first))  # the same event twice: kept once
    assert add_negative(folder, "7", negative(5, first))
    path = folder / "7.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        stat.S_IMODE(folder.stat().st_mode) == 0o700 and stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    )
    assert [p.name for p in folder.iterdir()] == ["7.json"]  # no temporary file left behind
    kept = read_negatives(folder, "7")
    assert [(n.event, len(n.encodings), n.capture) for n in kept] == [(3, 2, "x-face.jpg"), (5, 1, None)]
    assert np.allclose(kept[0].encodings[0], first, atol=1e-6)
    assert json.loads(path.read_text())["format"] == FORMAT
    assert remove_negative(folder, "7", 3) and not remove_negative(folder, "7", 3)
    assert [n.event for n in read_negatives(folder, "7")] == [5]
    assert remove_negative(folder, "7", 5) and not path.exists()


DAMAGED = {
    "not json": b'{"format": "edgeguard-neg',
    "not ours": json.dumps({"hello": 1}).encode(),
    "short encoding": json.dumps(
        {
            "format": FORMAT,
            "encoder": "dlib_face_recognition_resnet_model_v1/5pt/150",
            "id": "7",
            "negatives": [{"event": 1, "time": 1.0, "added": 2.0, "encodings": [[0.1, 0.2]]}],
        }
    ).encode(),
    "not a number": json.dumps(
        {
            "format": FORMAT,
            "encoder": "dlib_face_recognition_resnet_model_v1/5pt/150",
            "id": "7",
            "negatives": [
                {"event": 1, "time": 1.0, "added": 2.0, "encodings": [[0.0] * 127 + [float("nan")]]}
            ],
        }
    ).encode(),
    "another encoder": json.dumps(
        {"format": FORMAT, "encoder": "facenet-512", "id": "7", "negatives": []}
    ).encode(),
    "another person": json.dumps(
        {
            "format": FORMAT,
            "encoder": "dlib_face_recognition_resnet_model_v1/5pt/150",
            "id": "8",
            "negatives": [],
        }
    ).encode(),
}


@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_a_damaged_negatives_file_is_skipped_with_the_reason_and_never_overwritten(
    engine, blair_site, caplog, kind
):
    folder = folder_of(blair_site.config())
    marked, near_marked = encoding_of(engine, BLAIR[2]), encoding_of(engine, BLAIR[8])
    add_negative(folder, "8", negative(4, marked))  # Powell's file is sound
    (folder / "7.json").write_bytes(DAMAGED[kind])
    with caplog.at_level(logging.WARNING, logger="edgeguard.watchlist"):
        watchlist = build(blair_site, engine)  # no exception: the daemon goes on
    [problem] = [p for p in watchlist.problems if "negatives" in p.where]
    assert (
        problem.where == str(folder / "7.json") and "Id 7 " in problem.reason and "skipped" in problem.reason
    )
    assert str(folder / "7.json") in caplog.text
    assert watchlist.negative_counts == {"8": 1}  # the sound file still counts
    [identity] = watchlist.identify(near_marked[None, :])
    assert identity.person is not None and identity.person.id == "7"  # nothing of the damaged file is applied
    with pytest.raises(NegativesError, match="7.json"):
        add_negative(folder, "7", negative(9, marked))
    assert (folder / "7.json").read_bytes() == DAMAGED[
        kind
    ]  # the damaged file is left for a person to look at


def test_a_negatives_file_that_is_a_symbolic_link_is_not_followed(tmp_path):
    folder = tmp_path / "negatives"
    add_negative(tmp_path / "elsewhere", "7", negative(1, np.zeros(128)))
    folder.mkdir()
    (folder / "7.json").symlink_to(tmp_path / "elsewhere" / "7.json")
    found, [problem] = load_negatives(folder)
    assert found == {} and "symbolic link" in problem.reason


def test_removing_a_person_removes_their_negatives(engine, blair_site):
    config = blair_site.config()
    add_negative(folder_of(config), "7", negative(1, np.zeros(128)))
    add_negative(folder_of(config), "8", negative(2, np.zeros(128)))
    remove_person(config, "7")
    assert not (folder_of(config) / "7.json").exists() and (folder_of(config) / "8.json").exists()


# --- events and captures made by the real events stage (tests/recorded.py) --------------------------


OBAMA_SITE = [OBAMA, ("5", "Tony Blair", BLAIR[1]), ("6", "Ann Staff", BLAIR[3], "staff")]


@pytest.fixture(scope="module")
def obama_template(tmp_path_factory, engine) -> Site:
    """A site whose encoding cache the tests' sites borrow (saves encoding the same photos in every
    command)."""
    site = make_site(tmp_path_factory.mktemp("template") / "site", people=OBAMA_SITE)
    build(site, engine)
    return site


@pytest.fixture
def obama_site(tmp_path, engine, obama_template) -> Recorded:
    """Barack Obama (Id 1) from obama.jpg, Tony Blair (Id 5) from one LFW photo, a staff member (Id 6)."""
    return Recorded(make_site(tmp_path / "site", people=OBAMA_SITE, cache_from=obama_template), engine)


def test_the_sidecar_keeps_the_encodings_that_voted_rounded_to_6_places(obama_site):
    event = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    sidecar = json.loads(Path(event.capture.replace("-face.jpg", ".json")).read_text())
    assert len(sidecar["encodings"]) == 2 and all(len(e) == 128 for e in sidecar["encodings"])
    assert all(round(x, 6) == x for e in sidecar["encodings"] for x in e)
    assert stat.S_IMODE(Path(event.capture.replace("-face.jpg", ".json")).stat().st_mode) == 0o600


def test_not_person_on_a_known_face_event_keeps_its_face_as_a_negative(obama_site):
    assert obama_site.analyze(PEOPLE / "obama2.jpg")["id"] == "1"
    event = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    result = obama_site.feedback(str(event.seq), "--not-person")
    assert result.returncode == 0, result.stderr
    assert (
        f"event {event.seq}: 2 sample(s) of its face kept as a negative for Barack Obama (Id 1)"
        in result.stdout
    )
    assert "reloads its watchlist" in result.stdout
    [kept] = read_negatives(folder_of(obama_site.config), "1")
    assert kept.event == event.seq and kept.capture == Path(event.capture).name and kept.by == "command line"
    assert kept.time == pytest.approx(event.time)
    # The corrected face is no longer named Obama, and `analyze` says why; his other photos still are.
    face, other = obama_site.analyze(PEOPLE / "obama2.jpg", PEOPLE / "obama3.jpg")
    assert face["id"] is None and face["vetoed"] == {"id": "1", "name": "Barack Obama"}
    assert face["distance"] <= TOLERANCE
    assert other["id"] == "1" and other["vetoed"] is None
    text = helpers.edgeguard(obama_site.site.config_path, "analyze", str(PEOPLE / "obama2.jpg")).stdout
    assert "unknown (nearest Barack Obama (Id 1), vetoed by feedback)" in text
    # Saying it again changes nothing.
    again = obama_site.feedback(str(event.seq), "--not-person")
    assert again.returncode == 0 and "already" in again.stdout and "reloads" not in again.stdout
    assert len(read_negatives(folder_of(obama_site.config), "1")) == 1


def test_is_on_an_unknown_face_event_adds_its_capture_as_a_photo(obama_site):
    assert obama_site.analyze(BLAIR[0])["distance"] > 0.4  # his enrolled photo is another one
    event = obama_site.event("unknown_face", BLAIR[0], distance=0.7)
    before = sorted((obama_site.site.training / "5").iterdir())
    result = obama_site.feedback(str(event.seq), "--is", "5")
    assert result.returncode == 0, result.stderr
    assert f"event {event.seq}: its capture is now a photo of Id 5" in result.stdout
    added = sorted(set((obama_site.site.training / "5").iterdir()) - set(before))
    assert len(added) == 1 and stat.S_IMODE(added[0].stat().st_mode) == 0o600
    assert not folder_of(obama_site.config).exists() or not (folder_of(obama_site.config) / "5.json").exists()
    face = obama_site.analyze(BLAIR[0])
    assert face["id"] == "5" and face["distance"] < 0.2  # the new photo is this very face


def test_is_on_a_known_face_event_naming_someone_else_also_keeps_the_negative(obama_site):
    event = obama_site.event("known_face", BLAIR[0], "1", distance=0.55)  # Blair's face, named Obama
    result = obama_site.feedback(str(event.seq), "--is", "5")
    assert result.returncode == 0, result.stderr
    assert "its capture is now a photo of Id 5" in result.stdout
    assert "kept as a negative for Barack Obama (Id 1)" in result.stdout
    assert [n.event for n in read_negatives(folder_of(obama_site.config), "1")] == [event.seq]
    assert len(list((obama_site.site.training / "5").iterdir())) == 2


def test_is_withdraws_an_earlier_not_person_of_the_same_event(obama_site):
    event = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    assert obama_site.feedback(str(event.seq), "--not-person").returncode == 0
    # Blair's record says nothing about this event; mark it "not Blair" by hand, then "--is 5" withdraws that.
    add_negative(
        folder_of(obama_site.config), "5", negative(event.seq, np.zeros(128), Path(event.capture).name)
    )
    assert obama_site.feedback(str(event.seq), "--is", "5").returncode == 0
    assert read_negatives(folder_of(obama_site.config), "5") == []


def test_a_no_mask_event_is_followed_to_the_event_that_decided_its_face(obama_site):
    decided = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    bare = obama_site.append(
        Event(
            "no_mask",
            time.time(),
            "camera",
            "Site",
            person_id="1",
            name="Barack Obama",
            capture=decided.capture,
            track=decided.track,
        )
    )
    result = obama_site.feedback(str(bare.seq), "--not-person")
    assert result.returncode == 0, result.stderr
    assert f"event {bare.seq} (no_mask) is the bare face of event {decided.seq}" in result.stdout
    assert [n.event for n in read_negatives(folder_of(obama_site.config), "1")] == [decided.seq]


def test_a_later_sighting_sharing_a_capture_learns_the_captured_face(obama_site):
    first = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    later = obama_site.append(
        Event(
            "known_face",
            time.time(),
            "camera",
            "Site",
            person_id="1",
            name="Barack Obama",
            capture=first.capture,
            track=99,
        )
    )
    result = obama_site.feedback(str(later.seq), "--not-person")
    assert result.returncode == 0, result.stderr
    assert f"event {later.seq} shows the capture made at event {first.seq}" in result.stdout
    again = obama_site.feedback(str(first.seq), "--not-person")  # the same face: not kept twice
    assert again.returncode == 0 and f"already (from event {later.seq})" in again.stdout
    assert len(read_negatives(folder_of(obama_site.config), "1")) == 1


def refusal(recorded: Recorded, *args: str) -> str:
    result = recorded.feedback(*args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.startswith("edgeguard feedback: ")
    return result.stderr


def test_refusals_without_an_event_log_or_event(obama_site):
    assert "no event log" in refusal(obama_site, "3", "--not-person")
    obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    assert "there is no event 99 in the event log" in refusal(obama_site, "99", "--not-person")


def test_refusals_for_events_that_name_no_face(obama_site):
    crowd = obama_site.append(Event("crowd", time.time(), "camera", "Site", extra={"count": 4}))
    assert f"event {crowd.seq} is a crowd event" in refusal(obama_site, str(crowd.seq), "--not-person")
    unknown = obama_site.event("unknown_face", BLAIR[0], distance=0.7)
    assert (
        f"event {unknown.seq} is an unknown_face event: it names nobody; to say who it is, use --is ID"
        in refusal(obama_site, str(unknown.seq), "--not-person")
    )
    bare = obama_site.append(Event("no_mask", time.time(), "camera", "Site"))
    assert f"event {bare.seq} (no_mask) has no capture" in refusal(obama_site, str(bare.seq), "--not-person")


def test_refusals_for_the_person_named(obama_site):
    event = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    assert "Id 42 is not on the watchlist" in refusal(obama_site, str(event.seq), "--is", "42")
    assert "edgeguard enroll 42 --name NAME --from-capture" in refusal(
        obama_site, str(event.seq), "--is", "42"
    )
    assert "is not a watchlist Id" in refusal(obama_site, str(event.seq), "--is", "../1")
    assert f"event {event.seq} names Id 1 already" in refusal(obama_site, str(event.seq), "--is", "1")
    remove_person(obama_site.config, "1")
    assert f"event {event.seq} named Id 1, who is not on the watchlist" in refusal(
        obama_site, str(event.seq), "--not-person"
    )
    assert not folder_of(obama_site.config).exists() or not list(folder_of(obama_site.config).iterdir())


def test_refusals_for_an_event_without_a_usable_capture(obama_site):
    staff = obama_site.event("known_face", BLAIR[3], "6")  # a quiet category: no capture
    assert staff.capture is None
    assert (
        f"event {staff.seq} has no capture to learn from: sightings of category 'staff' are not captured"
        in refusal(obama_site, str(staff.seq), "--not-person")
    )
    assert f"event {staff.seq} has no capture" in refusal(obama_site, str(staff.seq), "--is", "5")

    event = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    face = Path(event.capture)
    sidecar = face.with_name(face.name.replace("-face.jpg", ".json"))
    meta = json.loads(sidecar.read_text())

    sidecar.write_text(json.dumps({k: v for k, v in meta.items() if k != "encodings"}))  # an old capture
    assert "was saved without the face's encodings" in refusal(obama_site, str(event.seq), "--not-person")
    sidecar.write_text(json.dumps({**meta, "encodings": [[0.1, 0.2]]}))
    assert f"the sidecar {sidecar} of its capture is damaged" in refusal(
        obama_site, str(event.seq), "--not-person"
    )
    sidecar.write_text('{"time": 17')
    assert f"the sidecar {sidecar} of its capture is damaged" in refusal(
        obama_site, str(event.seq), "--not-person"
    )
    sidecar.write_text(json.dumps({**meta, "person": {"id": "5"}}))
    assert "shows a sighting of Id 5, not Id 1" in refusal(obama_site, str(event.seq), "--not-person")
    planted = face.parent.parent / "planted.json"  # a good sidecar, but reached through a symlink
    planted.write_text(json.dumps(meta))
    sidecar.unlink()
    sidecar.symlink_to(planted)
    assert f"the sidecar {sidecar} of its capture: " in refusal(obama_site, str(event.seq), "--not-person")
    assert "symbolic link" in refusal(obama_site, str(event.seq), "--not-person")
    sidecar.unlink()
    face.rename(planted.with_name("planted.jpg"))
    face.symlink_to(planted.with_name("planted.jpg"))
    assert f"its capture cannot be used: {face.name}: a symbolic link" in refusal(
        obama_site, str(event.seq), "--is", "5"
    )
    face.unlink()
    planted.with_name("planted.jpg").rename(face)
    assert f"its capture {face.name} has no sidecar" in refusal(obama_site, str(event.seq), "--not-person")
    face.unlink()
    assert f"its capture {face.name} is gone" in refusal(obama_site, str(event.seq), "--not-person")
    assert not folder_of(obama_site.config).exists() or not list(folder_of(obama_site.config).iterdir())


def test_a_damaged_negatives_file_refuses_the_correction_and_is_kept(obama_site):
    event = obama_site.event("known_face", BLAIR[0], "1", distance=0.55)
    folder = folder_of(obama_site.config)
    folder.mkdir(parents=True)
    (folder / "1.json").write_bytes(b"garbage")
    before = sorted(p.name for p in (obama_site.site.training / "5").iterdir())
    stderr = refusal(obama_site, str(event.seq), "--not-person")
    assert f"{folder / '1.json'}: not a negatives file" in stderr and "nothing was changed" in stderr
    stderr = refusal(obama_site, str(event.seq), "--is", "5")  # the photo is not added either
    assert "nothing was changed" in stderr
    assert sorted(p.name for p in (obama_site.site.training / "5").iterdir()) == before
    assert (folder / "1.json").read_bytes() == b"garbage"


def test_is_with_a_face_too_small_to_enrol_still_keeps_the_negative(obama_site):
    """The photo is refused with the reason (exit 1); the wrong name is corrected all the same."""
    small = obama_site.site.base / "small.jpg"
    image = cv2.imread(str(BLAIR[0]))
    cv2.imwrite(str(small), cv2.resize(image, None, fx=0.45, fy=0.45, interpolation=cv2.INTER_AREA))
    event = obama_site.event("known_face", small, "1", distance=0.55)
    result = obama_site.feedback(str(event.seq), "--is", "5")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"event {event.seq}: the capture could not be added as a photo of Id 5" in result.stderr
    assert "kept as a negative for Barack Obama (Id 1)" in result.stdout
    assert len(list((obama_site.site.training / "5").iterdir())) == 1


def test_feedback_needs_one_correction(obama_site):
    result = obama_site.feedback("1")
    assert result.returncode == 2 and "--not-person" in result.stderr
    result = obama_site.feedback("1", "--not-person", "--is", "5")
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_events_lists_the_event_number_first(obama_site):
    event = obama_site.event("known_face", PEOPLE / "obama2.jpg", "1")
    [line] = helpers.edgeguard(obama_site.site.config_path, "events").stdout.splitlines()
    assert line.split()[0] == str(event.seq) and "known_face Barack Obama (Id 1)" in line


# --- the running watchlist picks corrections up (real watchdog observers) ----------------------------


@pytest.mark.parametrize("extra", ["", "polling = true\npoll_interval = 0.5\n"], ids=["inotify", "polling"])
def test_the_running_watchlist_reloads_when_a_negative_is_written_or_removed(engine, blair_site, extra):
    from test_reload import Running, wait_until_quiet  # the started WatchlistService of tests/test_reload.py

    marked, near_marked = encoding_of(engine, BLAIR[2]), encoding_of(engine, BLAIR[8])
    run = Running(blair_site, engine, extra)
    run.start()
    try:
        assert run.service.current.identify(near_marked[None, :])[0].person.id == "7"
        folder = folder_of(run.config)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # made at start, so that it can be watched
        add_negative(folder, "7", negative(12, marked))
        helpers.wait_for(
            lambda: run.service.current.negative_counts == {"7": 1}, 15, "a reload with the negative"
        )
        [identity] = run.service.current.identify(near_marked[None, :])
        assert identity.person is None and identity.vetoed.id == "7"
        wait_until_quiet(run)  # the build writes the encoding cache beside the negatives: no reload loop
        assert len(run.reloaded) == 1
        remove_negative(folder, "7", 12)
        helpers.wait_for(lambda: len(run.reloaded) == 2, 15, "a reload without the negative")
        assert run.service.current.negative_counts == {}
    finally:
        run.service.stop()
