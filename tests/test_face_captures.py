"""Tests for edgeguard.store.face_captures: unknown-face captures on disk (CaptureStore, capture_to_photo),
and the unknown-visitor memory of edgeguard.events.visitors."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import lfw_photos

from edgeguard.common.match_rule import MatchThresholds
from edgeguard.config import RecognitionConfig
from edgeguard.events.visitors import MAX_ENCODINGS, UnknownVisitors
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.photos import load_photo
from edgeguard.store.face_captures import (
    MAX_ID,
    BadCaptureId,
    CaptureError,
    CaptureFolder,
    CaptureGone,
    CaptureStore,
    SavedCapture,
    SidecarDamaged,
    capture_id,
    capture_to_photo,
    check_id,
    parse_name,
)

LOGGER = "edgeguard.store.face_captures"
DAY = 86400.0
MB = 1024 * 1024


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def images() -> tuple[np.ndarray, np.ndarray]:
    """A face crop and its frame: smooth gradients with a bright square, which JPEG keeps well."""
    y, x = np.mgrid[0:120, 0:160]
    frame = np.dstack([x * 1.5, y * 2, (x + y) * 0.9]).astype(np.uint8)
    frame[30:70, 50:90] = (40, 220, 250)
    return frame[20:80, 40:100].copy(), frame


def capture_stem(when: float, camera: str = "cam") -> str:
    """The file-name stem CaptureStore gives a capture (local time, milliseconds, camera)."""
    return f"{datetime.fromtimestamp(when):%Y%m%d-%H%M%S}-{int(when * 1000) % 1000:03d}-{camera}"


SIDECAR = {
    "time": 1_790_000_000.5,
    "camera": "Gate 1",
    "location": {"name": "Gate"},
    "box": [20, 100, 80, 40],
    "distance": 0.81,
    "frame": 214,
}


def fake_capture(folder: Path, stem: str, mtime: float, size: int) -> list[Path]:
    """A capture's three files as the store names them, `size` bytes in all, with the given mtime."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{stem}-face.jpg", folder / f"{stem}-frame.jpg", folder / f"{stem}.json"]
    sizes = [size // 4, size - size // 4 - 10, 10]
    for path, n in zip(files, sizes, strict=True):
        path.write_bytes(b"\0" * n)
        os.utime(path, (mtime, mtime))
    return files


# ---------------------------------------------------------------- save


def test_save_writes_face_frame_and_sidecar_privately(tmp_path):
    folder = tmp_path / "new" / "Unknown_Face_Captures"
    store = CaptureStore(folder, retention_days=30, max_mb=100)
    crop, frame = images()
    when = 1_790_000_000.5
    saved = store.save(when, "Gate 1/east", crop, frame, SIDECAR)
    assert isinstance(saved, SavedCapture)
    assert mode(folder) == 0o700
    for path in (saved.face, saved.frame, saved.sidecar):
        assert path.parent == folder and mode(path) == 0o600
    stem = saved.sidecar.name.removesuffix(".json")
    assert saved.face.name == f"{stem}-face.jpg" and saved.frame.name == f"{stem}-frame.jpg"
    assert stem.endswith("-500-Gate_1_east")  # milliseconds, then a file-name-safe camera name
    assert json.loads(saved.sidecar.read_text()) == SIDECAR
    face = cv2.imread(str(saved.face))
    whole = cv2.imread(str(saved.frame))
    assert face.shape == crop.shape and whole.shape == frame.shape
    assert np.abs(face.astype(int) - crop).mean() < 4
    assert np.abs(whole.astype(int) - frame).mean() < 4
    assert np.abs(whole.astype(int) - np.roll(frame, 40, axis=1)).mean() > 20


def test_failing_saves_log_one_error_and_then_the_recovery(tmp_path, caplog):
    # The folder is a link to a card that is not there (unmounted): writing fails, also for root.
    card = tmp_path / "usb-stick"
    folder = tmp_path / "Unknown_Face_Captures"
    folder.symlink_to(card / "captures")
    store = CaptureStore(folder, retention_days=30, max_mb=100)
    crop, frame = images()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        reasons = [store.save(time.time() + i, "cam", crop, frame, SIDECAR) for i in range(3)]
        assert all(isinstance(r, str) and r.startswith("capture not saved:") for r in reasons), reasons
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]  # once, not per failure
        assert str(folder) in errors[0].getMessage()
        assert not any("saved again" in r.getMessage() for r in caplog.records)

        (card / "captures").mkdir(parents=True)  # the card is back
        saved = store.save(time.time() + 5, "cam", crop, frame, SIDECAR)
        assert isinstance(saved, SavedCapture) and saved.face.is_file()
        assert (card / "captures" / saved.face.name).is_file()
        recovered = [r for r in caplog.records if "saved again" in r.getMessage()]
        assert len(recovered) == 1 and recovered[0].levelno == logging.INFO

        store.save(time.time() + 6, "cam", crop, frame, SIDECAR)
        assert len([r for r in caplog.records if "saved again" in r.getMessage()]) == 1  # only on the change

        shutil.rmtree(card)  # gone again
        assert isinstance(store.save(time.time() + 7, "cam", crop, frame, SIDECAR), str)
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2  # a new failure after recovery


