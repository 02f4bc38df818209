"""Benchmark: dlib's HOG against OpenCV's YuNet, side by side: faces found, false boxes, YuNet's scores,
speed.

Photos (mask/real and mask/synthetic, with and without masks; every STEP-th
photo by sorted name): the share of photos with at least one face box, and
with two or more (these are one-person photos mostly, so a second box is
usually a false one or a face boxed twice), for
- "raw": the detector alone as still photos are searched
  (edgeguard.detect.detect_in_photo: shrunk to 1024 px, the
  replicated PHOTO_MARGIN around it; HOG at upsample 1);
- "analyze": what `edgeguard analyze` finds, FaceEngine.find_in_photo(rgb,
  masked=True): HOG with its sub-threshold masked-face search, or YuNet with
  the engine's check of its unsure boxes (FaceEngine.checked);
- "640+25%": the variant of the issue's measurement: each photo shrunk to at
  most 640 px and given a black margin of 25% of its longer side on each side
  (cv2.BORDER_CONSTANT), then the detector alone (HOG at upsample 1); for
  YuNet also after the engine's check as for still photos, on the padded image.
Then, for YuNet, the boxes the check removed and the photos it left without a
box (on these one-person photos mostly a real face lost), raw and 640+25%, and
the spread of the best raw score per photo.

Crowds (crowd/training.xml, dlib imglab boxes): a label is found when a
detection's box overlaps it with IoU >= 0.3 or has its centre inside it; a
detection matching no label is an extra box.  Per image and in total, raw
(detect_in_photo) and as analyze finds them; the boxes on dogs.jpg (no human
face: there should be none after the check) and on bald_guys.jpg (a collage).
YuNet's scores: every raw YuNet box on dogs.jpg and bald_guys.jpg and every
crowd box matching no label, with the mask model's P(not a face) and whether
the check kept it; the scores of the matched crowd boxes for contrast.

The check's doubted boxes: on every photo of mask/real, split by
train/prepare_mask.py's split_of (the rule that trusts the mask model on masked
faces was read off "train"; "test" is held out), the photos with a face and the
boxes of YuNet alone (as analyze searches: find_in_photo's detect_in_photo), of
the check as it was (HOG the last word on every doubted box) and of the check
now (FaceEngine.find_in_photo); then each box the check doubts (P(not a face) >=
NOT_FACE_STILL): its score, P(not a face), mask score (P(mask | a face)), whether
HOG confirms it and whether it is kept.

Speed: milliseconds per 640x480 frame (Hamilton clip frame 50 and the crowd
photo 2008_002079, letterboxed), detection call only, as the live pipeline
calls the detector: HOG on the grey frame at upsample 0 at 640x480, resized
1.5x (the old pipeline: detect_width 480, upsample 1) and 2x (detect_width 640,
upsample 1: today's defaults with detector = "hog"), all at HOG's cut-off 0;
YuNet on the BGR frame at 640x480.  One thread, and two: YuNet with
cv2.setNumThreads(1) and (2), one caller; HOG (single-threaded in dlib) from
two Python threads at once, each with its own detector (dlib releases the
GIL).  Per-frame figures are the median of RUNS calls after WARMUP; frames/s is
1000 / ms for one caller, the total over both threads (wall clock) for HOG's
two; CPU use is the process's CPU seconds
per wall second meanwhile (about 2 when two threads really ran in parallel,
less when other work holds the cores).  Done in ROUNDS rounds, each printed,
since other work on the machine makes single timings noisy.

No targets: it prints figures only.

Run: python bench/detector_accuracy.py            (everything; 12-20 minutes on 2 cores shared with
                                                   other work)
     python bench/detector_accuracy.py --speed    (the speed table only)
     python bench/detector_accuracy.py --doubted  (the check's doubted boxes only; about 20 s)
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))
from prepare_mask import split_of  # noqa: E402

from edgeguard.config import MaskConfig, RecognitionConfig  # noqa: E402
from edgeguard.detect import Box, Detection, FaceDetector, detect_in_photo  # noqa: E402
from edgeguard.detectors.dlib_detector import DlibDetector  # noqa: E402
from edgeguard.detectors.yunet import YuNetDetector  # noqa: E402
from edgeguard.faces.engine import NOT_FACE_STILL, SURE_SCORE, FaceEngine  # noqa: E402
from edgeguard.mask import NOT_FACE, mask_score  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata"
MASK = TESTDATA / "mask"
CROWD = TESTDATA / "crowd"
SETS = ("real/with_mask", "real/without_mask", "synthetic/with_mask", "synthetic/without_mask")
STEP = 2  # every STEP-th photo of each set (by sorted name): HOG takes about a second per synthetic portrait
DETECTORS = ("hog", "yunet")
UPSAMPLE = {"hog": 1, "yunet": 0}  # still photos: RecognitionConfig.upsample (YuNet ignores it)
MAX_SIDE = 1024  # RecognitionConfig.max_detect_side
ISSUE_SIDE = 640
ISSUE_MARGIN = 0.25
LABEL_IOU = 0.3
FRAME_SIZE = (640, 480)
RUNS = 25
WARMUP = 3
ROUNDS = 2


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    print(
        f"OpenCV {cv2.__version__}, dlib {dlib_version()}; {len(os.sched_getaffinity(0))} usable cores, "
        f"cv2.getNumThreads() {cv2.getNumThreads()}, load average {os.getloadavg()[0]:.2f}"
    )
    if "--doubted" in argv:
        doubted_boxes(FaceEngine(RecognitionConfig(detector="yunet"), MaskConfig()))
        return 0
    if "--speed" not in argv:
        engines = {name: FaceEngine(RecognitionConfig(detector=name), MaskConfig()) for name in DETECTORS}
        for engine in engines.values():
            engine.warm_up()
        photos(engines)
        crowds(engines)
        yunet_scores(engines["yunet"])
        doubted_boxes(engines["yunet"])
    speed()
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


def dlib_version() -> str:
    import dlib

    return dlib.__version__


def every(n: int) -> str:
    return "every photo" if n == 1 else f"every {n}{ {2: 'nd', 3: 'rd'}.get(n, 'th') } photo"


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# --- photos -------------------------------------------------------------------------------------------

COLUMNS = (
    "hog raw",
    "hog analyze",
    "hog 640+25%",
    "yunet raw",
    "yunet analyze",
    "yunet 640+25%",
    "  checked",
)


def photos(engines: dict[str, FaceEngine]) -> None:
    """Faces found and photos with 2+ boxes, per set and column; YuNet's losses to the check and best
    scores."""
    counts: dict[str, dict[str, list[list[Detection]]]] = {}
    started = time.perf_counter()
    for name in SETS:
        paths = sorted((MASK / name).iterdir())[::STEP]
        counts[name] = {column: [] for column in COLUMNS}
        for path in paths:
            for column, found in photo_columns(engines, read_rgb(path)).items():
                counts[name][column].append(found)
    total = sum(len(c[COLUMNS[0]]) for c in counts.values())
    print(
        f"\nphotos: {every(STEP)} of each set (sorted by name), {total} photos, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        "  raw: detect_in_photo (1024 px, 15% replicated margin; HOG upsample 1); "
        "analyze: FaceEngine.find_in_photo(rgb, masked=True);\n"
        "  640+25%: shrunk to <= 640 px, black 25% margin, detector alone; "
        "checked: YuNet 640+25% after the engine's check"
    )
    share_table("a face found (at least one box)", counts, lambda boxes: len(boxes) >= 1)
    share_table("two or more boxes", counts, lambda boxes: len(boxes) >= 2)
    print(
        "\nYuNet and the check: boxes it removed, photos left without a box by it "
        "(these are one-person photos: mostly a real face lost),\n"
        "and the best raw score per photo with a box "
        f"(the check only looks at boxes scoring < {SURE_SCORE})"
    )
    heads = ("removed", "emptied", "removed", "emptied", "min", "10%", "25%", "median", f"< {SURE_SCORE}")
    print(f"  {'':<28} {'raw (1024 px)':>17} {'640+25%':>17}   {'best raw score':>30}")
    print(f"  {'set':<28} " + " ".join(f"{h:>8}" for h in heads))
    for name, columns in counts.items():
        cells = []
        for raw, checked in (("yunet raw", "yunet analyze"), ("yunet 640+25%", "  checked")):
            cells.append(sum(len(r) - len(a) for r, a in zip(columns[raw], columns[checked])))
            cells.append(sum(bool(r) and not a for r, a in zip(columns[raw], columns[checked])))
        best = sorted(max(d.score for d in found) for found in columns["yunet raw"] if found)
        quantiles = (
            [best[int(q * (len(best) - 1))] for q in (0.0, 0.1, 0.25, 0.5)] if best else [float("nan")] * 4
        )
        unsure = 100 * sum(s < SURE_SCORE for s in best) / max(len(best), 1)
        print(
            f"  mask/{name:<23} "
            + " ".join(f"{c:>8}" for c in cells)
            + " "
            + " ".join(f"{q:>8.3f}" for q in quantiles)
            + f" {unsure:>7.1f}%"
        )


def photo_columns(engines: dict[str, FaceEngine], rgb: np.ndarray) -> dict[str, list[Detection]]:
    """The boxes of one photo in every column of the table."""
    out = {}
    for name, engine in engines.items():
        out[f"{name} raw"] = detect_in_photo(engine.detector, rgb, UPSAMPLE[name], MAX_SIDE)
        out[f"{name} analyze"] = engine.find_in_photo(rgb, masked=True)
        image, found = issue_variant(engine.detector, rgb)
        out[f"{name} 640+25%"] = found
        if name == "yunet":
            out["  checked"] = engine.checked(
                image, found, rgb=False, not_face=NOT_FACE_STILL
            )  # as for a still photo
    return out


def issue_variant(detector: FaceDetector, rgb: np.ndarray) -> tuple[np.ndarray, list[Detection]]:
    """The issue's way: the photo shrunk to at most ISSUE_SIDE, a black ISSUE_MARGIN border; the image and
    its detections."""
    scale = min(1.0, ISSUE_SIDE / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    margin = int(ISSUE_MARGIN * max(small.shape[:2]))
    padded = cv2.copyMakeBorder(small, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    image = cv2.cvtColor(padded, cv2.COLOR_RGB2BGR) if detector.colour else padded
    return image, detector.find(image, UPSAMPLE[detector.name])


def share_table(title: str, counts: dict[str, dict[str, list[list[Detection]]]], test) -> None:
    print(f"\n{title}: share of photos")
    print(f"  {'set':<28} {'photos':>6} " + " ".join(f"{c:>13}" for c in COLUMNS))
    for name, columns in counts.items():
        n = len(columns[COLUMNS[0]])
        cells = [f"{100 * sum(map(test, columns[c])) / n:12.1f}%" for c in COLUMNS]
        print(f"  mask/{name:<23} {n:>6} " + " ".join(cells))


# --- crowds -------------------------------------------------------------------------------------------


def labels() -> dict[str, list[Box]]:
    return {
        image.get("file"): [
            Box(
                int(b.get("top")),
                int(b.get("left")) + int(b.get("width")),
                int(b.get("top")) + int(b.get("height")),
                int(b.get("left")),
            )
            for b in image.iter("box")
        ]
        for image in ET.parse(CROWD / "training.xml").getroot().iter("image")
    }


def matches(detection: Box, label: Box) -> bool:
    return detection.iou(label) >= LABEL_IOU or label.contains(detection.center)


def crowd_boxes(engines: dict[str, FaceEngine], rgb: np.ndarray) -> dict[str, list[Detection]]:
    out = {}
    for name, engine in engines.items():
        out[f"{name} raw"] = detect_in_photo(engine.detector, rgb, UPSAMPLE[name], MAX_SIDE)
        out[f"{name} analyze"] = engine.find_in_photo(rgb, masked=True)
    return out


def crowds(engines: dict[str, FaceEngine]) -> None:
    """Labelled faces found / boxes matching no label, per image and in total; boxes on dogs.jpg and
    bald_guys.jpg."""
    columns = [f"{d} {k}" for d in DETECTORS for k in ("raw", "analyze")]
    print(
        "\ncrowd: labelled faces found / boxes matching no label "
        "(match: IoU >= 0.3 or the box's centre in the label)"
    )
    print(f"  {'image':<22} {'labels':>6} " + " ".join(f"{c:>13}" for c in columns))
    totals = {c: [0, 0] for c in columns}
    for name, truth in labels().items():
        found = crowd_boxes(engines, read_rgb(CROWD / name))
        cells = []
        for column in columns:
            hit = sum(any(matches(d.box, t) for d in found[column]) for t in truth)
            extra = sum(not any(matches(d.box, t) for t in truth) for d in found[column])
            totals[column][0] += hit
            totals[column][1] += extra
            cells.append(f"{hit:>3}/{len(truth)} +{extra:<3}")
        print(f"  {name:<22} {len(truth):>6} " + " ".join(f"{c:>13}" for c in cells))
    n = sum(len(t) for t in labels().values())
    print(f"  {'total':<22} {n:>6} " + " ".join(f"{f'{h:>3}/{n} +{e:<3}':>13}" for h, e in totals.values()))
    for name in ("dogs.jpg", "bald_guys.jpg"):
        found = crowd_boxes(engines, read_rgb(CROWD / name))
        print(f"  {name + ' (boxes)':<22} {'-':>6} " + " ".join(f"{len(found[c]):>13}" for c in columns))


def yunet_scores(engine: FaceEngine) -> None:
    """Every raw YuNet box on dogs.jpg and bald_guys.jpg and every crowd box matching no label:
    score, P(not a face), mask score, kept by the check; the matched crowd boxes' scores."""
    print(
        f"\nYuNet raw boxes: score, P(not a face) by the mask model, and whether the engine's check "
        f"kept them (it looks at boxes scoring < {SURE_SCORE} only): as analyze\n"
        f"  (FaceEngine.find_in_photo) and with its rule for live frames (FaceEngine.checked's default), "
        f"here on the photo"
    )
    print(
        f"  {'image':<18} {'box (top, right, bottom, left)':<30} {'side':>5} {'score':>6} "
        f"{'P(not face)':>11} {'mask score':>10}  {'analyze':<8} {'live rule':<9}"
    )
    matched = []
    for name, truth in [("dogs.jpg", None), ("bald_guys.jpg", None)] + list(labels().items()):
        rgb = read_rgb(CROWD / name)
        found = detect_in_photo(engine.detector, rgb, UPSAMPLE["yunet"], MAX_SIDE)
        kept = engine.find_in_photo(rgb, masked=True)
        live = engine.checked(rgb, found, rgb=True)
        probs = engine.masks.probabilities(rgb, [d.box for d in found], True) if found else np.zeros((0, 3))
        for d, p in sorted(zip(found, probs), key=lambda pair: pair[0].score):
            if truth is not None and any(matches(d.box, t) for t in truth):
                matched.append(d.score)
            elif truth is not None or d.score < SURE_SCORE or name == "dogs.jpg":
                print(
                    f"  {name:<18} {str(tuple(d.box.as_list())):<30} {d.box.size:>5} {d.score:>6.3f} "
                    f"{float(p[NOT_FACE]):>11.4f} {mask_score(p):>10.3f}  "
                    f"{'kept' if d in kept else 'dropped':<8} "
                    f"{'kept' if d in live else 'dropped'}{'' if d.frontal else ' (turned)'}"
                )
        if name == "bald_guys.jpg":
            print(
                f"  {name:<18} ({len(found)} boxes, {len(kept)} kept; "
                f"above: those scoring < {SURE_SCORE}) scores "
                f"{', '.join(f'{d.score:.2f}' for d in sorted(found, key=lambda d: d.score))}"
            )
    matched.sort()
    print(f"  matched crowd boxes ({len(matched)}): scores {', '.join(f'{s:.2f}' for s in matched)}")


