"""Benchmark: watchlist accuracy of `edgeguard analyze` on LFW.

Watchlist: photos _0001-_0003 of the first 5 people (by name) in lfw10.
Known: every other photo of those 5 must be named correctly.
Unknown: every photo of the other 5 people must be reported as unknown.
In each photo the face nearest the centre is scored (LFW centres the subject;
other faces in the background are not the labelled person).

Both detectors are measured in the same run, side by side: `hog` (dlib's) and
`yunet` (the default); encodings are dlib's either way.

Run: python bench/recognition_accuracy.py   (prints both figures for each detector)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
ENROLLED_PHOTOS = 3


def main() -> int:
    for detector in ("hog", "yunet"):
        print(f"--- detector = {detector}")
        measure(detector)
    return 0


def measure(detector: str) -> None:
    people = sorted(p.name for p in (TESTDATA / "lfw10").iterdir() if p.is_dir())
    enrolled, strangers = people[:5], people[5:]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = make_site(base, enrolled, detector)
        tests = {photo: name for name in enrolled for photo in photos(name)[ENROLLED_PHOTOS:]}
        tests.update({photo: None for name in strangers for photo in photos(name)})
        started = time.perf_counter()
        results = analyze(config, list(tests))
        elapsed = time.perf_counter() - started
    ids = {str(i): name for i, name in enumerate(enrolled, start=1)}
    known_ok = unknown_ok = 0
    for photo, truth in tests.items():
        face = central_face(results[str(photo)])
        said = ids.get(face["id"]) if face and face["id"] else None
        if truth is not None and said == truth:
            known_ok += 1
        elif truth is None and face is not None and said is None:
            unknown_ok += 1
        else:
            got = said or ("no face" if face is None else "unknown")
            distance = f" (distance {face['distance']})" if face else ""
            print(f"  miss: {photo.name}: expected {truth or 'unknown'}, got {got}{distance}")
    n_known = sum(1 for t in tests.values() if t is not None)
    n_unknown = len(tests) - n_known
    print(f"watchlist: {len(enrolled)} people x {ENROLLED_PHOTOS} photos ({', '.join(enrolled)})")
    print(
        f"enrolled people named correctly: {known_ok}/{n_known} = {100 * known_ok / n_known:.1f}%  "
        f"(target >= 98%)"
    )
    print(
        f"people not enrolled reported unknown: {unknown_ok}/{n_unknown} = "
        f"{100 * unknown_ok / n_unknown:.1f}%  (target >= 98%)"
    )
    print(f"edgeguard analyze on {len(tests)} photos: {elapsed:.1f} s including start-up and enrolment")


def photos(name: str) -> list[Path]:
    return sorted((TESTDATA / "lfw10" / name).glob("*.jpg"))


def make_site(base: Path, enrolled: list[str], detector: str) -> Path:
    rows = ["Id,Name,phone_number,initial_deposit,category"]
    for pid, name in enumerate(enrolled, start=1):
        folder = base / "TrainingImage" / str(pid)
        folder.mkdir(parents=True)
        for photo in photos(name)[:ENROLLED_PHOTOS]:
            (folder / photo.name).write_bytes(photo.read_bytes())
        rows.append(f"{pid},{name.replace('_', ' ')},,,staff")
    (base / "Details").mkdir()
    (base / "Details" / "Details.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = base / "edgeguard.toml"
    config.write_text(
        f'[paths]\nbase_dir = "{base}"\n[watchlist]\nwatch = false\n[recognition]\ndetector = "{detector}"\n',
        encoding="utf-8",
    )
    return config


def analyze(config: Path, images: list[Path]) -> dict[str, dict]:
    cmd = [sys.executable, "-m", "edgeguard", "--config", str(config), "analyze", "--json", *map(str, images)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode not in (0, 1):
        sys.exit(f"edgeguard analyze failed ({out.returncode}):\n{out.stderr}")
    return {r["image"]: r for r in map(json.loads, out.stdout.splitlines())}


def central_face(result: dict) -> dict | None:
    faces = result.get("faces") or []
    if not faces:
        return None

    def off_centre(face: dict) -> float:
        top, right, bottom, left = face["box"]
        return ((top + bottom) / 2 - 125) ** 2 + ((left + right) / 2 - 125) ** 2

    return min(faces, key=off_centre)


if __name__ == "__main__":
    raise SystemExit(main())