def test_save_below_a_regular_file_returns_a_reason(tmp_path, caplog):
    """A path component that is a file (ENOTDIR; a read-only card gives EROFS the same way) is a failed save,
    reported as a reason: the clean-up of the partial files must not raise either."""
    blocker = tmp_path / "card"
    blocker.write_text("a file where a folder should be")
    store = CaptureStore(blocker / "Unknown_Face_Captures", retention_days=30, max_mb=100)
    crop, frame = images()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        result = store.save(time.time(), "cam", crop, frame, SIDECAR)
    assert isinstance(result, str) and "Not a directory" in result
    assert len(caplog.records) == 1


def test_save_failing_halfway_leaves_no_partial_files(tmp_path):
    folder = tmp_path / "caps"
    folder.mkdir()
    store = CaptureStore(folder, retention_days=30, max_mb=100)
    crop, frame = images()
    when = 1_790_000_000.5
    # A folder stands where the frame's file would go: the face is written, the frame fails.
    blocker = folder / f"{capture_stem(when)}-frame.jpg"
    blocker.mkdir()
    result = store.save(when, "cam", crop, frame, SIDECAR)
    assert isinstance(result, str)
    assert list(folder.iterdir()) == [
        blocker
    ]  # the face written first is removed again, no temporary file left
    blocker.rmdir()
    saved = store.save(when, "cam", crop, frame, SIDECAR)
    assert isinstance(saved, SavedCapture)
    assert saved.sidecar.name == f"{capture_stem(when)}.json"


def test_a_symlink_planted_at_a_capture_name_is_replaced_not_written_through(tmp_path):
    folder = tmp_path / "caps"
    folder.mkdir()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"keep me")
    when = 1_790_000_000.5
    (folder / f"{capture_stem(when)}-face.jpg").symlink_to(outside)
    saved = CaptureStore(folder, retention_days=30, max_mb=100).save(when, "cam", *images(), SIDECAR)
    assert isinstance(saved, SavedCapture)
    assert outside.read_bytes() == b"keep me"
    assert not saved.face.is_symlink() and mode(saved.face) == 0o600


def test_an_image_that_cannot_be_encoded_is_reported_not_raised(tmp_path):
    """An empty or missing frame must come back as a reason like any other failed save, never raise."""
    store = CaptureStore(tmp_path / "caps", retention_days=30, max_mb=100)
    crop, frame = images()
    result = store.save(time.time(), "cam", crop, np.zeros((0, 0, 3), np.uint8), SIDECAR)
    assert isinstance(result, str)
    assert list((tmp_path / "caps").iterdir()) == []


# ---------------------------------------------------------------- retention


