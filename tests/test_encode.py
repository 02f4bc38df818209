"""Tests for edgeguard.faces.encode and edgeguard.detect: we call dlib directly, and claim to follow
face_recognition's recipe; face_recognition (installed for this) is the reference, for both encoders.
For edgeguard.faces.opencv_encoder: dlib's network run by OpenCV gives dlib's encodings on real photos,
in one pass per frame, and refuses a damaged model.  And for edgeguard.faces.encoder_pool: the same
encodings from worker processes, a dead worker survived."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLIP, LFW, PEOPLE, TESTDATA

from edgeguard.config import RecognitionConfig
from edgeguard.detect import PHOTO_MARGIN, Box, detect_in_photo
from edgeguard.detectors.dlib_detector import DlibDetector
from edgeguard.faces import encode, encoder_pool, opencv_encoder
from edgeguard.faces.encode import ENCODING_SIZE, FaceEncoder
from edgeguard.faces.encoder_pool import EncoderPool, EncoderPoolError
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.opencv_encoder import EncoderModelError, OpenCvResnet
from edgeguard.faces.photos import load_photo

MAX_PIXELS = RecognitionConfig().max_image_pixels


@pytest.fixture(scope="module")
def fr():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources deprecation in face_recognition_models
        import face_recognition
    return face_recognition


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(RecognitionConfig())


# --- encodings: the same numbers as face_recognition ----------------------------------------


@pytest.mark.parametrize(
    "photo",
    [
        PEOPLE / "obama.jpg",
        PEOPLE / "two_people.jpg",  # two faces in one call
        PEOPLE / "biden.jpg",  # 2204 px tall: detection on a shrunk copy, encoding at full size
        LFW / "Tony_Blair" / "Tony_Blair_0001.jpg",
    ],
    ids=lambda p: p.name,
)
@pytest.mark.parametrize("encoder", ["opencv", "dlib"])
def test_encodings_match_face_recognition(engine, fr, photo, encoder):
    rgb = load_photo(photo, MAX_PIXELS)
    boxes = [d.box for d in engine.find_in_photo(rgb)]  # as analyze_photo / enrolment_encoding do
    assert boxes, f"{photo.name}: no face found"
    ours = FaceEncoder(encoder).encode(rgb, boxes)
    assert ours.shape == (len(boxes), ENCODING_SIZE)
    assert ours.dtype == np.float32
    reference = fr.face_encodings(
        rgb, known_face_locations=[tuple(b.as_list()) for b in boxes], model="small"
    )
    assert len(reference) == len(boxes)
    assert np.allclose(ours, np.array(reference), atol=1e-5), np.abs(ours - np.array(reference)).max()
    # Not trivially equal: different faces give clearly different encodings.
    if len(boxes) > 1:
        assert np.linalg.norm(ours[0] - ours[1]) > 0.3


@pytest.mark.parametrize("encoder", ["opencv", "dlib"])
def test_encoding_follows_the_box(engine, fr, encoder):
    """A box moved off the face gives another encoding, in both implementations alike."""
    rgb = load_photo(PEOPLE / "obama.jpg", MAX_PIXELS)
    box = engine.find_in_photo(rgb)[0].box
    moved = box.shifted(box.height // 3, box.width // 3)
    # one box per call, as face_recognition does: dlib's batched descriptor can differ in the third decimal
    ours = np.concatenate([FaceEncoder(encoder).encode(rgb, [b]) for b in (box, moved)])
    reference = np.array(
        fr.face_encodings(rgb, [tuple(box.as_list()), tuple(moved.as_list())], model="small")
    )
    assert np.allclose(ours, reference, atol=1e-5)
    assert not np.allclose(ours[0], ours[1], atol=1e-3)


@pytest.mark.parametrize("encoder", ["opencv", "dlib"])
def test_encode_without_boxes_is_empty(encoder):
    out = FaceEncoder(encoder).encode(np.zeros((32, 32, 3), dtype=np.uint8), [])
    assert out.shape == (0, ENCODING_SIZE)
    assert out.dtype == np.float32


def test_the_default_encoder_is_opencv_and_a_pool_goes_with_dlib_only(pool):
    assert FaceEngine(RecognitionConfig()).encoder.name == "opencv"
    assert FaceEngine(RecognitionConfig(encoder="dlib")).encoder.name == "dlib"
    with pytest.raises(ValueError, match="needs none"):
        FaceEncoder("opencv", pool)
    with pytest.raises(ValueError, match="encoder must be one of"):
        FaceEncoder("tensorflow")


# --- the encoder pool: the same encodings from worker processes ------------------------------

# The JPEGs of people/ (two_people.jpg: two faces in one call), and a collage of 24 faces: more
# than dlib's batch of 16, and one face whose chip cut alone differs from the one cut beside the others.
POOL_PHOTOS = sorted(PEOPLE.glob("*.jpg")) + [TESTDATA / "crowd" / "bald_guys.jpg"]


@pytest.fixture(scope="module")
def pool():
    with EncoderPool(2) as shared:
        yield shared


@pytest.fixture
def own_pool():
    """A pool for a test that breaks or closes it."""
    with EncoderPool(2) as own:
        yield own


@pytest.fixture(scope="module")
def faces(engine) -> dict[str, tuple[np.ndarray, list[Box], np.ndarray]]:
    """Each photo's image, face boxes and in-process encodings (the reference), by file name."""
    out = {}
    for photo in POOL_PHOTOS:
        rgb = load_photo(photo, MAX_PIXELS)
        boxes = [d.box for d in engine.find_in_photo(rgb)]
        assert boxes, f"{photo.name}: no face found"
        out[photo.name] = rgb, boxes, FaceEncoder("dlib").encode(rgb, boxes)
    assert len(out["bald_guys.jpg"][1]) > 16
    return out


