"""Fit YuNet's boxes to the shape of dlib HOG's (edgeguard.detectors.yunet: BOX_SIDE, BOX_DROP).

dlib's 5-point landmark model, and so every encoding, was trained on HOG's
boxes.  On photos where both detectors find the same face (HOG's box centre
inside YuNet's box), this prints the medians of HOG's side and centre relative
to the YuNet box's scale sqrt(w h), with the spread left after the fit, and how
far encodings from the mapped boxes lie from those of HOG's boxes.

Photos: lfw10, people/, people/knn/train/ and the first 150 bare synthetic mask
portraits, each shrunk to at most 640 px and given detect_in_photo's margin.

Run: .venv/bin/python train/fit_yunet_box.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgeguard.detect import PHOTO_MARGIN, Box  # noqa: E402
from edgeguard.detectors.dlib_detector import DlibDetector  # noqa: E402
from edgeguard.detectors.yunet import BOX_DROP, BOX_SIDE, MODEL_PATH, to_detection  # noqa: E402
from edgeguard.faces.encode import FaceEncoder  # noqa: E402

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"


def photos() -> list[Path]:
    return (
        sorted(TESTDATA.glob("lfw10/*/*.jpg"))
        + sorted(TESTDATA.glob("people/*.jpg"))
        + sorted(TESTDATA.glob("people/knn/train/*/*"))
        + sorted(TESTDATA.glob("mask/synthetic/without_mask/*"))[:150]
    )


def pairs() -> list[tuple[np.ndarray, Box, np.ndarray]]:
    """(RGB photo, HOG's box, YuNet's raw row) for each face both detectors found."""
    net = cv2.FaceDetectorYN.create(str(MODEL_PATH), "", (320, 320), 0.6, 0.3, 50)
    hog = DlibDetector("hog")
    out = []
    for path in photos():
        bgr = cv2.imread(str(path))
        if bgr is None:
            continue
        scale = min(1.0, 640 / max(bgr.shape[:2]))
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else bgr
        margin = int(PHOTO_MARGIN * max(bgr.shape[:2]))
        bgr = cv2.copyMakeBorder(bgr, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
        net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = net.detect(bgr)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for found in hog.find(rgb, 1):
            x, y = found.box.center
            inside = [
                r
                for r in (rows if rows is not None else [])
                if r[0] <= x <= r[0] + r[2] and r[1] <= y <= r[1] + r[3]
            ]
            if inside:
                out.append((rgb, found.box, inside[0]))
    return out


def main() -> int:
    found = pairs()
    # dlib's own width of a rectangle counts both edges: right - left + 1
    hog = np.array([(*b.center, b.width + 1) for _, b, _ in found], dtype=float)
    yunet = np.array(
        [(r[0] + r[2] / 2, r[1] + r[3] / 2, np.sqrt(r[2] * r[3])) for _, _, r in found], dtype=float
    )
    side = np.median(hog[:, 2] / yunet[:, 2])
    drop = np.median((hog[:, 1] - yunet[:, 1]) / yunet[:, 2])
    across = np.median((hog[:, 0] - yunet[:, 0]) / yunet[:, 2])
    print(f"{len(found)} faces found by both")
    print(
        f"fit: side = {side:.3f} x sqrt(w h), "
        f"centre moved down {drop:.3f} and across {across:.3f} x sqrt(w h)"
    )
    print(f"shipped: BOX_SIDE = {BOX_SIDE}, BOX_DROP = {BOX_DROP} (across: 0)")
    left = (hog[:, :2] - (yunet[:, :2] + np.array([0, BOX_DROP]) * yunet[:, 2:3])) / hog[:, 2:3]
    print(
        f"spread after the fit (share of HOG's side): x {left[:, 0].std():.3f}, y {left[:, 1].std():.3f}, "
        f"log side {np.log(hog[:, 2] / (BOX_SIDE * yunet[:, 2])).std():.3f}"
    )
    encoder = FaceEncoder()
    distances = [
        float(np.linalg.norm(encoder.encode(rgb, [box])[0] - encoder.encode(rgb, [to_detection(row).box])[0]))
        for rgb, box, row in found[::4]
    ]
    print(
        f"encodings of mapped boxes vs HOG's boxes ({len(distances)} faces): "
        f"median {np.median(distances):.3f}, "
        f"p90 {np.percentile(distances, 90):.3f}, max {max(distances):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
