"""Benchmark: how long one face encoding takes, with dlib and with OpenCV's DNN.

Prints the dlib build as `edgeguard check` does (version, the prebuilt dlib-bin
wheel or a source build, BLAS, LAPACK, AVX, NEON, CUDA), then the median and
90th percentile of `FaceEncoder.encode` on one face of a real photo (5-point
landmarks and the ResNet descriptor, jitters 1), and of the landmarks alone,
over CALLS calls after WARMUP: for encoder = "dlib" (the dlib that is
installed) and encoder = "opencv" (dlib's network run by OpenCV's DNN) with 1
OpenCV thread and with all, one face per call and BATCHED faces per call (a
frame's faces share one forward pass).  The face is found once, with dlib's
HOG detector, so that only the encoder is timed.  Then the largest Euclidean
distance between the two encoders' encodings of every face in people/ and of
one photo of each lfw10 person.

Then encodings per second with several threads, as several cameras' threads
encode (OpenCV with no threads of its own, as the daemon runs it with two or
more cameras): 1 thread in process, 2 threads in process (one encoder each;
dlib holds the GIL while it encodes, so they take turns; OpenCV does not),
and 2 threads sharing one dlib encoder and an `EncoderPool(2)` (the ResNet in
worker processes), each the median of ROUNDS rounds taken in turns; then how
long the pool took to start and warm up, and each worker's memory (RSS, and
PSS: its share of pages shared with others) after those encodings and after
one call with BATCH faces (dlib keeps the buffers of the largest batch it
ran).  That part needs two free cores: under `taskset -c 0` the workers
inherit the one core.

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

import cv2
import dlib
import numpy as np
from PIL import Image

from edgeguard.common.dlib_models import model_path
from edgeguard.detect import Box
from edgeguard.faces.encode import FaceEncoder
from edgeguard.faces.encoder_pool import EncoderPool

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
PHOTO = TESTDATA / "people" / "obama.jpg"
WARMUP = 5
CALLS = 50
THREAD_CALLS = 20  # encodings per thread when comparing threads
ROUNDS = 3
BATCH = 16  # faces in one call: dlib's own batch size
BATCHED = 4  # faces per call when timing a frame's faces in one forward pass


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
    print(f"OpenCV {cv2.__version__}, {cv2.getNumberOfCPUs()} CPUs, default threads {cv2.getNumThreads()}")
    encoder = FaceEncoder("dlib")
    report(
        "dlib encoder (landmarks + descriptor, jitters 1)",
        timed(lambda: encoder.encode(rgb, [box], jitters=1)),
    )
    all_threads = cv2.getNumThreads()
    opencv = FaceEncoder("opencv")
    for threads in (1, all_threads):
        cv2.setNumThreads(threads)
        report(
            f"opencv encoder, {threads} thread(s), 1 face per call", timed(lambda: opencv.encode(rgb, [box]))
        )
        report(
            f"opencv encoder, {threads} thread(s), {BATCHED} faces per call (ms per call / {BATCHED})",
            [t / BATCHED for t in timed(lambda: opencv.encode(rgb, [box] * BATCHED))],
        )
    cv2.setNumThreads(all_threads)
    predictor = dlib.shape_predictor(model_path("landmarks_5"))
    report("landmarks only (5-point)", timed(lambda: predictor(rgb, rect)))
    largest_distance(encoder, opencv)
    compare_threads(rgb, box)


def largest_distance(dlib_encoder: FaceEncoder, opencv: FaceEncoder) -> None:
    """The largest Euclidean distance between the two encoders' encodings of real faces."""
    from edgeguard.config import RecognitionConfig
    from edgeguard.faces.engine import FaceEngine
    from edgeguard.faces.photos import load_photo

    engine = FaceEngine(RecognitionConfig())
    photos = sorted((TESTDATA / "people").glob("*.jpg"))
    photos += [sorted(d.glob("*.jpg"))[0] for d in sorted((TESTDATA / "lfw10").iterdir()) if d.is_dir()]
    largest, faces = 0.0, 0
    for photo in photos:
        rgb = load_photo(photo, RecognitionConfig().max_image_pixels)
        boxes = [d.box for d in engine.find_in_photo(rgb)]
        if boxes:
            diff = opencv.encode(rgb, boxes) - dlib_encoder.encode(rgb, boxes)
            largest = max(largest, float(np.linalg.norm(diff, axis=1).max()))
            faces += len(boxes)
    print(f"largest distance opencv - dlib: {largest:.2e} over {faces} faces of {len(photos)} photos")


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
    cv2.setNumThreads(0)  # as the daemon with two or more cameras: OpenCV works on the calling thread
    started = time.perf_counter()
    with EncoderPool(2) as pool:
        startup = time.perf_counter() - started
        shared = FaceEncoder("dlib", pool)  # one for both threads: its lock is held only while it cuts chips
        ways = {
            "1 thread, dlib": [FaceEncoder("dlib")],
            "2 threads, dlib": [
                FaceEncoder("dlib"),
                FaceEncoder("dlib"),
            ],  # one each: a shared one would lock
            "2 threads, dlib EncoderPool(2)": [shared, shared],
            "1 thread, opencv": [FaceEncoder("opencv")],
            "2 threads, opencv": [FaceEncoder("opencv"), FaceEncoder("opencv")],  # each camera has its own
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
    single = statistics.median(rates["1 thread, dlib"])
    for way, rate in rates.items():
        print(
            f"  {way + ':':32} {statistics.median(rate):6.2f}  ({statistics.median(rate) / single:.2f}x dlib)"
        )
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