@pytest.mark.parametrize("name", [p.name for p in POOL_PHOTOS])
def test_pool_encodings_equal_in_process_ones(pool, faces, name):
    rgb, boxes, expected = faces[name]
    got = FaceEncoder("dlib", pool).encode(rgb, boxes)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.array_equal(got, expected), np.abs(got - expected).max()


def test_an_encoder_with_a_pool_never_loads_the_model_in_process(pool, faces, monkeypatch):
    def refuse():
        raise AssertionError("the ResNet was loaded in the main process")

    monkeypatch.setattr(encode, "load_resnet", refuse)
    rgb, boxes, expected = faces["obama.jpg"]
    assert np.array_equal(FaceEncoder("dlib", pool).encode(rgb, boxes), expected)
    engine = FaceEngine(RecognitionConfig(encoder="dlib"), pool=pool)
    assert engine.encoder.encode(rgb, boxes).shape == expected.shape


def test_threads_sharing_one_pool_get_their_own_encodings(pool, faces):
    encoders = [
        FaceEncoder("dlib", pool),
        FaceEncoder("dlib", pool),
    ]  # a camera's own engine, or one shared by threads
    names = ["obama.jpg", "biden.jpg", "two_people.jpg", "obama_small.jpg"] * 3

    def encode_one(job: tuple[int, str]) -> tuple[str, np.ndarray]:
        number, name = job
        rgb, boxes, _ = faces[name]
        return name, encoders[number % 2].encode(rgb, boxes)

    with ThreadPoolExecutor(4) as threads:
        results = list(threads.map(encode_one, enumerate(names)))
    assert [name for name, _ in results] == names
    for name, got in results:
        assert np.array_equal(got, faces[name][2]), name


def test_pool_refuses_what_is_not_face_chips(pool):
    with pytest.raises(ValueError, match=r"\(n, 150, 150, 3\) uint8"):
        pool.descriptors(np.zeros((1, 150, 150, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="150"):
        pool.descriptors(np.zeros((1, 160, 160, 3), dtype=np.uint8))


def test_pool_needs_a_process():
    with pytest.raises(ValueError, match="at least 1"):
        EncoderPool(0)


def _kill(pid: int) -> None:
    """SIGKILL a worker, as the OOM killer does, and wait until it is dead (a zombie or reaped)."""
    os.kill(pid, signal.SIGKILL)
    for _ in range(1000):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError):  # reaped already (before or while reading)
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"worker {pid} still alive after SIGKILL")


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_killed_worker_is_replaced_and_the_encoding_retried(own_pool, faces, caplog):
    rgb, boxes, expected = faces["obama.jpg"]
    encoder = FaceEncoder("dlib", own_pool)
    before = own_pool.pids
    _kill(before[0])
    assert np.array_equal(encoder.encode(rgb, boxes), expected)
    assert len(own_pool.pids) == 2 and not set(own_pool.pids) & set(before)  # a new pool, both workers new
    assert np.array_equal(encoder.encode(rgb, boxes), expected)
    [error] = _errors(caplog)
    assert "died" in error and "new pool" in error


