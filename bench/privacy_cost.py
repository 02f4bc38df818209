"""Benchmark: what encryption at rest ([privacy] encrypt) costs.

Prints, each the median of ROUNDS rounds:
- one capture saved (face crop and frame JPEG-encoded, sidecar, three private files) and read back
  (face, frame, sidecar), without and with the data key;
- one cached encoding: sealing and opening the encoding cache of N_PHOTOS entries, per entry;
- the warm start of a N_PHOTOS-photo watchlist as far as encryption touches it: reading every photo to
  key it (SHA-256 of its bytes) and loading the encoding cache, plain and sealed, and the ratio (target:
  sealed at most 20% slower).  Detection and encoding are not run: a warm start does neither;
- the event log: one event appended (its personal fields sealed) and a search by part of a name over
  N_EVENTS events (the filter opens every name inside SQLite), plain and sealed.

Run: python bench/privacy_cost.py   (a few seconds; writes only to a temporary folder)
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeguard.common.sealing import Sealer
from edgeguard.events.event import Event
from edgeguard.store.event_log import EventFilter, EventLog
from edgeguard.store.face_captures import CaptureStore
from edgeguard.watchlist.cache import CacheEntry, EncodingCache, photo_digest

ROUNDS = 7
CAPTURES = 20
N_PHOTOS = 1000
N_EVENTS = 10_000
PHOTO_BYTES = 60_000  # a typical phone photo cut down to a watchlist photo


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def median(work) -> float:
    return statistics.median(timed(work) for _ in range(ROUNDS))


def capture_cost(folder: Path, sealer: Sealer | None) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    crop = frame[100:300, 200:400].copy()
    store = CaptureStore(folder, 30, 10_000, sealer)
    saved = []

    def save() -> None:
        for n in range(CAPTURES):
            saved.append(
                store.save(1_790_000_000 + n + len(saved), "cam", crop, frame, {"box": [1, 2, 3, 4]})
            )

    def read() -> None:
        for files in saved[-CAPTURES:]:
            capture = store.of(files.face)
            capture.read("face"), capture.read("frame"), capture.sidecar_data()

    return median(save) / CAPTURES, median(read) / CAPTURES


def watchlist(folder: Path, sealer: Sealer | None) -> tuple[float, float]:
    """(warm start: photos keyed and cache loaded; cache save) for N_PHOTOS photos."""
    photos = folder / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    cache = EncodingCache(folder / "cache", "bench", sealer)
    for n in range(N_PHOTOS):
        path = photos / f"{n}.jpg"
        if not path.exists():
            path.write_bytes(rng.bytes(PHOTO_BYTES))
        cache.put(photo_digest(path.read_bytes()), CacheEntry(rng.normal(size=128).astype(np.float32)))
    keep = set(cache._entries)

    def save() -> None:
        cache._dirty = True
        cache.save(keep)

    saving = median(save)

    def warm_start() -> None:
        digests = {photo_digest(p.read_bytes()) for p in photos.iterdir()}
        again = EncodingCache(folder / "cache", "bench", sealer)
        again.load()
        assert all(again.get(d) is not None for d in digests)

    return median(warm_start), saving


def event_log_cost(path: Path, sealer: Sealer | None) -> tuple[float, float]:
    """(one event appended; one search by part of a name over N_EVENTS events)."""
    log = EventLog(path, sealer=sealer)
    try:
        for n in range(N_EVENTS):
            name = f"Person {n % 500}"
            log.append(
                Event("known_face", 1_790_000_000.0 + n, "gate", "Gate", person_id=str(n % 500), name=name)
            )

        def append() -> None:
            for n in range(100):
                log.append(
                    Event("known_face", 1_800_000_000.0 + n, "gate", "Gate", person_id="7", name="Ann Lee")
                )

        def search() -> None:
            log.search(EventFilter(person="Person 42"))

        return median(append) / 100, median(search)
    finally:
        log.close()


def main() -> None:
    sealer = Sealer(os.urandom(32), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        plain_save, plain_read = capture_cost(base / "plain", None)
        sealed_save, sealed_read = capture_cost(base / "sealed", sealer)
        print(f"capture saved: {plain_save * 1000:.2f} ms plain, {sealed_save * 1000:.2f} ms sealed")
        print(f"capture read back: {plain_read * 1000:.2f} ms plain, {sealed_read * 1000:.2f} ms sealed")
        plain_start, plain_cache = watchlist(base / "wl", None)
        sealed_start, sealed_cache = watchlist(base / "wl", sealer)
        print(
            f"encoding cache of {N_PHOTOS}: saved in {plain_cache * 1000:.1f} ms plain, "
            f"{sealed_cache * 1000:.1f} ms sealed ({(sealed_cache - plain_cache) / N_PHOTOS * 1e6:+.2f} us "
            "per encoding)"
        )
        print(
            f"warm start of {N_PHOTOS} photos (keyed + cache loaded): {plain_start * 1000:.1f} ms plain, "
            f"{sealed_start * 1000:.1f} ms sealed "
            f"({(sealed_start / plain_start - 1) * 100:+.1f}%; target <= +20%)"
        )
        plain_append, plain_search = event_log_cost(base / "plain.db", None)
        sealed_append, sealed_search = event_log_cost(base / "sealed.db", sealer)
        print(f"event appended: {plain_append * 1000:.2f} ms plain, {sealed_append * 1000:.2f} ms sealed")
        print(
            f"event log search by name over {N_EVENTS} events: {plain_search * 1000:.1f} ms plain, "
            f"{sealed_search * 1000:.1f} ms sealed"
        )


if __name__ == "__main__":
    main()
