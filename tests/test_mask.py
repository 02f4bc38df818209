"""Tests for edgeguard.mask: the packaged model on real photos it was not trained on, and
finding the masked faces dlib's HOG detector misses without adding false ones.

Photos come from the "test" split of mask/ (train/prepare_mask.py's file-name
hash), which training never saw; the first ones by name are taken, not picked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TESTDATA, held_apart

from edgeguard.detect import Box, detect_in_photo, same_face
from edgeguard.detectors.dlib_detector import DlibDetector
from edgeguard.mask import (
    CANDIDATE_FLOOR,
    MODEL_PATH,
    MaskClassifier,
    MaskResult,
    crop_face,
    find_masked_faces,
    split_faces,
)

UPSAMPLE = 1
MAX_SIDE = 1024


@pytest.fixture(scope="module")
def classifier() -> MaskClassifier:
    return MaskClassifier()


@pytest.fixture(scope="module")
def detector() -> DlibDetector:
    """HOG: the masked-face search below is HOG's (the default detector, YuNet, finds masked faces itself)."""
    return DlibDetector("hog")


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def find(detector: DlibDetector, classifier: MaskClassifier, rgb: np.ndarray) -> tuple[list[Box], list[Box]]:
    """HOG's faces in a still photo, and the masked faces find_masked_faces adds from the same pass."""
    hog, masked = split_faces(
        rgb,
        [(d.box, d.score) for d in detect_in_photo(detector, rgb, UPSAMPLE, MAX_SIDE, CANDIDATE_FLOOR)],
        classifier,
    )
    return hog, [box for box, _ in masked]


def face_of(detector: DlibDetector, classifier: MaskClassifier, rgb: np.ndarray) -> Box:
    """The largest face found, or the whole picture for a tight face crop where none is."""
    hog, masked = find(detector, classifier, rgb)
    height, width = rgb.shape[:2]
    return max(hog + masked, key=lambda b: b.size) if hog or masked else Box(0, width, height, 0)


def test_packaged_model_is_small() -> None:
    assert MODEL_PATH.is_file()
    assert MODEL_PATH.stat().st_size <= 5 * 1024 * 1024


@pytest.mark.parametrize("dataset", ["real", "synthetic"])
@pytest.mark.parametrize("cls,masked", [("with_mask", True), ("without_mask", False)])
def test_held_apart_photos_are_classified(detector, classifier, dataset: str, cls: str, masked: bool) -> None:
    photos = held_apart(dataset, cls, 10)
    right = 0
    for photo in photos:
        rgb = read_rgb(photo)
        right += classifier.classify(rgb, [face_of(detector, classifier, rgb)])[0].mask == masked
    assert right >= 9, f"{right}/10 right"


def test_no_boxes_no_results(classifier) -> None:
    assert classifier.classify(np.zeros((50, 50, 3), np.uint8), []) == []


def test_one_result_per_box_in_order(detector, classifier) -> None:
    masked = read_rgb(held_apart("real", "with_mask", 1)[0])
    bare = read_rgb(held_apart("real", "without_mask", 1)[0])
    height = max(masked.shape[0], bare.shape[0])
    pair = np.hstack(
        [np.pad(im, ((0, height - im.shape[0]), (0, 0), (0, 0)), mode="edge") for im in (masked, bare)]
    )
    boxes = [
        face_of(detector, classifier, masked),
        face_of(detector, classifier, bare).shifted(0, masked.shape[1]),
    ]
    single = [classifier.classify(pair, [b])[0] for b in boxes]
    results = classifier.classify(pair, boxes + boxes[::-1])
    assert all(isinstance(r, MaskResult) and 0.0 <= r.score <= 1.0 for r in results)
    assert [r.mask for r in results] == [True, False, False, True]
    assert [r.score for r in results[:2]] == pytest.approx([r.score for r in single], abs=1e-3)


def test_bgr_input_gives_the_same_answer(classifier) -> None:
    rgb = read_rgb(held_apart("real", "with_mask", 1)[0])
    box = Box(0, rgb.shape[1], rgb.shape[0], 0)
    assert classifier.classify(rgb[:, :, ::-1].copy(), [box], rgb=False) == classifier.classify(rgb, [box])