def test_a_worker_killed_under_several_threads_is_replaced_once(own_pool, faces, caplog):
    encoder = FaceEncoder("dlib", own_pool)
    names = ["obama.jpg", "biden.jpg", "two_people.jpg"] * 3

    def encode_one(name: str) -> np.ndarray:
        rgb, boxes, _ = faces[name]
        return encoder.encode(rgb, boxes)

    with ThreadPoolExecutor(3) as threads:
        pending = [threads.submit(encode_one, name) for name in names]
        _kill(own_pool.pids[1])
        results = [p.result() for p in pending]
    for name, got in zip(names, results):
        assert np.array_equal(got, faces[name][2]), name
    assert len(_errors(caplog)) == 1  # however many threads saw the pool break


def test_when_no_new_pool_starts_encodings_are_made_in_process(own_pool, faces, caplog, monkeypatch):
    def fail(processes: int):
        raise EncoderPoolError("the encoder worker processes did not start (no memory)")

    monkeypatch.setattr(encoder_pool, "_start", fail)
    rgb, boxes, expected = faces["two_people.jpg"]
    encoder = FaceEncoder("dlib", own_pool)
    _kill(own_pool.pids[0])
    assert np.array_equal(encoder.encode(rgb, boxes), expected)
    assert own_pool.pids == ()
    died, given_up = _errors(caplog)
    assert "died" in died and "in this process from now on" in given_up
    assert np.array_equal(encoder.encode(rgb, boxes), expected)
    assert len(_errors(caplog)) == 2  # for good: not tried again, not logged again


def test_close_ends_the_workers(own_pool, faces):
    pids = own_pool.pids
    assert len(pids) == 2 and all(Path(f"/proc/{pid}").exists() for pid in pids)
    own_pool.close()
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert own_pool.pids == ()
    rgb, boxes, _ = faces["obama.jpg"]
    with pytest.raises(RuntimeError, match="closed"):
        FaceEncoder("dlib", own_pool).encode(rgb, boxes)
    own_pool.close()  # twice is harmless (the fixture closes it again)


# --- detection: the same boxes as face_recognition ------------------------------------------


def test_hog_detector_matches_face_locations(fr):
    rgb = load_photo(PEOPLE / "two_people.jpg", MAX_PIXELS)
    ours = [d.box for d in DlibDetector("hog").find(rgb, 1)]
    reference = fr.face_locations(rgb, 1)
    assert len(ours) == 2
    assert all(isinstance(v, int) for b in ours for v in b.as_list())
    assert sorted(tuple(b.as_list()) for b in ours) == sorted(reference)


def test_dlib_detector_models():
    cnn = DlibDetector("cnn")  # accepted; not run (far too slow on a CPU)
    assert cnn.name == "cnn"
    assert DlibDetector().name == "hog"
    with pytest.raises(ValueError, match="bogus"):
        DlibDetector("bogus")
    with pytest.raises(ValueError):
        DlibDetector("HOG")


# --- Box helpers --------------------------------------------------------------------------------


def test_box_size_and_geometry():
    box = Box(top=10, right=70, bottom=90, left=20)
    assert (box.width, box.height) == (50, 80)
    assert box.size == 50  # the shorter side
    assert Box(0, 100, 30, 0).size == 30
    assert box.center == (45.0, 50.0)
    assert box.as_list() == [10, 70, 90, 20]
    assert all(type(v) is int for v in box.as_list())


def test_box_scaled():
    box = Box(10, 70, 90, 20)
    assert box.scaled(2) == Box(20, 140, 180, 40)
    assert box.scaled(1 / 3) == Box(3, 23, 30, 7)  # rounded, not truncated: 70/3 = 23.3, 20/3 = 6.7
    assert all(type(v) is int for v in box.scaled(0.37).as_list())
    assert box.scaled(1.0) == box


