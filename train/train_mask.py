"""Train edgeguard's mask model and export it to edgeguard/models/mask_classifier.onnx.

Run from the project root, in an environment with PyTorch (training only; the
device runs the ONNX file with OpenCV), see train/README.md:

    .trainvenv/bin/python train/train_mask.py --data ../shared/testdata/mask \
        --project-python .venv/bin/python

1. train/prepare_mask.py (run by --project-python, which has dlib) cuts a
   region around each photo's face box and around false face candidates.
2. A small CNN learns three classes, no mask / mask / not a face, from the
   "train" split of mask/real and mask/synthetic with augmentation.  The
   "val" split is watched; the "test" split (a fifth of each set by file-name
   hash) is used only for the final figures.
3. The network is exported to ONNX (opset 13), checked against OpenCV's DNN
   module, and the figures go to the model card's metadata file, with the
   threshold for find_masked_faces's face check chosen on the validation split
   (face_threshold), to be copied to edgeguard.mask.FACE_THRESHOLD.

Everything is seeded; on the same machine and library versions a rerun gives
the same model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from edgeguard.detect import Box  # noqa: E402
from edgeguard.masks.classifier import INPUT_SIZE, MODEL_PATH, NOT_FACE, crop_face, to_blob  # noqa: E402

log = logging.getLogger("train_mask")

SEED = 20260101
EPOCHS = 24
BATCH = 64
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 5e-4
REGION_BOX = Box(32, 96, 96, 32)  # where prepare_mask.py puts the face box in its 128 px regions
CLASS_NAMES = ("no_mask", "mask", "not_face")
FACE_THRESHOLDS = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01)
MAX_FALSE_FACES = 0.005


class MaskNet(nn.Module):
    """Five 3x3 conv blocks (16-128 channels), global average pooling, a linear layer: ~250k weights."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, 16, 32, 64, 128, 128]
        for i, (cin, cout) in enumerate(zip(channels, channels[1:])):
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            if i < len(channels) - 2:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(channels[-1], len(CLASS_NAMES)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def augment(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A crop as a detector might have framed the face in another photo, in other light."""
    size = region.shape[0]
    if rng.random() < 0.3:  # a tight crop: what lies outside it repeats its edge
        top, right, bottom, left = (
            int(v + s * size / 2 * rng.uniform(-0.05, 0.25)) for v, s in zip((32, 96, 96, 32), (-1, 1, 1, -1))
        )
        inner = region[max(top, 0) : min(bottom, size), max(left, 0) : min(right, size)]
        region = cv2.copyMakeBorder(
            inner,
            max(top, 0),
            size - min(bottom, size),
            max(left, 0),
            size - min(right, size),
            cv2.BORDER_REPLICATE,
        )
    angle = rng.uniform(-15, 15)
    rotation = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    region = cv2.warpAffine(
        region, rotation, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    side = 64 * rng.uniform(0.85, 1.2)
    cx, cy = 64 + rng.uniform(-0.1, 0.1) * side, 64 + rng.uniform(-0.1, 0.1) * side
    aspect = rng.uniform(0.9, 1.1)
    box = Box(
        int(cy - side * aspect / 2),
        int(cx + side / aspect / 2),
        int(cy + side * aspect / 2),
        int(cx - side / aspect / 2),
    )
    crop = crop_face(region, box)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.3:  # a small or distant face, scaled up
        small = int(rng.uniform(14, 40))
        crop = cv2.resize(
            cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA), (INPUT_SIZE, INPUT_SIZE)
        )
    if rng.random() < 0.2:
        crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.5, 1.5))
    crop = crop.astype(np.float32)
    if rng.random() < 0.1:  # grey, as from a night camera
        crop = np.repeat(crop.mean(axis=2, keepdims=True), 3, axis=2)
    else:
        crop *= rng.uniform(0.85, 1.15, size=3)  # colour cast
    crop = crop * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40)  # contrast, brightness
    crop += rng.normal(0, rng.uniform(0, 6), crop.shape)
    return np.clip(crop, 0, 255).astype(np.uint8)


def plain(region: np.ndarray) -> np.ndarray:
    """The crop MaskClassifier.classify cuts around the box."""
    return crop_face(region, REGION_BOX)


def blob(crops: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(to_blob(crops, rgb=True))


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))


def predict(model: nn.Module, regions: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = [
            torch.softmax(model(blob([plain(r) for r in regions[i : i + 256]])), 1).numpy()
            for i in range(0, len(regions), 256)
        ]
    return np.concatenate(out)


def evaluate(probs: np.ndarray, labels: np.ndarray, datasets: np.ndarray) -> dict[str, float]:
    """Balanced accuracy of the mask decision on faces (P(mask | face) >= 0.5) per data set; face/not-face
    accuracy."""
    result = {}
    faces = labels != NOT_FACE
    mask_pred = (probs[:, 1] >= probs[:, 0]).astype(int)
    for name in ("real", "synthetic"):
        sel = faces & (datasets == name)
        result[f"{name}_balanced_accuracy"] = balanced_accuracy(labels[sel], mask_pred[sel])
        result[f"{name}_faces"] = int(sel.sum())
    is_face = probs[:, NOT_FACE] < 0.5
    result["face_recall"] = float(is_face[faces].mean())
    result["not_face_rejected"] = float((~is_face[~faces]).mean()) if (~faces).any() else float("nan")
    return result


def face_threshold(probs: np.ndarray, labels: np.ndarray) -> float:
    """The largest P(not a face) cut-off letting at most MAX_FALSE_FACES of the false candidates through.

    A false candidate passes if it is taken for a face with a mask, as in
    find_masked_faces.  Photos and frames give about 10-20 candidates each, so
    0.5% keeps false faces to about one in ten frames.
    """
    negatives = probs[labels == NOT_FACE]
    masked = negatives[:, 1] >= negatives[:, 0]
    for cut in FACE_THRESHOLDS:
        if np.mean(masked & (negatives[:, NOT_FACE] < cut)) <= MAX_FALSE_FACES:
            return cut
    return FACE_THRESHOLDS[-1]


def train(data: dict[str, np.ndarray]) -> MaskNet:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    sel = data["split"] == "train"
    regions, labels = data["region"][sel], data["label"][sel]
    counts = np.bincount(labels, minlength=3)
    weights = torch.tensor(counts.sum() / (3 * counts), dtype=torch.float32)
    log.info("training on %d samples (no mask %d, mask %d, not a face %d)", len(labels), *counts)
    model = MaskNet()
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps = EPOCHS * ((len(labels) + BATCH - 1) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, LEARNING_RATE, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    val = data["split"] == "val"
    for epoch in range(EPOCHS):
        start = time.time()
        model.train()
        order = rng.permutation(len(labels))
        total = 0.0
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            x = blob([augment(regions[j], rng) for j in idx])
            loss = loss_fn(model(x), torch.from_numpy(labels[idx]).long())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        if epoch % 4 == 3 or epoch == EPOCHS - 1:
            figures = evaluate(predict(model, data["region"][val]), data["label"][val], data["dataset"][val])
            log.info(
                "epoch %d: loss %.4f, val %s (%.0f s)",
                epoch + 1,
                total / len(labels),
                {k: round(v, 4) for k, v in figures.items()},
                time.time() - start,
            )
    return model


def export(model: MaskNet, path: Path, check_regions: np.ndarray) -> float:
    """Write the ONNX file and return the largest difference between OpenCV's and PyTorch's outputs."""
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(
        model,
        dummy,
        str(path),
        opset_version=13,
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    x = to_blob([plain(r) for r in check_regions], rgb=True)
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(x)
    ours = net.forward()
    with torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    return float(np.abs(ours - theirs).max())


def onnx_probabilities(path: Path, regions: np.ndarray) -> np.ndarray:
    net = cv2.dnn.readNetFromONNX(str(path))
    out = []
    for i in range(0, len(regions), 128):
        net.setInput(to_blob([plain(r) for r in regions[i : i + 128]], rgb=True))
        logits = net.forward()
        e = np.exp(logits - logits.max(1, keepdims=True))
        out.append(e / e.sum(1, keepdims=True))
    return np.concatenate(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, required=True, help="the mask test-data folder (real/, synthetic/)"
    )
    parser.add_argument(
        "--project-python",
        default=os.environ.get("EDGEGUARD_PYTHON", sys.executable),
        help="a Python with edgeguard's dependencies (dlib) for prepare_mask.py",
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/edgeguard-mask-train"), help="scratch folder for the samples"
    )
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument(
        "--reuse-samples", action="store_true", help="skip prepare_mask.py if its output exists"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    samples = args.work / "samples.npz"
    if not (args.reuse_samples and samples.exists()):
        subprocess.run(
            [
                args.project_python,
                str(ROOT / "train" / "prepare_mask.py"),
                "--data",
                str(args.data),
                "--out",
                str(args.work),
            ],
            check=True,
        )
    data = dict(np.load(samples))
    started = time.time()
    model = train(data)
    difference = export(model, args.out, data["region"][data["split"] == "val"][:64])
    log.info(
        "exported %s (%d bytes); OpenCV vs PyTorch max logit difference %.2e",
        args.out,
        args.out.stat().st_size,
        difference,
    )
    figures, probs = {}, {}
    for split in ("val", "test"):
        sel = data["split"] == split
        probs[split] = onnx_probabilities(args.out, data["region"][sel])
        figures[split] = evaluate(probs[split], data["label"][sel], data["dataset"][sel])
        log.info(
            "%s (OpenCV, crops from prepare_mask.py): %s",
            split,
            {k: round(v, 4) for k, v in figures[split].items()},
        )
    cut = face_threshold(probs["val"], data["label"][data["split"] == "val"])
    log.info("face threshold by the validation rule: P(not a face) < %s (edgeguard.mask.FACE_THRESHOLD)", cut)
    meta = {
        "classes": list(CLASS_NAMES),
        "input": {
            "size": INPUT_SIZE,
            "order": "RGB",
            "scale": "(x - 127.5) / 127.5",
            "crop": "edgeguard.mask.crop_face",
        },
        "onnx_sha256": hashlib.sha256(args.out.read_bytes()).hexdigest(),
        "seed": SEED,
        "epochs": EPOCHS,
        "training_seconds": round(time.time() - started),
        "samples": {s: int((data["split"] == s).sum()) for s in ("train", "val", "test")},
        "opencv_vs_torch_max_logit_difference": difference,
        "face_threshold": cut,
        "figures": figures,
        "torch": torch.__version__,
        "opencv": cv2.__version__,
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
