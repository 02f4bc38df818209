"""Finding faces: the public face of the detection stage.

What the rest of the program uses: `open_detector` (the detector a name
chooses: OpenCV's YuNet, the default, or dlib's HOG or CNN), the interface
every detector has (`FaceDetector`, reporting `Detection`s), finding faces in
still photos (`detect_in_photo`), and `Box`, where a face is, with the geometry
every later stage shares.  The detectors themselves live in edgeguard.detectors.
"""

from __future__ import annotations

from .detectors.box import Box, same_face
from .detectors.detection import PHOTO_MARGIN, Detection, DetectorError, FaceDetector, detect_in_photo
from .detectors.dlib_detector import DlibDetector
from .detectors.yunet import DEFAULT_SCORE, YuNetDetector

__all__ = [
    "PHOTO_MARGIN",
    "Box",
    "Detection",
    "DetectorError",
    "FaceDetector",
    "detect_in_photo",
    "open_detector",
    "same_face",
]

DETECTORS = ("yunet", "hog", "cnn")


def open_detector(name: str, score: float = DEFAULT_SCORE) -> FaceDetector:
    """The detector `name` names ("yunet", "hog" or "cnn"); YuNet keeps boxes scoring `score` or more.

    Models load on first use (or `load()`), so opening one never fails for a missing model file.
    """
    if name == "yunet":
        return YuNetDetector(score)
    if name in ("hog", "cnn"):
        return DlibDetector(name)
    raise ValueError(f"unknown face detector {name!r}; one of {', '.join(DETECTORS)}")