def test_box_shifted():
    box = Box(10, 70, 90, 20)
    assert box.shifted(5, -3) == Box(15, 67, 95, 17)
    assert box.shifted(-20, -30) == Box(-10, 40, 70, -10)
    assert box.shifted(5, -3).size == box.size


def test_box_clipped():
    assert Box(-5, 120, 210, -7).clipped(height=200, width=100) == Box(0, 100, 200, 0)
    inside = Box(10, 70, 90, 20)
    assert inside.clipped(200, 100) == inside
    # height and width are not mixed up
    assert Box(0, 150, 150, 0).clipped(height=100, width=140) == Box(0, 140, 100, 0)


# --- detect_in_photo: shrink for detection, boxes back in the photo's own coordinates ---------


class SpyDetector(DlibDetector):
    """The HOG detector, recording the size of each image it is given."""

    def __init__(self) -> None:
        super().__init__("hog")
        self.shapes: list[tuple[int, ...]] = []

    def find(self, image, upsample=0, floor=0.0):
        self.shapes.append(image.shape)
        return super().find(image, upsample, floor)


def _iou(a: Box, b: Box) -> float:
    top, bottom = max(a.top, b.top), min(a.bottom, b.bottom)
    left, right = max(a.left, b.left), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)
    return inter / (a.width * a.height + b.width * b.height - inter)


def test_detect_in_photo_returns_original_coordinates_of_a_shrunk_photo():
    original = load_photo(PEOPLE / "alex-lacamoire.png", MAX_PIXELS)  # 424 x 394
    height, width = original.shape[:2]
    factor = 2000 / max(height, width)
    big = cv2.resize(original, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_CUBIC)
    assert max(big.shape[:2]) == 2000

    detector = SpyDetector()
    max_side = RecognitionConfig().max_detect_side  # 1024
    small_boxes = [d.box for d in detect_in_photo(detector, original, 1, max_side)]
    big_boxes = [d.box for d in detect_in_photo(detector, big, 1, max_side)]

    # The small photo is not shrunk, the big one is (plus the margin on each side).
    assert detector.shapes[0][:2] == tuple(
        s + 2 * int(PHOTO_MARGIN * max(height, width)) for s in (height, width)
    )
    shrunk_long_side = max(detector.shapes[1][:2]) / (1 + 2 * PHOTO_MARGIN)
    assert abs(shrunk_long_side - max_side) <= 2

    assert len(small_boxes) == 1 and len(big_boxes) == 1
    expected = small_boxes[0].scaled(factor)
    found = big_boxes[0]
    # On the face: where the original box lies, scaled up by 2000 / original side.
    assert _iou(found, expected) > 0.75, (found, expected)
    assert abs(found.size - expected.size) < 0.15 * expected.size
    cx, cy = found.center
    ex, ey = expected.center
    assert abs(cx - ex) < 0.1 * expected.size and abs(cy - ey) < 0.1 * expected.size
    # And inside the big photo, far from its top-left corner (boxes were not left in small coordinates).
    assert 0 <= found.left < found.right <= big.shape[1] and 0 <= found.top < found.bottom <= big.shape[0]
    assert found.size > 2 * small_boxes[0].size


def test_detect_in_photo_matches_plain_detection_when_not_shrunk():
    """With no shrinking, the margin only shifts coordinates: the boxes equal plain detection's."""
    rgb = load_photo(PEOPLE / "obama.jpg", MAX_PIXELS)  # 910 x 1137, below the 4096 limit given
    plain = [d.box for d in DlibDetector("hog").find(rgb, 0)]
    boxes = [d.box for d in detect_in_photo(DlibDetector("hog"), rgb, 0, 4096) if d.score >= 0]
    assert len(plain) == 1 and len(boxes) == 1
    assert _iou(plain[0], boxes[0]) > 0.8


# --- the opencv encoder: dlib's encodings from OpenCV's DNN ---------------------------------------

# people/'s JPEGs and the 24-face collage (the `faces` fixture), and one photo of each lfw10 person.
LFW_ONE_EACH = [sorted(folder.glob("*.jpg"))[0] for folder in sorted(LFW.iterdir()) if folder.is_dir()]


@pytest.fixture(scope="module")
def opencv() -> FaceEncoder:
    return FaceEncoder("opencv")