def doubted_boxes(engine: FaceEngine) -> None:
    """Per split of mask/real: photos with a face and boxes, by YuNet alone, the check as it was (HOG the
    last word) and the check now; then every box the check doubts, with its scores."""
    print(
        f"\nthe check's doubted boxes on mask/real by split (P(not a face) >= {NOT_FACE_STILL}, score < "
        f"{SURE_SCORE}): photos with a face / boxes, YuNet alone, the check with HOG the last word, the check"
    )
    print(
        f"  {'split':<6} {'set':<13} {'photos':>6} {'YuNet alone':>13} {'HOG last word':>14} "
        f"{'the check':>13}"
    )
    rows = []
    for split in ("train", "val", "test"):
        for cls in ("with_mask", "without_mask"):
            paths = [p for p in sorted((MASK / "real" / cls).iterdir()) if split_of(p.name) == split]
            counts = {column: [0, 0] for column in ("alone", "hog", "check")}
            for path in paths:
                rgb = read_rgb(path)
                found = detect_in_photo(engine.detector, rgb, UPSAMPLE["yunet"], MAX_SIDE)
                kept = engine.find_in_photo(rgb, masked=True)
                unsure = [d for d in found if d.score < SURE_SCORE]
                probs = engine.masks.probabilities(rgb, [d.box for d in unsure]) if unsure else []
                dropped = 0
                for d, p in zip(unsure, probs):
                    if p[NOT_FACE] >= NOT_FACE_STILL:
                        confirmed = engine._hog_confirms(rgb, d.box)
                        dropped += not confirmed
                        rows.append((split, cls, path.name, d, p, confirmed, d in kept))
                for column, n in (("alone", len(found)), ("hog", len(found) - dropped), ("check", len(kept))):
                    counts[column][0] += n > 0
                    counts[column][1] += n
            cells = " ".join(f"{f'{c[0]} / {c[1]}':>13}" for c in counts.values())
            print(f"  {split:<6} {cls:<13} {len(paths):>6} {cells}")
    print(
        f"  {'split':<6} {'set':<13} {'photo':<18} {'side':>5} {'score':>6} {'P(not face)':>11} "
        f"{'mask score':>10} {'HOG':<4} kept"
    )
    for split, cls, name, d, p, confirmed, kept in rows:
        print(
            f"  {split:<6} {cls:<13} {name:<18} {d.box.size:>5} {d.score:>6.3f} {float(p[NOT_FACE]):>11.3f} "
            f"{mask_score(p):>10.3f} {'yes' if confirmed else 'no':<4} {'yes' if kept else 'no'}"
        )


