"""Benchmark: the mask model's accuracy and cost, and how many masked faces are found, with each detector.

Both face detectors side by side wherever faces are found: dlib's HOG with
the masked-face search, and YuNet (the default) with the engine's check
(FaceEngine.checked: a second look at its unsure boxes, which drops those it
finds are not faces).

Classification, end to end as `edgeguard analyze` would see a photo, with
each detector: HOG (upsample 1, photos shrunk to 1024 px with
detect_in_photo's margin) down to CANDIDATE_FLOOR, then find_masked_faces on
the candidates below HOG's cut-off; or YuNet on the same shrunk, padded photo,
then the check.  The largest face is classified.  A photo with no face found
is classified on the box HOG puts on a tight face crop
(prepare_mask.virtual_box): right for mask/real's many crops, a guess for a
mask/synthetic portrait, so the figure is printed over all photos and over
those with a face found.  Scored on the "test" split of mask/real and of
mask/synthetic (a fifth of each by file-name hash: train/prepare_mask.py),
which training never saw.  Balanced accuracy: the mean of the recall on
masked and on bare faces, at the packaged threshold.

Finding: the share of mask/synthetic portraits (masked and bare) with a face,
by HOG alone and with find_masked_faces, and by YuNet alone and after the
check (all of them, and the test split alone: the verifier was trained on
false candidates from the others); the labelled faces of crowd/training.xml
found and the boxes matching no label; the faces in crowd/dogs.jpg and
crowd/bald_guys.jpg.

Cost: the classifier per face (batches of 1 and 8), and per 640x480 frame
the HOG pass with and without the lower floor, and find_masked_faces on its
candidates (HOG as the pipeline ran it by default before YuNet: detect_width
480, upsample 1); YuNet's pass on the BGR frame (detect_width 640, today's
default) and the check of its unsure boxes.

Live: the daemon's FrameProcessor with the default config, with
`detector = "yunet"` (the default) and with `detector = "hog"` (at HOG's
former detect_width 480), the latter also against `find_masked = "off"`: the
people it counts on the first frame of each photo (masked portraits, bare
portraits, the labelled crowds, dogs); and, with each detector, the mask vote
on a clip per held-apart pair of mask/synthetic portraits of one person
(masked for 3 s, then bare for 5 s, pasted on a stage frame of the Hamilton
clip at 30 frames/s): the no_mask events for the pasted face while masked
(wrong) and after; those for the stage frame's own faces (an audience and a
close-up in profile, which YuNet finds) are counted apart.

Run: python bench/mask_accuracy.py
"""

from __future__ import annotations

import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))
from prepare_mask import split_of, virtual_box  # noqa: E402

from edgeguard.config import MaskConfig, RecognitionConfig  # noqa: E402
from edgeguard.detect import Box, detect_in_photo  # noqa: E402
from edgeguard.detectors.dlib_detector import DlibDetector  # noqa: E402
from edgeguard.faces.engine import SURE_SCORE, FaceEngine  # noqa: E402
from edgeguard.mask import CANDIDATE_FLOOR, MaskClassifier, find_masked_faces, split_faces  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata"
MASK = TESTDATA / "mask"
CROWD = TESTDATA / "crowd"
UPSAMPLE = 1
MAX_SIDE = 1024
LIVE_WIDTH = 480  # the pipeline's default detect_width with HOG before YuNet (now 640)
LABEL_IOU = 0.3
PASTE_TOP, PASTE_LEFT, PASTE_SIZE = 80, 220, 200  # where live_vote's portraits go on the stage frame