@pytest.mark.parametrize("name", [p.name for p in POOL_PHOTOS])
def test_opencv_encodings_are_dlibs_within_1e_3(opencv, faces, name):
    """Every face of a frame in one forward pass (the collage: 24 at once), each within 1e-3 of dlib's."""
    rgb, boxes, expected = faces[name]
    got = opencv.encode(rgb, boxes)
    assert got.dtype == np.float32 and got.shape == expected.shape
    distances = np.linalg.norm(got - expected, axis=1)
    assert distances.max() < 1e-3, distances


@pytest.mark.parametrize("photo", LFW_ONE_EACH, ids=lambda p: p.parent.name)
def test_opencv_encodings_of_lfw_people_are_dlibs_within_1e_3(engine, opencv, photo):
    rgb = load_photo(photo, MAX_PIXELS)
    boxes = [d.box for d in engine.find_in_photo(rgb)]
    assert boxes, f"{photo.name}: no face found"
    distances = np.linalg.norm(opencv.encode(rgb, boxes) - FaceEncoder("dlib").encode(rgb, boxes), axis=1)
    assert distances.max() < 1e-3, distances


def test_one_pass_for_a_frames_faces_gives_each_face_its_own_encoding(faces):
    """The network's batch of n chips gives what n passes of one chip give."""
    rgb, boxes, _ = faces["bald_guys.jpg"]
    chips = np.stack([cv2.resize(rgb[b.top : b.bottom, b.left : b.right], (150, 150)) for b in boxes[:6]])
    network = OpenCvResnet()
    together = network.descriptors(chips)
    alone = np.concatenate([network.descriptors(chips[i : i + 1]) for i in range(len(chips))])
    assert together.shape == (6, ENCODING_SIZE)
    assert np.linalg.norm(together - alone, axis=1).max() < 1e-5
    assert min(np.linalg.norm(together[0] - together[i]) for i in range(1, 6)) > 0.1


def test_opencv_jitters_follow_dlibs_recipe(opencv, faces):
    """The mean of jittered copies: near the plain encoding, not equal to it, as dlib's own."""
    rgb, boxes, expected = faces["obama.jpg"]
    jittered = opencv.encode(rgb, boxes, jitters=4)
    assert jittered.shape == expected.shape and jittered.dtype == np.float32
    assert 1e-4 < np.linalg.norm(jittered - expected, axis=1).max() < 0.2


def test_threads_share_an_opencv_encoder(opencv, faces):
    names = ["obama.jpg", "biden.jpg", "two_people.jpg", "obama_small.jpg"] * 2

    def encode_one(name: str) -> tuple[str, np.ndarray]:
        rgb, boxes, _ = faces[name]
        return name, opencv.encode(rgb, boxes)

    with ThreadPoolExecutor(2) as executor:
        for name, got in executor.map(encode_one, names):
            assert np.linalg.norm(got - faces[name][2], axis=1).max() < 1e-3


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_a_damaged_encoder_model_is_refused_at_load(tmp_path, monkeypatch, damage):
    model = tmp_path / "encoder.onnx"
    if damage == "truncated":
        model.write_bytes(opencv_encoder.MODEL_PATH.read_bytes()[:-10])
    with pytest.raises(EncoderModelError, match="reinstall EdgeGuard") as caught:
        OpenCvResnet(model).load()
    assert str(model) in str(caught.value)
    assert ("checksum" in str(caught.value)) is (damage == "truncated")
    monkeypatch.setattr(OpenCvResnet.__init__, "__defaults__", (model,))
    with pytest.raises(EncoderModelError):
        FaceEngine(RecognitionConfig()).warm_up()


def test_the_daemon_refuses_to_start_with_a_damaged_encoder_model_and_says_why(tmp_path):
    """The installed package's encoder model is replaced by a damaged copy for one daemon run (a copy of the
    package is run, so the real one is untouched)."""
    import edgeguard

    package = tmp_path / "pkg" / "edgeguard"
    shutil.copytree(Path(edgeguard.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    model = package / "models" / opencv_encoder.MODEL_PATH.name
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    result = subprocess.run(
        [sys.executable, "-m", "edgeguard", "run", "--source", str(CLIP)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(package.parent), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "checksum" in result.stderr and str(model) in result.stderr
    assert "Traceback" not in result.stderr
