"""Benchmark: how long one face encoding takes with the dlib that is installed.

Prints the dlib build as `edgeguard check` does (version, the prebuilt dlib-bin
wheel or a source build, BLAS, LAPACK, AVX, NEON, CUDA), then the median and
90th percentile of `FaceEncoder.encode` on one face of a real photo (5-point
landmarks and the ResNet descriptor, jitters 1), and of the landmarks alone,
over CALLS calls after WARMUP. The face is found once, with dlib's HOG
detector, so that only the encoder is timed.

Then encodings per second with several threads, as several cameras' threads
encode: 1 thread in process, 2 threads in process (one encoder each; dlib
holds the GIL while it encodes, so they take turns), and 2 threads sharing one
encoder and an `EncoderPool(2)` (the ResNet in worker processes), each the
median of ROUNDS rounds taken in turns; then how long the pool took to start
and warm up, and each worker's memory (RSS, and PSS: its share of pages shared
with others) after those encodings and after one call with BATCH faces (dlib
keeps the buffers of the largest batch it ran).  That part needs two free
cores: under `taskset -c 0` the workers inherit the one core.

Compare builds by running it from each venv; `taskset -c 0` pins it to one
core (OpenBLAS otherwise runs a thread per core it may use, which costs more
than it gains when the other core is busy; OPENBLAS_NUM_THREADS=1 does the same).

Run: python bench/encoding_speed.py   (taskset -c 0 python bench/encoding_speed.py)
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from edgeguard.common.dlib_models import model_path
from edgeguard.detect import Box
from edgeguard.faces.encode import FaceEncoder
from edgeguard.faces.encoder_pool import EncoderPool

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "people" / "obama.jpg"
WARMUP = 5
CALLS = 50
THREAD_CALLS = 20  # encodings per thread when comparing threads
ROUNDS = 3
BATCH = 16  # faces in one call: dlib's own batch size


def main() -> None:
    # Imported here, not above: the pool's workers are spawned, and import this script's top level.
    from edgeguard.service.doctor import dlib_build

    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    [rect] = dlib.get_frontal_face_detector()(rgb, 1)
    box = Box.from_dlib(rect)
    print(f"dlib: {dlib_build().describe()}")
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    print(f"cores this process may use: {len(os.sched_getaffinity(0))} (OPENBLAS_NUM_THREADS {threads})")
    print(f"photo: {PHOTO.name} {rgb.shape[1]}x{rgb.shape[0]}, face {box.width}x{box.height} px")
    encoder = FaceEncoder()
    report(
        "encoding (landmarks + descriptor, jitters 1)", timed(lambda: encoder.encode(rgb, [box], jitters=1))
    )
    predictor = dlib.shape_predictor(model_path("landmarks_5"))
    report("landmarks only (5-point)", timed(lambda: predictor(rgb, rect)))
    compare_threads(rgb, box)


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


def compare_threads(rgb: np.ndarray, box: Box) -> None:
    """Encodings/s in process with 1 and 2 threads and with 2 threads on an EncoderPool(2); the pool's
    cost."""
    started = time.perf_counter()
    with EncoderPool(2) as pool:
        startup = time.perf_counter() - started
        shared = FaceEncoder(pool)  # one for both threads: its lock is held only while it cuts the chips
        ways = {
            "1 thread, in process": [FaceEncoder()],
            "2 threads, in process": [FaceEncoder(), FaceEncoder()],  # one each: a shared one would lock
            "2 threads, EncoderPool(2)": [shared, shared],
        }
        rates: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(ROUNDS):  # in turns, so that a busy moment on the machine does not favour one way
            for way, encoders in ways.items():
                rates[way].append(throughput(encoders, rgb, box))
        after_runs = [worker_memory(pid) for pid in pool.pids]
        shared.encode(rgb, [box] * BATCH)  # one call to one worker
        after_batch = max(worker_memory(pid) for pid in pool.pids)  # by RSS: the one that ran it
    print(
        f"\nencodings/s, jitters 1, one face per call, {THREAD_CALLS} calls per thread, "
        f"median of {ROUNDS} rounds:"
    )
    single = statistics.median(rates["1 thread, in process"])
    for way, rate in rates.items():
        print(f"  {way + ':':28} {statistics.median(rate):6.2f}  ({statistics.median(rate) / single:.2f}x)")
    print(f"EncoderPool(2) started and warmed up in {startup:.2f} s")
    for rss, pss in after_runs:
        print(f"  a worker: RSS {rss:.0f} MB, PSS {pss:.0f} MB")
    rss, pss = after_batch
    print(f"  the worker that then encoded {BATCH} faces in one call: RSS {rss:.0f} MB, PSS {pss:.0f} MB")


def throughput(encoders: list[FaceEncoder], rgb: np.ndarray, box: Box) -> float:
    """Encodings per second of one thread per encoder, each making THREAD_CALLS calls, started together."""
    for encoder in encoders:
        encoder.encode(rgb, [box])  # untimed: the first call loads the models
    start = threading.Barrier(len(encoders) + 1)

    def run(encoder: FaceEncoder) -> None:
        start.wait()
        for _ in range(THREAD_CALLS):
            encoder.encode(rgb, [box], jitters=1)

    threads = [threading.Thread(target=run, args=(encoder,)) for encoder in encoders]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(encoders) * THREAD_CALLS / (time.perf_counter() - began)


def worker_memory(pid: int) -> tuple[float, float]:
    """A process's resident memory and its proportional share of it (PSS), in MB, from /proc."""
    rss = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:")
    )
    pss = next(
        line for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines() if line.startswith("Pss:")
    )
    return int(rss.split()[1]) / 1024, int(pss.split()[1]) / 1024


if __name__ == "__main__":
    main()