def main() -> int:
    started = time.perf_counter()
    detector, classifier = DlibDetector("hog"), MaskClassifier()
    yunet = FaceEngine(RecognitionConfig(detector="yunet"), MaskConfig())  # its detector and its check
    print(
        f"model: {classifier.model_path.name}, {classifier.model_path.stat().st_size / 1e6:.2f} MB, "
        f"threshold {classifier.threshold}"
    )
    for dataset in ("real", "synthetic"):
        classification(detector, classifier, yunet, dataset)
    finding(detector, classifier, yunet)
    crowd(detector, classifier, yunet)
    cost(detector, classifier, yunet)
    live_counting()
    live_vote()
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def faces(detector: DlibDetector, classifier: MaskClassifier, rgb: np.ndarray) -> tuple[list[Box], list[Box]]:
    """HOG's faces in a still photo, and the masked faces find_masked_faces adds from the same pass."""
    scored = [(d.box, d.score) for d in detect_in_photo(detector, rgb, UPSAMPLE, MAX_SIDE, CANDIDATE_FLOOR)]
    hog, masked = split_faces(rgb, scored, classifier)
    return hog, [box for box, _ in masked]


def yunet_faces(engine: FaceEngine, rgb: np.ndarray) -> tuple[list[Box], list[Box]]:
    """YuNet's faces in a still photo, and those the engine's check keeps (what `edgeguard analyze` finds)."""
    found = detect_in_photo(engine.detector, rgb, UPSAMPLE, MAX_SIDE)
    return [d.box for d in found], [d.box for d in engine.find_in_photo(rgb, masked=True)]


def found_faces(
    detector: DlibDetector, classifier: MaskClassifier, yunet: FaceEngine, rgb: np.ndarray
) -> dict[str, list[Box]]:
    """The faces each detector's still-photo path finds: HOG with find_masked_faces, YuNet after the check."""
    hog, masked = faces(detector, classifier, rgb)
    return {"HOG": hog + masked, "YuNet": yunet_faces(yunet, rgb)[1]}


def classification(
    detector: DlibDetector, classifier: MaskClassifier, yunet: FaceEngine, dataset: str
) -> None:
    """Balanced accuracy over all test photos, and over those where a face was found, per detector."""
    every: dict[str, list[float]] = {"HOG": [], "YuNet": []}
    found: dict[str, list[float]] = {"HOG": [], "YuNet": []}
    for cls, truth in (("with_mask", True), ("without_mask", False)):
        paths = [p for p in sorted((MASK / dataset / cls).iterdir()) if split_of(p.name) == "test"]
        right = {name: {True: 0, False: 0} for name in every}  # by whether a face was found
        total = {name: {True: 0, False: 0} for name in every}
        for path in paths:
            rgb = read_rgb(path)
            for name, boxes in found_faces(detector, classifier, yunet, rgb).items():
                has_face = bool(boxes)
                box = max(boxes, key=lambda b: b.size) if has_face else virtual_box(*rgb.shape[:2])
                total[name][has_face] += 1
                right[name][has_face] += classifier.classify(rgb, [box])[0].mask == truth
        for name in every:
            r, t = right[name], total[name]
            every[name].append((r[True] + r[False]) / len(paths))
            found[name].append(r[True] / max(t[True], 1))
            print(
                f"mask/{dataset} test split, {cls}, {name}: {r[True] + r[False]}/{len(paths)} right; "
                f"face found in {t[True]}, of them {r[True]} right; "
                f"no face found in {t[False]} (classified whole), of them {r[False]} right"
            )
    for name in every:
        print(
            f"mask/{dataset} test split, {name}: "
            f"balanced accuracy {100 * statistics.mean(every[name]):.1f}% on all photos, "
            f"{100 * statistics.mean(found[name]):.1f}% on the faces found"
        )