def test_retention_deletes_captures_past_the_age_limit(tmp_path):
    folder = tmp_path / "caps"
    now = time.time()
    old = fake_capture(folder, "a-old", now - 31 * DAY, 1000)
    older = fake_capture(folder, "b-older", now - 400 * DAY, 1000)
    recent = fake_capture(folder, "c-recent", now - 29 * DAY, 1000)
    new = fake_capture(folder, "d-new", now - 60, 1000)
    (folder / "README.txt").write_text("not a capture")
    store = CaptureStore(folder, retention_days=30, max_mb=100)
    assert store.enforce_retention(now) == 2
    assert not any(p.exists() for p in old + older)
    assert all(p.exists() for p in recent + new)
    assert (folder / "README.txt").exists()
    assert store.enforce_retention(now) == 0


def test_retention_keeps_the_folder_under_max_mb_deleting_the_oldest_first(tmp_path):
    folder = tmp_path / "caps"
    now = time.time()
    groups = [
        fake_capture(folder, f"cap{i}", now - 3600 * (10 - i), int(0.3 * MB)) for i in range(6)
    ]  # 1.8 MB
    store = CaptureStore(folder, retention_days=30, max_mb=1)
    removed = store.enforce_retention(now)
    assert removed == 3  # 1.8 -> 1.5 -> 1.2 -> 0.9 MB
    assert [all(p.exists() for p in g) for g in groups] == [False, False, False, True, True, True]
    assert not any(p.exists() for g in groups[:3] for p in g)
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert total <= MB


def test_retention_by_size_never_deletes_the_newest_capture(tmp_path):
    folder = tmp_path / "caps"
    now = time.time()
    older = fake_capture(folder, "older", now - 7200, 200_000)
    newest = fake_capture(folder, "newest", now - 60, int(1.5 * MB))  # alone over max_mb (a 4K frame)
    store = CaptureStore(folder, retention_days=30, max_mb=1)
    store.enforce_retention(now)
    assert not any(p.exists() for p in older)
    assert all(p.exists() for p in newest), "the newest capture was deleted by the size limit"


def test_retention_on_a_missing_folder(tmp_path):
    assert CaptureStore(tmp_path / "none", retention_days=1, max_mb=1).enforce_retention() == 0


# ---------------------------------------------------------------- names, ids and reading


def test_names_round_trip_through_the_store(tmp_path):
    store = CaptureStore(tmp_path / "caps", retention_days=30, max_mb=100)
    crop, frame = images()
    saved = store.save(time.time(), "Gate 2/east", crop, frame, SIDECAR)
    assert isinstance(saved, SavedCapture)
    found = store.of(saved.face)
    assert found is not None and found.id == saved.face.name.removesuffix("-face.jpg")
    assert (found.face, found.frame, found.sidecar) == (saved.face, saved.frame, saved.sidecar)
    for path in (saved.face, saved.frame, saved.sidecar, str(saved.face), saved.face.name):
        assert capture_id(path) == found.id  # an event's stored path, a negative's file name: the same id
    assert parse_name(saved.frame.name) == (found.id, "frame")
    assert store.get(found.id) == found
    assert found.sidecar_data() == SIDECAR
    assert found.read("face") == saved.face.read_bytes() and found.read("frame") == saved.frame.read_bytes()
    assert found.exists() and found.frame_image().shape == frame.shape


@pytest.mark.parametrize(
    "hostile",
    [
        "",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "/etc/passwd",
        "a\0b",
        ".hidden",
        "-x",
        "x" * (MAX_ID + 1),
        "a b",
        "x.y",
    ],
)
def test_hostile_ids_are_refused_before_any_path_is_made(tmp_path, hostile):
    with pytest.raises(BadCaptureId):
        check_id(hostile)
    with pytest.raises(BadCaptureId):
        CaptureFolder(tmp_path).get(hostile)
    with pytest.raises(BadCaptureId):
        CaptureFolder(tmp_path).image_named(hostile + "-face.jpg")
    if "/" not in hostile:  # with a slash it is a path, and only its last part is a file name
        assert capture_id(hostile + "-face.jpg") is None


