"""YuNet, OpenCV's small CNN face detector (OpenCV Zoo, MIT licence): finds masked, turned and small faces.

The model (232 KB, `edgeguard/models/face_detection_yunet_2023mar.onnx`, its
licence beside it) runs in OpenCV's own `cv2.FaceDetectorYN`; its SHA-256 is
checked when it is loaded.  Each detection has a box, five landmarks (eyes,
nose tip, mouth corners) and a score.

Score threshold.  Every box is checked again before it counts: below OpenCV's
own threshold of 0.9, by the mask model's "not a face" class and HOG
(edgeguard.faces.engine.FaceEngine.checked); then by the size and sharpness
limits, the pose gate below and a vote over several frames.  A face the detector misses is
lost for good, while a false box costs one more check, so the detector is run
permissively: DEFAULT_SCORE = 0.6, the threshold of the issue's held-out
measurement (1,658 photos outside the test data: 86% of real masked faces and
all bare ones found, against 34% and 44% for HOG); OpenCV's demo uses 0.9,
which keeps fewer false boxes at the price of masked and turned faces.

Box shape.  dlib's 5-point landmark model (and so every encoding, including
the watchlist's) was trained on HOG's boxes, which are square and sit lower
and tighter on the face than YuNet's.  A YuNet box (x, y, w, h) is mapped to
HOG's shape by a fit on 276 faces both detectors found (train/fit_yunet_box.py,
medians): side = BOX_SIDE * sqrt(w h), centre moved down by BOX_DROP * sqrt(w h).
On lfw10 and people/ the encodings from mapped boxes lie a median 0.039 from
those of HOG's boxes (0.049 unmapped), far inside the 0.56 tolerance.

Pose gate.  YuNet also finds faces in profile, whose encodings dlib's model
cannot judge (it was trained on mostly frontal faces).  A face is `frontal`
when its nose tip lies within MAX_NOSE_OFFSET eye distances of the point
between the eyes, measured along the line through the eyes.  For a head turned
by yaw a, that offset is about k tan(a), with k (nose-tip depth in front of the
eyes over the eye distance) about 0.6 for adult faces; 0.6 is a turn of about
45 degrees, the range of dlib's frontal HOG detector (its filters cover the
front and faces turned part-way to either side), whose kind of faces the
recognition model was trained and tested on.  Landmarks of a turned face are
guesses, but in the direction that matters: the farther the turn, the larger
the offset (on the test clip, a profile close-up measures 1 to 3).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import cv2
import numpy as np

from ..common.model_files import model_problem
from .box import Box, same_face
from .detection import Detection, DetectorError

MODEL_PATH = Path(__file__).resolve().parents[1] / "models" / "face_detection_yunet_2023mar.onnx"
MODEL_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
DEFAULT_SCORE = 0.6
NMS_IOU = 0.3  # the Zoo's default
TOP_K = 500
BOX_SIDE = 0.945
BOX_DROP = 0.057
MAX_NOSE_OFFSET = 0.6


class YuNetDetector:
    """The packaged YuNet model, loaded on first use and safe to share between threads."""

    name = "yunet"
    colour = True
    # 94% of lfw10's faces shrunk to 20 px were found, all of them at 24 px (8 px: 1%).
    min_face = 20

    def __init__(self, score: float = DEFAULT_SCORE, model_path: Path = MODEL_PATH) -> None:
        self.score = score
        self.model_path = model_path
        self._net: cv2.FaceDetectorYN | None = None
        self._lock = threading.Lock()

    def find(self, image: np.ndarray, upsample: int = 0, floor: float = 0.0) -> list[Detection]:
        """Faces in a BGR (or grey) image, one box per face; `upsample` and `floor` are HOG's and ignored."""
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        height, width = image.shape[:2]
        with self._lock:
            net = self._load()
            net.setInputSize((width, height))
            _, rows = net.detect(np.ascontiguousarray(image))
        found = [to_detection(row) for row in (rows if rows is not None else [])]
        return distinct(found)

    def load(self) -> None:
        with self._lock:
            self._load()

    def _load(self) -> cv2.FaceDetectorYN:
        if self._net is None:
            check_model(self.model_path)
            self._net = cv2.FaceDetectorYN.create(
                str(self.model_path), "", (320, 320), self.score, NMS_IOU, TOP_K
            )
        return self._net


def check_model(path: Path) -> None:
    """DetectorError unless `path` is the packaged YuNet model, byte for byte."""
    problem = model_problem(path, MODEL_SHA256, "face detector")
    if problem:
        raise DetectorError(problem)


def to_detection(row: np.ndarray) -> Detection:
    """One row of YuNet's output (box x, y, w, h; five landmarks x, y; score)
    as a Detection in HOG's box shape."""
    x, y, w, h = (float(v) for v in row[:4])
    landmarks = np.asarray(row[4:14], dtype=np.float64).reshape(5, 2)
    scale = math.sqrt(max(w, 1.0) * max(h, 1.0))
    side = BOX_SIDE * scale
    cx, cy = x + w / 2, y + h / 2 + BOX_DROP * scale
    box = Box(
        int(round(cy - side / 2)),
        int(round(cx + side / 2)),
        int(round(cy + side / 2)),
        int(round(cx - side / 2)),
    )
    return Detection(box, float(row[14]), nose_offset(landmarks) <= MAX_NOSE_OFFSET)


def nose_offset(landmarks: np.ndarray) -> float:
    """How far the nose tip lies from the point between the eyes, along the eye line, in eye distances."""
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eyes = left_eye - right_eye
    distance = float(np.hypot(*eyes))
    if distance < 1.0:
        return math.inf
    along = float(np.dot(nose - (right_eye + left_eye) / 2, eyes / distance))
    return abs(along) / distance


def distinct(found: list[Detection]) -> list[Detection]:
    """One detection per face: a box that frames the same face as a better-scoring one is dropped
    (YuNet sometimes boxes a masked face twice, whole and in part)."""
    kept: list[Detection] = []
    for detection in sorted(found, key=lambda d: -d.score):
        if not any(same_face(detection.box, other.box) for other in kept):
            kept.append(detection)
    return kept