def finding(detector: DlibDetector, classifier: MaskClassifier, yunet: FaceEngine) -> None:
    for cls in ("with_mask", "without_mask"):
        paths = sorted((MASK / "synthetic" / cls).iterdir())
        hog_found = both_found = extra = test_total = test_found = 0
        yunet_found = checked_found = dropped = two_or_more = test_checked = 0
        for path in paths:
            rgb = read_rgb(path)
            hog, masked = faces(detector, classifier, rgb)
            raw, checked = yunet_faces(yunet, rgb)
            hog_found += bool(hog)
            both_found += bool(hog or masked)
            extra += len(masked)
            yunet_found += bool(raw)
            checked_found += bool(checked)
            dropped += len(raw) - len(checked)
            two_or_more += len(checked) >= 2
            if split_of(path.name) == "test":
                test_total += 1
                test_found += bool(hog or masked)
                test_checked += bool(checked)
        n = len(paths)
        print(
            f"mask/synthetic/{cls}: a face in {hog_found}/{n} ({100 * hog_found / n:.1f}%) by HOG, "
            f"{both_found}/{n} ({100 * both_found / n:.1f}%) with find_masked_faces "
            f"(test split {test_found}/{test_total} = {100 * test_found / test_total:.1f}%); "
            f"{extra} masked faces added"
        )
        print(
            f"mask/synthetic/{cls}: a face in {yunet_found}/{n} ({100 * yunet_found / n:.1f}%) by YuNet, "
            f"{checked_found}/{n} ({100 * checked_found / n:.1f}%) after the check "
            f"(test split {test_checked}/{test_total} = {100 * test_checked / test_total:.1f}%); "
            f"{dropped} boxes dropped by the check; 2 or more faces in {two_or_more}"
        )


def crowd(detector: DlibDetector, classifier: MaskClassifier, yunet: FaceEngine) -> None:
    labels = {
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

    def unmatched(boxes: list[Box], truth: list[Box]) -> int:
        return sum(not any(iou(t, b) >= LABEL_IOU for t in truth) for b in boxes)

    for name, truth in labels.items():
        rgb = read_rgb(CROWD / name)
        hog, masked = faces(detector, classifier, rgb)
        raw, checked = yunet_faces(yunet, rgb)
        found = sum(any(iou(t, b) >= LABEL_IOU for b in hog + masked) for t in truth)
        found_yunet = sum(any(iou(t, b) >= LABEL_IOU for b in checked) for t in truth)
        print(
            f"crowd/{name}: {found}/{len(truth)} labelled faces found by HOG and find_masked_faces, "
            f"{found_yunet}/{len(truth)} by YuNet after the check; boxes matching no label: "
            f"HOG {unmatched(hog, truth)}, find_masked_faces {unmatched(masked, truth)}, "
            f"YuNet {unmatched(raw, truth)} ({unmatched(checked, truth)} after the check)"
        )
    for name in ("dogs.jpg", "bald_guys.jpg"):
        rgb = read_rgb(CROWD / name)
        hog, masked = faces(detector, classifier, rgb)
        raw, checked = yunet_faces(yunet, rgb)
        print(
            f"crowd/{name}: HOG {len(hog)} faces, find_masked_faces {len(masked)}; "
            f"YuNet {len(raw)} faces, {len(checked)} after the check"
        )


def iou(a: Box, b: Box) -> float:
    inter = max(0, min(a.right, b.right) - max(a.left, b.left)) * max(
        0, min(a.bottom, b.bottom) - max(a.top, b.top)
    )
    return inter / (a.width * a.height + b.width * b.height - inter)


def cost(detector: DlibDetector, classifier: MaskClassifier, yunet: FaceEngine) -> None:
    rgb = read_rgb(CROWD / "2007_007763.jpg")
    boxes = [d.box for d in detector.find(rgb, UPSAMPLE)]
    classifier.classify(rgb, boxes)  # load the model
    for batch in (1, 8):
        group = (boxes * 8)[:batch]
        ms = timed(lambda g=group: classifier.classify(rgb, g), 50) / batch
        print(f"classifier: {ms:.2f} ms per face in batches of {batch}")
    frames = [
        letterbox(read_rgb(p))
        for p in (
            CROWD / "2008_002079.jpg",
            MASK / "synthetic" / "with_mask" / "1-with-mask.jpg",
            CROWD / "dogs.jpg",
            CROWD / "2008_001322.jpg",
        )
    ]
    hog_ms, floor_ms, verify_ms, candidates = [], [], [], []
    yunet_ms, check_ms, unsure = [], [], []
    for frame in frames:  # as the pipeline detects: grey, shrunk to LIVE_WIDTH, upsampled
        scale = LIVE_WIDTH / frame.shape[1] * 2**UPSAMPLE
        grey = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), None, fx=scale, fy=scale)
        hog_ms.append(timed(lambda g=grey: detector.find(g, 0, 0.0), 5))
        floor_ms.append(timed(lambda g=grey: detector.find(g, 0, CANDIDATE_FLOOR), 5))
        scored = [(d.box.scaled(1 / scale), d.score) for d in detector.find(grey, 0, CANDIDATE_FLOOR)]
        sure = [b for b, s in scored if s >= 0]
        candidates.append(len(scored) - len(sure))
        verify_ms.append(timed(lambda f=frame, h=sure, c=scored: find_masked_faces(f, h, classifier, c), 5))
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)  # 640 wide: YuNet sees it as it is
        yunet_ms.append(timed(lambda b=bgr: yunet.detector.find(b), 5))
        found = yunet.detector.find(bgr)
        unsure.append(sum(d.score < SURE_SCORE for d in found))
        check_ms.append(timed(lambda b=bgr, f=found: yunet.checked(b, f, rgb=False), 5))
    print(
        f"live 640x480 frame, HOG at detect_width {LIVE_WIDTH} and upsample {UPSAMPLE}: "
        f"{statistics.mean(hog_ms):.0f} ms at cut-off 0, "
        f"{statistics.mean(floor_ms):.0f} ms at floor {CANDIDATE_FLOOR}; "
        f"verifying its {statistics.mean(candidates):.1f} candidates: "
        f"{statistics.mean(verify_ms):.1f} ms (mean of {len(frames)} frames)"
    )
    print(
        f"live 640x480 frame, YuNet at detect_width 640: {statistics.mean(yunet_ms):.1f} ms; "
        f"checking its {statistics.mean(unsure):.1f} boxes scoring < {SURE_SCORE}: "
        f"{statistics.mean(check_ms):.1f} ms (mean of {len(frames)} frames)"
    )