@pytest.mark.parametrize("name", ["x.jpg", "x-face.png", "x-thumb.jpg", "x", "x.json.bak"])
def test_other_names_are_not_captures(name):
    assert capture_id(name) is None
    with pytest.raises(BadCaptureId):
        parse_name(name)


def test_only_face_and_frame_images_are_served_by_name(tmp_path):
    fake_capture(tmp_path, "20261122-140211-000-gate", time.time(), 1000)
    folder = CaptureFolder(tmp_path)
    assert folder.image_named("20261122-140211-000-gate-face.jpg") == b"\0" * 250
    with pytest.raises(BadCaptureId):
        folder.image_named("20261122-140211-000-gate.json")  # the sidecar is never an image
    with pytest.raises(CaptureGone):
        folder.image_named("20261122-140211-000-other-face.jpg")
    assert (
        folder.image_name(tmp_path / "20261122-140211-000-gate-face.jpg")
        == "20261122-140211-000-gate-face.jpg"
    )
    assert folder.image_name(tmp_path / "20261122-140211-000-gate.json") is None
    assert folder.image_name(tmp_path / "sub" / "20261122-140211-000-gate-face.jpg") is None


def test_a_face_or_sidecar_that_is_a_symlink_is_refused(tmp_path):
    store = CaptureStore(tmp_path / "caps", retention_days=30, max_mb=100)
    crop, frame = images()
    saved = store.save(time.time(), "cam", crop, frame, SIDECAR)
    capture = store.of(saved.face)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for path in (saved.face, saved.frame, saved.sidecar):
        (elsewhere / path.name).write_bytes(path.read_bytes())
        path.unlink()
        path.symlink_to(elsewhere / path.name)
    assert not capture.exists()
    for read in (lambda: capture.read("face"), lambda: capture.read("frame"), capture.sidecar_data):
        with pytest.raises(CaptureError, match="symbolic link"):
            read()
    with pytest.raises(CaptureError, match="symbolic link"):
        store.image_named(saved.face.name)
    with pytest.raises(ValueError, match="sidecar"):
        capture_to_photo(saved.face, tmp_path)


def test_a_missing_or_damaged_sidecar_says_which(tmp_path):
    fake_capture(tmp_path, "20261122-140211-000-gate", time.time(), 1000)
    capture = CaptureFolder(tmp_path).get("20261122-140211-000-gate")
    capture.sidecar.write_text("[1, 2]")
    with pytest.raises(SidecarDamaged, match="not an object"):
        capture.sidecar_data()
    capture.sidecar.write_text('{"time": 17')
    with pytest.raises(SidecarDamaged):
        capture.sidecar_data()
    capture.sidecar.unlink()
    with pytest.raises(CaptureGone):
        capture.sidecar_data()


# ---------------------------------------------------------------- capture_to_photo


