"""Benchmark: how long one face encoding takes with the dlib that is installed.

Prints the dlib build as `edgeguard check` does (version, the prebuilt dlib-bin
wheel or a source build, BLAS, LAPACK, AVX, NEON, CUDA), then the median and
90th percentile of `FaceEncoder.encode` on one face of a real photo (5-point
landmarks and the ResNet descriptor, jitters 1), and of the landmarks alone,
over CALLS calls after WARMUP. The face is found once, with dlib's HOG
detector, so that only the encoder is timed.

Compare builds by running it from each venv; `taskset -c 0` pins it to one
core (OpenBLAS otherwise runs a thread per core it may use, which costs more
than it gains when the other core is busy; OPENBLAS_NUM_THREADS=1 does the same).

Run: python bench/encoding_speed.py   (taskset -c 0 python bench/encoding_speed.py)
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable

import dlib
import numpy as np
from PIL import Image

from edgeguard.faces.box import Box
from edgeguard.faces.dlib_models import model_path
from edgeguard.faces.encode import FaceEncoder
from edgeguard.service.doctor import dlib_build

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "people" / "obama.jpg"
WARMUP = 5
CALLS = 50


def main() -> None:
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    [rect] = dlib.get_frontal_face_detector()(rgb, 1)
    box = Box.from_dlib(rect)
    print(f"dlib: {dlib_build().describe()}")
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"cores this process may use: {len(os.sched_getaffinity(0))} (OPENBLAS_NUM_THREADS {threads})")
    print(f"photo: {PHOTO.name} {rgb.shape[1]}x{rgb.shape[0]}, face {box.width}x{box.height} px")
    encoder = FaceEncoder()
    report("encoding (landmarks + descriptor, jitters 1)", timed(lambda: encoder.encode(rgb, [box], jitters=1)))
    predictor = dlib.shape_predictor(model_path("landmarks_5"))
    report("landmarks only (5-point)", timed(lambda: predictor(rgb, rect)))


def timed(call: Callable[[], object]) -> list[float]:
    """Milliseconds of each of CALLS calls, after WARMUP untimed ones (model loading, caches)."""
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(what: str, times: list[float]) -> None:
    p90 = statistics.quantiles(times, n=10)[-1]
    print(f"{what}: median {statistics.median(times):.2f} ms, p90 {p90:.2f} ms over {len(times)} calls")


if __name__ == "__main__":
    main()