# --- speed --------------------------------------------------------------------------------------------


def frames() -> dict[str, np.ndarray]:
    """Two real BGR frames of FRAME_SIZE."""
    cap = cv2.VideoCapture(str(TESTDATA / "video" / "short_hamilton_clip.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 50)
    ok, clip = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("cannot read the Hamilton clip")
    return {
        "clip frame 50": letterbox(clip),
        "2008_002079.jpg": letterbox(cv2.imread(str(CROWD / "2008_002079.jpg"))),
    }


def letterbox(image: np.ndarray) -> np.ndarray:
    width, height = FRAME_SIZE
    scale = min(width / image.shape[1], height / image.shape[0])
    small = cv2.resize(
        image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    frame = np.zeros((height, width, 3), np.uint8)
    top, left = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    frame[top : top + small.shape[0], left : left + small.shape[1]] = small
    return frame


def configs(frame: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(label, detector name, the image the detector gets) as the live pipeline prepares it."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return [
        ("hog grey 640x480, upsample 0", "hog", grey),
        (
            "hog grey 960x720 (480 wide, upsample 1: old default)",
            "hog",
            cv2.resize(grey, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR),
        ),
        (
            "hog grey 1280x960 (640 wide, upsample 1)",
            "hog",
            cv2.resize(grey, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR),
        ),
        ("yunet BGR 640x480", "yunet", frame),
    ]


def make(name: str) -> FaceDetector:
    detector = DlibDetector("hog") if name == "hog" else YuNetDetector()
    detector.load()
    return detector


def one_thread(detector: FaceDetector, image: np.ndarray) -> tuple[list[float], float]:
    """Milliseconds of each of RUNS calls after WARMUP, and the process's CPU seconds per wall second
    meanwhile."""
    for _ in range(WARMUP):
        detector.find(image)
    times = []
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(RUNS):
        start = time.perf_counter()
        detector.find(image)
        times.append((time.perf_counter() - start) * 1000)
    return times, (time.process_time() - cpu) / (time.perf_counter() - wall)


def two_threads(detectors: list[FaceDetector], image: np.ndarray) -> tuple[list[float], float, float]:
    """Per-call milliseconds of two threads detecting at once (one detector each), their frames/s together,
    and the process's CPU seconds per wall second meanwhile (2 if both ran in parallel all the time)."""
    barrier = threading.Barrier(len(detectors) + 1)
    times: list[list[float]] = [[] for _ in detectors]

    def work(detector: FaceDetector, out: list[float]) -> None:
        for _ in range(WARMUP):
            detector.find(image)
        barrier.wait()
        for _ in range(RUNS):
            start = time.perf_counter()
            detector.find(image)
            out.append((time.perf_counter() - start) * 1000)

    threads = [threading.Thread(target=work, args=(d, t)) for d, t in zip(detectors, times)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return [t for ts in times for t in ts], len(detectors) * RUNS / wall, (time.process_time() - cpu) / wall


def measure(name: str, image: np.ndarray, detectors: dict[str, list[FaceDetector]]) -> tuple[float, ...]:
    """ms, frames/s and CPU use with one thread, then with two, for one detector and image."""
    default = cv2.getNumThreads()
    try:
        if name == "yunet":
            cv2.setNumThreads(1)
            times, cpu = one_thread(detectors[name][0], image)
            one = statistics.median(times)
            cv2.setNumThreads(2)
            times, cpu2 = one_thread(detectors[name][0], image)
            two = statistics.median(times)
            return one, 1000 / one, cpu, two, 1000 / two, cpu2
        times, cpu = one_thread(detectors[name][0], image)
        one = statistics.median(times)
        times, fps, cpu2 = two_threads(detectors[name], image)
        return one, 1000 / one, cpu, statistics.median(times), fps, cpu2
    finally:
        cv2.setNumThreads(default)


def speed() -> None:
    print(
        f"\nspeed per 640x480 frame, detection call only: median of {RUNS} calls after {WARMUP}; "
        f"yunet 2 threads = cv2.setNumThreads(2), hog 2 threads = two Python threads at once; {ROUNDS} rounds"
    )
    detectors = {name: [make(name), make(name)] for name in DETECTORS}
    results: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for _ in range(ROUNDS):
        for frame_name, frame in frames().items():
            for label, name, image in configs(frame):
                results.setdefault((frame_name, label), []).append(measure(name, image, detectors))
    heads = ("1 thread: ms", "frames/s", "CPU use", "2 threads: ms/frame", "frames/s total", "CPU use")
    widths = (15, 13, 11, 19, 15, 11)
    print(
        f"  {'frame':<16} {'detector and image':<53} " + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths))
    )
    for (frame_name, label), rounds in results.items():
        cells = [" / ".join(f"{r[i]:.{2 if i in (2, 5) else 1}f}" for r in rounds) for i in range(6)]
        print(f"  {frame_name:<16} {label:<53} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    print(
        f"  (each cell: round {' / round '.join(str(i + 1) for i in range(ROUNDS))}; "
        f"load average now {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