def pipelines(base: Path, find_masked: str = "always", people: bool = False, detector: str = "yunet"):
    """A maker of fresh FrameProcessors as the daemon builds them (one engine and watchlist for all),
    with an empty watchlist or Obama and Biden; HOG at its former detect_width LIVE_WIDTH."""
    from edgeguard.config import load_config
    from edgeguard.faces.engine import FaceEngine
    from edgeguard.live.pipeline import FrameProcessor
    from edgeguard.watchlist.build import build_watchlist, open_cache

    rows = ["Id,Name,phone_number,initial_deposit"]
    (base / "TrainingImage").mkdir(parents=True, exist_ok=True)
    for pid, name, photo in (
        [("1", "Barack Obama", "obama.jpg"), ("2", "Joe Biden", "biden.jpg")] if people else []
    ):
        (base / "TrainingImage" / pid).mkdir(exist_ok=True)
        (base / "TrainingImage" / pid / photo).write_bytes((TESTDATA / "people" / photo).read_bytes())
        rows.append(f"{pid},{name},,")
    (base / "Details").mkdir(exist_ok=True)
    (base / "Details" / "Details.csv").write_text("\n".join(rows) + "\n")
    config_path = base / f"{detector}-{find_masked}.toml"
    pipeline = f"[pipeline]\ndetect_width = {LIVE_WIDTH}\n" if detector == "hog" else ""
    config_path.write_text(
        f'[paths]\nbase_dir = "{base}"\n[recognition]\ndetector = "{detector}"\n'
        f'[mask]\nfind_masked = "{find_masked}"\n{pipeline}'
    )
    config = load_config(config_path)
    engine = FaceEngine(config.recognition, config.mask)
    watchlist = build_watchlist(config, engine, open_cache(config))
    return lambda: FrameProcessor(config, engine, lambda: watchlist)


def counted(make, image: np.ndarray) -> int:
    """The people a fresh pipeline has in view after the first frame (one full detection)."""
    from edgeguard.capture import Frame

    pipeline = make()
    pipeline.process(Frame(image, 0, 0.0, time.time()))
    return pipeline.people_in_view