def test_runs_without_pytorch(classifier) -> None:
    classifier.classify(np.full((100, 100, 3), 128, np.uint8), [Box(10, 90, 90, 10)])
    assert "torch" not in sys.modules
    assert "tensorflow" not in sys.modules


def test_crop_reaching_past_the_edge_repeats_it() -> None:
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 20:] = 255
    crop = crop_face(image, Box(-10, 50, 30, 10), size=32)
    assert crop.shape == (32, 32, 3)
    assert crop[:, -1].min() == 255 and crop[:, 0].max() == 0


@pytest.fixture(scope="module")
def missed_by_hog(detector) -> list[Path]:
    """Held-apart masked portraits where HOG at upsample 1 finds no face (about half of them)."""
    missed = [
        p
        for p in held_apart("synthetic", "with_mask", 24)
        if not detect_in_photo(detector, read_rgb(p), UPSAMPLE, MAX_SIDE)
    ]
    assert len(missed) >= 6
    return missed[:8]


def test_finds_masked_faces_hog_misses(detector, classifier, missed_by_hog: list[Path]) -> None:
    found = 0
    for photo in missed_by_hog:
        rgb = read_rgb(photo)
        hog, masked = find(detector, classifier, rgb)
        assert hog == []
        # the portrait's subject: one big face
        found += len(masked) == 1 and masked[0].size >= 0.15 * min(rgb.shape[:2])
    assert found >= len(missed_by_hog) - 1


def test_no_face_among_dogs(detector, classifier) -> None:
    assert find(detector, classifier, read_rgb(TESTDATA / "crowd" / "dogs.jpg")) == ([], [])


@pytest.mark.parametrize(
    "photo",
    [
        TESTDATA / "crowd" / "2007_007763.jpg",
        TESTDATA / "crowd" / "2008_002079.jpg",
        *held_apart("synthetic", "with_mask", 3),
    ],
)
def test_hog_faces_are_not_found_again(detector, classifier, photo: Path) -> None:
    hog, masked = find(detector, classifier, read_rgb(photo))
    assert not any(same_face(a, b) for a in masked for b in hog)


def test_a_verified_masked_face_comes_with_the_mask_score_that_verified_it(
    detector, classifier, missed_by_hog: list[Path]
) -> None:
    rgb = read_rgb(missed_by_hog[0])
    _, masked = split_faces(
        rgb,
        [(d.box, d.score) for d in detect_in_photo(detector, rgb, UPSAMPLE, MAX_SIDE, CANDIDATE_FLOOR)],
        classifier,
    )
    assert masked
    for box, score in masked:
        assert score == classifier.classify(rgb, [box])[0].score >= classifier.threshold


def test_candidates_framing_a_hog_face_are_dropped(classifier) -> None:
    rgb = np.full((120, 120, 3), 90, np.uint8)
    hog = [Box(10, 60, 60, 10)]
    duplicate = (Box(12, 62, 62, 12), -0.5)
    assert find_masked_faces(rgb, hog, classifier, [duplicate]) == []


def test_same_face() -> None:
    a = Box(0, 100, 100, 0)
    assert same_face(a, Box(10, 110, 110, 10))
    assert same_face(a, Box(20, 60, 60, 20))  # inside
    assert not same_face(a, Box(0, 200, 100, 100))  # side by side
    assert same_face(a, Box(40, 140, 140, 40))  # off-centre: each centre inside the other
    assert not same_face(a, Box(80, 180, 180, 80))  # corners touching


def test_without_a_usable_model_faces_are_still_recognised(tmp_path, monkeypatch, caplog) -> None:
    from edgeguard.config import MaskConfig, RecognitionConfig
    from edgeguard.faces.engine import FaceEngine
    from edgeguard.masks import classifier as mask_model

    broken = tmp_path / "mask_classifier.onnx"
    broken.write_bytes(b"\0" * 100)
    monkeypatch.setattr(mask_model, "MODEL_PATH", broken)
    engine = FaceEngine(RecognitionConfig(), MaskConfig())
    assert engine.masks is None and not engine.find_masked and not engine.find_masked_live
    assert any(
        r.levelname == "ERROR" and str(broken) in r.getMessage() and "without mask checks" in r.getMessage()
        for r in caplog.records
    )
    assert len(engine.find_in_photo(read_rgb(TESTDATA / "people" / "obama.jpg"), masked=True)) == 1
