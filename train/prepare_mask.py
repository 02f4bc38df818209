"""Cut the training, validation and test samples for the mask model out of the mask photos.

Runs in the project's environment (it needs dlib); train_mask.py calls it.

Each photo gets one face box, found the way edgeguard finds faces at run time
(dlib HOG at upsample 1 on the photo shrunk to 1024 px with a 15% margin, as
edgeguard.detect.detect_in_photo does) so that the crops the network learns
from look like the crops MaskClassifier.classify cuts from detector boxes:

- "hog": the largest face HOG scores 0 or more;
- "weak": else the best sub-threshold HOG candidate (score >= CANDIDATE_FLOOR)
  if it is big enough to be the portrait's subject (a side of at least
  MIN_SUBJECT of the photo's shorter side): the masked faces find_masked_faces
  will deliver at run time;
- "virtual": else, for mask/real (tight face crops as well as portraits), the
  box HOG puts on a tight face crop, measured on those it finds (VIRTUAL_BOX);
  mask/synthetic photos without a box are all portraits and are left out.

"Not a face" samples (class 2) are what find_masked_faces must reject: HOG's
sub-threshold candidates away from the face, and random patches of
background, in photos where nothing else can be a face (negatives_safe).

The split is by a hash of the file name (SPLIT_* below), so it never changes
and never depends on the order of files.  Writes samples.npz: for each sample
a 128 x 128 region around its box (crop_face with margin 0.5: the box is the
middle 64 px), the label, the data set, the split, the box kind and the name.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgeguard.detect import Box, detect_in_photo, same_face  # noqa: E402
from edgeguard.detectors.dlib_detector import DlibDetector  # noqa: E402
from edgeguard.mask import CANDIDATE_FLOOR, crop_face  # noqa: E402

log = logging.getLogger("prepare_mask")
DETECTOR = DlibDetector("hog")  # one per worker process: each loads its own

CLASSES = {"without_mask": 0, "with_mask": 1}
NOT_FACE = 2
REGION_SIZE = 128
REGION_MARGIN = 0.5
MAX_SIDE = 1024
UPSAMPLE = 1
NEGATIVE_FLOOR = -1.5  # below CANDIDATE_FLOOR: more of the false candidates to learn from
BACKGROUND_PATCHES = 3
MIN_SUBJECT = 0.25
# (left, top, right, bottom) of HOG's box as shares of a tight face crop: the
# median over the mask/real/without_mask crops HOG finds (0.03, 0.13, 0.92, 1.03).
VIRTUAL_BOX = (0.03, 0.13, 0.92, 1.03)
SPLIT_TEST = 20  # percent of file-name hashes held apart for the test split
SPLIT_VAL = 10


def split_of(name: str) -> str:
    bucket = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < SPLIT_TEST else "val" if bucket < SPLIT_TEST + SPLIT_VAL else "train"


def face_box(rgb: np.ndarray, found: list[tuple[Box, float]], dataset: str) -> tuple[Box | None, str]:
    height, width = rgb.shape[:2]
    sure = [b for b, s in found if s >= 0]
    if sure:
        return max(sure, key=lambda b: b.size), "hog"
    weak = [b for b, s in found if s >= CANDIDATE_FLOOR and b.size >= MIN_SUBJECT * min(height, width)]
    if weak:
        return weak[0], "weak"  # dlib lists detections best first
    if dataset == "real":
        return virtual_box(height, width), "virtual"
    return None, "none"


def virtual_box(height: int, width: int) -> Box:
    """Where HOG would put the face box on a tight face crop of this size."""
    left, top, right, bottom = VIRTUAL_BOX
    return Box(int(top * height), int(right * width), int(bottom * height), int(left * width))


def negatives(
    rgb: np.ndarray, face: Box, found: list[tuple[Box, float]], rng: np.random.Generator
) -> list[Box]:
    """False candidates and BACKGROUND_PATCHES patches of background, from a photo whose only face is
    `face`."""
    height, width = rgb.shape[:2]
    boxes = [b for b, s in found if not overlaps(b, face) and b.size >= 12]
    patches = 0
    for _ in range(20 * BACKGROUND_PATCHES):
        side = int(face.size * rng.uniform(0.3, 1.5))
        if side >= min(height, width) or patches == BACKGROUND_PATCHES:
            break
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        patch = Box(top, left + side, top + side, left)
        if side >= 12 and not overlaps(patch, face):
            boxes.append(patch)
            patches += 1
    return boxes


def overlaps(a: Box, b: Box) -> bool:
    """Any overlap worth the name: a negative must show little of the face."""
    inter = max(0, min(a.right, b.right) - max(a.left, b.left)) * max(
        0, min(a.bottom, b.bottom) - max(a.top, b.top)
    )
    return inter > 0.1 * min(a.width * a.height, b.width * b.height) or same_face(a, b)


def process(job: tuple[str, str, str, str]) -> list[dict]:
    path, dataset, cls, name = job
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        log.warning("unreadable: %s", path)
        return []
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    found = [(d.box, d.score) for d in detect_in_photo(DETECTOR, rgb, UPSAMPLE, MAX_SIDE, NEGATIVE_FLOOR)]
    face, kind = face_box(rgb, found, dataset)
    best = max([s for _, s in found], default=None)
    base = {
        "dataset": dataset,
        "split": split_of(name),
        "name": f"{dataset}/{cls}/{name}",
        "best_score": best,
    }
    if face is None:
        return [{**base, "label": CLASSES[cls], "kind": kind, "region": None}]
    samples = [
        {
            **base,
            "label": CLASSES[cls],
            "kind": kind,
            "region": crop_face(rgb, face, REGION_SIZE, REGION_MARGIN),
        }
    ]
    if negatives_safe(rgb, face, kind, dataset, cls, found):
        rng = np.random.default_rng(int(hashlib.sha1(name.encode()).hexdigest()[:8], 16))
        for box in negatives(rgb, face, found, rng):
            samples.append(
                {
                    **base,
                    "label": NOT_FACE,
                    "kind": "negative",
                    "region": crop_face(rgb, box, REGION_SIZE, REGION_MARGIN),
                }
            )
    return samples


def negatives_safe(
    rgb: np.ndarray, face: Box, kind: str, dataset: str, cls: str, found: list[tuple[Box, float]]
) -> bool:
    """Whether everything away from `face` is surely no face.

    Only in one-person photos whose face is sure: HOG found it, or it is the
    subject of a mask/synthetic portrait.  Photos of real masks may show more
    masked people (street scenes), whom HOG would not have found either.
    """
    one_person = sum(s >= 0 for _, s in found) <= 1 and face.size >= MIN_SUBJECT * min(rgb.shape[:2])
    sure = kind == "hog" or (kind == "weak" and dataset == "synthetic")
    return one_person and sure and not (dataset == "real" and cls == "with_mask")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="the mask folder (real/ and synthetic/ inside)"
    )
    parser.add_argument("--out", type=Path, required=True, help="where samples.npz goes")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    jobs = [
        (str(p), dataset, cls, p.name)
        for dataset in ("real", "synthetic")
        for cls in CLASSES
        for p in sorted((args.data / dataset / cls).iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    with Pool(args.jobs) as pool:
        samples = [s for batch in pool.imap(process, jobs, chunksize=16) for s in batch]
    report_floor(samples)
    kept = [s for s in samples if s["region"] is not None]
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out / "samples.npz",
        region=np.stack([s["region"] for s in kept]),
        **{k: np.array([s[k] for s in kept]) for k in ("label", "dataset", "split", "kind", "name")},
    )
    for dataset in ("real", "synthetic"):
        for kind in ("hog", "weak", "virtual", "none", "negative"):
            n = sum(s["dataset"] == dataset and s["kind"] == kind for s in samples)
            log.info("%s %s: %d", dataset, kind, n)
    log.info("%d samples written to %s", len(kept), args.out / "samples.npz")
    return 0


def report_floor(samples: list[dict]) -> None:
    """How many masked training portraits a candidate floor would reach: the rule for CANDIDATE_FLOOR."""
    scores = [
        s["best_score"]
        for s in samples
        if s["dataset"] == "synthetic"
        and s["label"] == 1
        and s["split"] == "train"
        and s["kind"] != "negative"
    ]
    for floor in (0.0, -0.5, -0.75, -1.0, -1.25):
        reached = sum(b is not None and b >= floor for b in scores)
        log.info(
            "candidate floor %.2f: a HOG detection on %d of %d masked training portraits (%.1f%%)",
            floor,
            reached,
            len(scores),
            100 * reached / len(scores),
        )


if __name__ == "__main__":
    sys.exit(main())