def test_capture_to_photo_cuts_the_frame_around_the_box(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # its temporary photos land here, not in /tmp
    folder = tmp_path / "caps"
    store = CaptureStore(folder, retention_days=30, max_mb=100)
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[100:160, 300:360] = 255  # the "face": 60 px at (top 100, left 300)
    sidecar = {**SIDECAR, "box": [100, 360, 160, 300]}
    saved = store.save(time.time(), "cam", frame[100:160, 300:360].copy(), frame, sidecar)
    photo = capture_to_photo(saved.face, scratch)
    assert photo.parent == scratch
    cut = cv2.imread(str(photo))
    assert cut.shape[:2] == (180, 180)  # the box plus one face size on every side
    assert cut[60:120, 60:120].mean() > 240 and cut[:50].mean() < 15
    assert mode(photo) == 0o600
    assert capture_to_photo(saved.sidecar, scratch).read_bytes() == photo.read_bytes()  # any of the three
    assert capture_to_photo(saved.frame, folder).read_bytes() == photo.read_bytes()


def test_capture_to_photo_without_sidecar(tmp_path):
    lone = tmp_path / "20260101-000000-000-cam-face.jpg"
    cv2.imwrite(str(lone), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="sidecar"):
        capture_to_photo(lone, tmp_path)


# ---------------------------------------------------------------- unknown visitors


@pytest.fixture(scope="module")
def encodings() -> dict[str, np.ndarray]:
    engine = FaceEngine(RecognitionConfig())
    out = {}
    for person in ("Tony_Blair", "Colin_Powell"):
        photos = lfw_photos(person)[:2]
        out[person] = np.array([engine.enrolment_encoding(load_photo(p, 40_000_000)) for p in photos])
    return out


def test_visitor_is_recalled_within_the_window(encodings):
    blair, powell = encodings["Tony_Blair"], encodings["Colin_Powell"]
    visitors = UnknownVisitors(window=1800, thresholds=MatchThresholds(tolerance=0.56))
    first = visitors.remember(blair[:1], now=1000.0)
    first.captures["Front Gate"] = "/caps/blair-face.jpg"
    recalled = visitors.recall(blair[1:], now=1000.0 + 1700)  # another photo of the same man
    assert recalled is first
    assert recalled.captures == {"Front Gate": "/caps/blair-face.jpg"}
    assert recalled.last_seen == 2700.0 and len(recalled.encodings) == 2
    assert visitors.recall(powell, now=2700.0) is None  # someone else


def test_a_different_person_is_not_recalled(encodings):
    visitors = UnknownVisitors(window=1800, thresholds=MatchThresholds(tolerance=0.56))
    visitors.remember(encodings["Colin_Powell"], now=0.0)
    assert visitors.recall(encodings["Tony_Blair"][:1], now=10.0) is None
    second = visitors.remember(encodings["Tony_Blair"][:1], now=10.0)
    assert second.id == 2
    assert visitors.recall(encodings["Tony_Blair"][1:], now=20.0) is second


def test_visitor_is_forgotten_after_the_window(encodings):
    blair = encodings["Tony_Blair"]
    visitors = UnknownVisitors(window=600, thresholds=MatchThresholds(tolerance=0.56))
    visitors.remember(blair[:1], now=1000.0)
    assert visitors.recall(blair[1:], now=1500.0) is not None  # seen again: the window starts again
    assert visitors.recall(blair[1:], now=2050.0) is not None  # 1050 s after the first, 550 after the last
    assert visitors.recall(blair[1:], now=2050.0 + 601) is None


def test_visitor_keeps_at_most_a_few_encodings(encodings):
    blair = encodings["Tony_Blair"]
    visitors = UnknownVisitors(window=600, thresholds=MatchThresholds(tolerance=0.56))
    visitor = visitors.remember(np.repeat(blair[:1], 8, axis=0), now=0.0)
    assert len(visitor.encodings) == MAX_ENCODINGS
    for i in range(4):
        visitors.recall(blair, now=float(i))
    assert len(visitor.encodings) == MAX_ENCODINGS
    assert np.array_equal(visitor.encodings[-1], blair[-1])


def test_two_faces_decided_in_the_same_millisecond_get_two_captures(tmp_path):
    store = CaptureStore(tmp_path / "caps", retention_days=30, max_mb=100)
    frame = np.full((120, 160, 3), 40, np.uint8)
    when = time.time()
    first = store.save(when, "cam", frame[:50, :50].copy(), frame, {**SIDECAR, "track": 1})
    second = store.save(when, "cam", frame[:60, :60].copy(), frame, {**SIDECAR, "track": 2})
    assert isinstance(first, SavedCapture) and isinstance(second, SavedCapture)
    assert first.face != second.face and first.sidecar != second.sidecar
    assert (
        json.loads(first.sidecar.read_text())["track"] == 1
        and json.loads(second.sidecar.read_text())["track"] == 2
    )
