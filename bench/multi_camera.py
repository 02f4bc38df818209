"""Benchmark: one daemon watching 1, 2 and 4 cameras, each replaying the Hamilton clip as fast as possible.

Each camera is a `[[camera]]` table whose source is short_hamilton_clip.mp4
(not realtime: a file's pipeline takes every frame, so a camera's fps is how
fast its thread gets through the clip while the others run).  `edgeguard run`
runs in its own process with Lin-Manuel Miranda enrolled; per camera its fps
(from the daemon's "camera X: stopped after N frames (F fps)" line) and the
frame of its first known_face event for him (from `edgeguard events --json`).
--rounds rounds per camera count (default 5), the median round is printed.

Targets: 2 cameras give at least 1.6x the total fps of one; with 4, no camera
gets less than 80% of the others' mean fps; Lin decided on each camera within
15 frames of frame 0, as with one.

Then the push source: one push camera (fps = 120, the most the config allows)
and a client in this process posting a 640x360 JPEG of the clip over one
connection, first paced at PACED frames a second (under the camera's limit:
every frame should be taken), then as fast as the daemon answers (most are
refused with 429 beyond 120 a second): frames taken per second, refusals, the
answer's round trip, and the daemon's CPU time per posted frame, beside
decoding the same JPEG alone (cv2.imdecode) in this process.

Then CPU per camera at real time: 1, 2 and 4 cameras, each replaying the clip
at its own frame rate (`realtime = true`, `loop = true`), as live cameras
would.  Once the daemon says READY=1 (its sd_notify datagram to a socket of
this process: the watchlist loaded and a first frame processed) and SETTLE
seconds more, the CPU seconds of the daemon and its child processes over
--seconds seconds are the cost: CPU seconds per second of video (each camera
plays one second of video a second), in all and per camera, with the cameras'
fps from the daemon's last STATUS= of the window (the clip's rate if they keep
up) and the daemon's RSS (with its children's) at the end.  The cameras run on
threads, as the daemon runs them.

Run: python bench/multi_camera.py [--rounds N] [--seconds S] [--only cameras|push|realtime]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
CLIP = TESTDATA / "video" / "short_hamilton_clip.mp4"
PUSH_SECONDS = 10.0
PACED = 100.0  # frames a second in the paced round
SETTLE = 3.0  # seconds after READY=1 before the CPU is counted (first detections, lazy loads)


def make_site(base: Path, cameras: str) -> Path:
    folder = base / "TrainingImage" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lin-manuel-miranda.png").write_bytes(
        (TESTDATA / "people" / "lin-manuel-miranda.png").read_bytes()
    )
    (base / "Details").mkdir(exist_ok=True)
    (base / "Details" / "Details.csv").write_text(
        "Id,Name,phone_number,initial_deposit,category\n1,Lin-Manuel Miranda,,,vip\n"
    )
    config = base / "edgeguard.toml"
    config.write_text(f'[paths]\nbase_dir = "{base}"\n[watchlist]\nwatch = false\n{cameras}')
    config.chmod(0o600)
    return config


def camera_tables(count: int, extra: str = "") -> str:
    return "".join(
        f'[[camera]]\nname = "cam{n}"\nsource = "{CLIP}"\nlocation = "Place {n}"\n{extra}'
        for n in range(count)
    )


def run_cameras(count: int) -> dict[str, tuple[float, int | None]]:
    """camera name -> (fps, frame of Lin's first known_face) for one daemon run with `count` cameras."""
    with tempfile.TemporaryDirectory() as tmp:
        config = make_site(Path(tmp), camera_tables(count))
        cmd = [sys.executable, "-m", "edgeguard", "--config", str(config)]
        subprocess.run([*cmd, "enroll", "--check"], capture_output=True, check=False)  # warm the cache
        done = subprocess.run([*cmd, "run"], capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"edgeguard run failed:\n{done.stderr}")
        fps = {
            m[1]: float(m[3])
            for m in re.finditer(r"camera (\S+): stopped after (\d+) frames \(([\d.]+) fps\)", done.stderr)
        }
        out = subprocess.run(
            [*cmd, "events", "--json", "--type", "known_face"], capture_output=True, text=True, check=True
        ).stdout
        first: dict[str, int] = {}
        for event in map(json.loads, out.splitlines()):
            first[event["camera"]] = min(first.get(event["camera"], 10**9), event["frame"])
        return {name: (value, first.get(name)) for name, value in fps.items()}


def cameras_benchmark(rounds: int) -> None:
    totals: dict[int, float] = {}
    for count in (1, 2, 4):
        results = [run_cameras(count) for _ in range(rounds)]
        by_total = sorted(results, key=lambda r: sum(v[0] for v in r.values()))
        median = by_total[len(by_total) // 2]
        total = sum(v[0] for v in median.values())
        totals[count] = total
        per = ", ".join(
            f"{name} {fps:.1f} fps (Lin @ frame {first})" for name, (fps, first) in sorted(median.items())
        )
        rounds_text = ", ".join(f"{sum(v[0] for v in r.values()):.1f}" for r in results)
        print(f"{count} camera(s): total {total:.1f} fps (rounds: {rounds_text}); {per}")
        if count > 1:
            values = [fps for fps, _ in median.values()]
            worst = min(v / statistics.mean([w for w in values if w is not v] or [v]) for v in values)
            print(
                f"  total {total / totals[1]:.2f}x one camera"
                + (" (target >= 1.6x)" if count == 2 else "")
                + f"; slowest camera at {100 * worst:.0f}% of the others' mean"
                + (" (target >= 80%)" if count == 4 else "")
            )
        late = [name for name, (_, first) in median.items() if first is None or first > 15]
        print(
            f"  Lin-Manuel Miranda decided within 15 frames on {len(median) - len(late)} "
            f"of {len(median)} cameras"
        )


def push_benchmark() -> None:
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
    ok, image = cap.read()
    assert ok, "cannot read the clip"
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    started = time.perf_counter()
    for _ in range(200):
        cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    decode_ms = (time.perf_counter() - started) / 200 * 1000
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        port = _free_port()
        config = make_site(
            base,
            f'[[camera]]\nname = "door"\nsource = "push"\nfps = 120\n[web]\nlisten = "127.0.0.1:{port}"\n',
        )
        cmd = [sys.executable, "-m", "edgeguard", "--config", str(config)]
        subprocess.run([*cmd, "enroll", "--check"], capture_output=True, check=False)
        daemon = subprocess.Popen([*cmd, "run"], stderr=subprocess.DEVNULL)
        try:
            token = _wait_for_token(base / "push_tokens" / "door.token")
            _wait_for_port(port)
            print(
                f"push, one client, {image.shape[1]}x{image.shape[0]} JPEG of {len(jpeg) // 1024} KB, "
                f"{PUSH_SECONDS:.0f} s each; decoding it alone takes {decode_ms:.1f} ms"
            )
            for label, pace in ((f"paced at {PACED:.0f}/s", PACED), ("as fast as answered", None)):
                taken, refused, trips, cpu = _push_for(port, token, jpeg, daemon.pid, pace)
                print(
                    f"  {label}: {taken / PUSH_SECONDS:.1f} frames/s taken, {refused} refused; "
                    f"round trip median {statistics.median(trips) * 1000:.1f} ms, "
                    f"p95 {sorted(trips)[int(0.95 * (len(trips) - 1))] * 1000:.1f} ms; "
                    f"daemon CPU {cpu / len(trips) * 1000:.2f} ms per posted frame, "
                    f"{cpu / max(taken, 1) * 1000:.1f} ms per taken frame (upload, decode, pipeline)"
                )
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)


def realtime_benchmark(seconds: float) -> None:
    clip_fps = _clip_fps()
    print(
        f"CPU per camera at real time: each camera replays the clip at {clip_fps:.2f} fps (looping); "
        f"the daemon's CPU over {seconds:.0f} s after READY=1 + {SETTLE:.0f} s; cameras on threads"
    )
    for count in (1, 2, 4):
        cpu, elapsed, fps, rss = run_realtime(count, seconds)
        video = count * elapsed
        kept = ", ".join(f"{name} {value:.1f}" for name, value in sorted(fps.items()))
        print(
            f"  {count} camera(s): {cpu / elapsed:.3f} CPU s per second ({cpu / video:.3f} per second of "
            f"video, i.e. per camera), {100 * cpu / elapsed / (os.cpu_count() or 1):.0f}% of "
            f"{os.cpu_count()} cores; fps in the last STATUS: {kept}; RSS {rss / 2**20:.0f} MB"
        )


def run_realtime(count: int, seconds: float) -> tuple[float, float, dict[str, float], int]:
    """The daemon's processes' CPU seconds over about `seconds`, those seconds, camera -> fps in its last
    STATUS=, and their RSS in bytes at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = make_site(base, camera_tables(count, "realtime = true\nloop = true\n"))
        cmd = [sys.executable, "-m", "edgeguard", "--config", str(config)]
        subprocess.run([*cmd, "enroll", "--check"], capture_output=True, check=False)  # warm the cache
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(base / "notify.sock"))
        env = {**os.environ, "NOTIFY_SOCKET": str(base / "notify.sock")}
        daemon = subprocess.Popen([*cmd, "run"], stderr=subprocess.DEVNULL, env=env)
        try:
            if _wait_for_notice(notify, "READY=1", time.monotonic() + 120) is None:
                sys.exit("the daemon did not say READY=1 within 120 s")
            time.sleep(SETTLE)
            before, started = _tree_cpu_seconds(daemon.pid), time.monotonic()
            end = started + seconds
            status = ""
            while (line := _wait_for_notice(notify, "STATUS=", end)) is not None:
                status = line
            cpu, elapsed = _tree_cpu_seconds(daemon.pid) - before, time.monotonic() - started
            rss = _tree_rss_bytes(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            notify.close()
        fps = {m[1]: float(m[2]) for m in re.finditer(r"(cam\d+) \S+ ([\d.]+) fps", status)}
        return cpu, elapsed, fps, rss


def _wait_for_notice(notify: socket.socket, key: str, deadline: float) -> str | None:
    """The first line starting with `key` in the daemon's sd_notify datagrams before `deadline`."""
    while (left := deadline - time.monotonic()) > 0:
        notify.settimeout(left)
        try:
            lines = notify.recv(65536).decode().splitlines()
        except TimeoutError:
            break
        found = [line for line in lines if line.startswith(key)]
        if found:
            return found[0]
    return None


def _clip_fps() -> float:
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    try:
        return cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()


def _tree(pid: int) -> list[int]:
    """The process and its descendants (the encoder pool's workers, any other child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(current := todo.pop())
        todo.extend(children.get(current, []))
    return found


def _tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in _tree(pid):
        try:
            total += _cpu_seconds(member)
        except OSError:
            continue  # ended meanwhile
    return total


def _tree_rss_bytes(pid: int) -> int:
    total = 0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        total += int(match[1]) * 1024 if match else 0
    return total


def _push_for(
    port: int, token: str, jpeg: bytes, pid: int, pace: float | None
) -> tuple[int, int, list[float], float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"}
    taken = refused = 0
    trips: list[float] = []
    cpu_before = _cpu_seconds(pid)
    start = time.monotonic()
    end = start + PUSH_SECONDS
    while time.monotonic() < end:
        if pace is not None:
            time.sleep(max(0.0, start + len(trips) / pace - time.monotonic()))
        sent = time.perf_counter()
        conn.request("POST", "/upload_frame/door", body=jpeg, headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read() or b"{}")
        trips.append(time.perf_counter() - sent)
        taken += bool(answer.get("taken"))
        refused += not answer.get("taken")
    conn.close()
    return taken, refused, trips, _cpu_seconds(pid) - cpu_before


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_token(path: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size:
            return path.read_text().strip()
        time.sleep(0.1)
    sys.exit(f"no push token at {path}")


def _wait_for_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the daemon does not listen on {port}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of video counted at real time")
    parser.add_argument("--only", choices=("cameras", "push", "realtime"))
    args = parser.parse_args()
    if args.only in (None, "cameras"):
        cameras_benchmark(args.rounds)
    if args.only in (None, "push"):
        push_benchmark()
    if args.only in (None, "realtime"):
        realtime_benchmark(args.seconds)