def live_counting() -> None:
    import tempfile

    labels = {
        image.get("file"): len(list(image.iter("box")))
        for image in ET.parse(CROWD / "training.xml").getroot().iter("image")
    }
    with tempfile.TemporaryDirectory() as tmp:
        for detector, mode in (("yunet", "always"), ("hog", "off"), ("hog", "always")):
            make = pipelines(Path(tmp) / f"{detector}-{mode}", mode, detector=detector)
            parts = []
            for cls in ("with_mask", "without_mask"):
                counts = [
                    counted(make, cv2.imread(str(p))) for p in sorted((MASK / "synthetic" / cls).iterdir())
                ]
                parts.append(
                    f"synthetic/{cls} a face in {100 * sum(c >= 1 for c in counts) / len(counts):.1f}% "
                    f"(more than one in {sum(c > 1 for c in counts)})"
                )
            crowds = ", ".join(
                f"{name} {counted(make, cv2.imread(str(CROWD / name)))}/{n}" for name, n in labels.items()
            )
            dogs = counted(make, cv2.imread(str(CROWD / "dogs.jpg")))
            setting = "YuNet" if detector == "yunet" else f"HOG, find_masked = {mode}"
            print(f"live, {setting}: {'; '.join(parts)}; people counted in crowds {crowds}; dogs.jpg {dogs}")


def live_vote() -> None:
    import tempfile

    from edgeguard.capture import Frame
    from edgeguard.config import EventsConfig
    from edgeguard.events.rules import EventRules

    stage = clip_frame(50)
    pairs = []
    for masked in sorted((MASK / "synthetic" / "with_mask").iterdir()):
        bare = MASK / "synthetic" / "without_mask" / masked.name.replace("-with-mask", "")
        if (
            "-with-mask" in masked.name
            and bare.exists()
            and split_of(masked.name) == split_of(bare.name) == "test"
        ):
            pairs.append((cv2.imread(str(masked)), cv2.imread(str(bare))))
    pasted = Box(PASTE_TOP, PASTE_LEFT + PASTE_SIZE, PASTE_TOP + PASTE_SIZE, PASTE_LEFT)
    for detector in ("yunet", "hog"):
        right = early = late = others = 0
        delays = []  # frames from the mask coming off to the no_mask event
        with tempfile.TemporaryDirectory() as tmp:
            make = pipelines(Path(tmp), people=True, detector=detector)
            for masked, bare in pairs:
                pipeline, rules = (
                    make(),
                    EventRules(EventsConfig(), MaskConfig()),
                )  # the daemon's event rules, default settings
                frames = [paste(stage, masked)] * 90 + [paste(stage, bare)] * 150
                bare = [
                    (n, o.track.box)
                    for n, image in enumerate(frames)
                    for o in rules.due(pipeline.process(Frame(image, n, n * 1000 / 30, time.time())))
                    if o.kind == "no_mask"
                ]
                events = [n for n, box in bare if pasted.contains(box.center)]  # the pasted face's
                others += len(bare) - len(events)
                early += sum(n < 90 for n in events)
                late += sum(n >= 90 for n in events)
                right += [n >= 90 for n in events] == [True]
                delays += [n - 90 for n in events if n >= 90][:1]
        spread = f"median {statistics.median(delays):.0f}, max {max(delays)}" if delays else "none"
        print(
            f"live mask vote, {'YuNet' if detector == 'yunet' else 'HOG'}, "
            f"{len(pairs)} held-apart people masked 3 s then bare 5 s: "
            f"exactly one no_mask after the mask came off for {right}/{len(pairs)}; "
            f"no_mask while masked: {early}, after: {late}; frames (30/s) from mask off to event: {spread}; "
            f"no_mask for the stage frame's own faces: {others}"
        )


def clip_frame(number: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(TESTDATA / "video" / "short_hamilton_clip.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, number)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def paste(background: np.ndarray, face: np.ndarray, size: int = PASTE_SIZE) -> np.ndarray:
    image = background.copy()
    image[PASTE_TOP : PASTE_TOP + size, PASTE_LEFT : PASTE_LEFT + size] = cv2.resize(face, (size, size))
    return image


def letterbox(rgb: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.zeros((height, width, 3), np.uint8)
    top, left = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    frame[top : top + small.shape[0], left : left + small.shape[1]] = small
    return frame


def timed(fn, repeats: int) -> float:
    """Median milliseconds of fn() over repeats runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
