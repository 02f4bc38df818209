"""Benchmark: searching the past by face (edgeguard.store.face_index) at 10k, 100k and 1M stored faces.

Synthetic encodings (the time depends only on the shapes; the hit quality is tested on real photos in
tests/test_search.py), spread over two cameras and a year.  For each size: the memory the index takes (its
arrays, and the process's resident memory added while building it), and the median and 95th percentile
time of one search, over every face and limited to one camera and the last 30 days.

Run: python bench/search_speed.py   (prints the figures; about a minute and 1 GB of memory at 1M)
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path

import numpy as np

from edgeguard.common.match_rule import MatchThresholds
from edgeguard.store.face_captures import CaptureFolder
from edgeguard.store.face_index import FaceIndex, SearchFilter

SIZES = (10_000, 100_000, 1_000_000)
YEAR = 365 * 86400.0


class NoEvents:
    def after(self, seq: int, limit: int) -> list:
        return []


def rss_mb() -> float:
    """Peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(size: int, rng: np.random.Generator) -> FaceIndex:
    index = FaceIndex(NoEvents(), CaptureFolder(Path("/nonexistent")), MatchThresholds())
    now = time.time()
    step = 50_000
    for start in range(0, size, step):
        n = min(step, size - start)
        encodings = rng.normal(0, 0.09, (n, 128)).astype(np.float32)
        seqs = np.arange(start + 1, start + n + 1)
        times = now - YEAR + YEAR * seqs / size
        camera = "gate" if (start // step) % 2 == 0 else "till"
        index.add_encodings(seqs, times, camera, camera, encodings)
    return index


def timed(index: FaceIndex, queries: np.ndarray, where: SearchFilter) -> tuple[float, float]:
    spent = []
    for query in queries:
        started = time.perf_counter()
        index.search(query, where)
        spent.append(time.perf_counter() - started)
    spent.sort()
    return statistics.median(spent) * 1000, spent[int(0.95 * (len(spent) - 1))] * 1000


def main() -> None:
    rng = np.random.default_rng(0)
    print(
        f"{'faces':>9} {'index MB':>9} {'per 100k':>9} {'RSS +MB':>8} {'all: median/p95 ms':>19} "
        f"{'1 camera, 30 d':>15}"
    )
    for size in SIZES:
        before = rss_mb()
        index = build(size, rng)
        grown = rss_mb() - before
        queries = rng.normal(0, 0.09, (20 if size >= 1_000_000 else 50, 128)).astype(np.float32)
        every = timed(index, queries, SearchFilter())
        some = timed(index, queries, SearchFilter(since=time.time() - 30 * 86400, camera="gate"))
        mb = index.nbytes / 1e6
        print(
            f"{size:>9,} {mb:>9.1f} {mb * 100_000 / size:>9.1f} {grown:>8.0f} "
            f"{every[0]:>9.1f}/{every[1]:<9.1f} {some[0]:>7.1f}/{some[1]:<7.1f}"
        )
        del index


if __name__ == "__main__":
    main()
