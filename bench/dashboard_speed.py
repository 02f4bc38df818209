"""Benchmark: what the dashboard costs: one login hash, and the daemon's frame loop with the dashboard
off, on, watched.

1. Login hash: `edgeguard.web.users.HASHER` (argon2-cffi Argon2id, t=3,
   m=64 MiB, p=1) hashes and verifies a password HASH_RUNS times in this
   process; the median of each, and the same for a Raspberry Pi 4 taken as
   3-4x slower than this x86-64 core (both ends printed).
2. Frame loop: `edgeguard run --source CLIP` in its own process, the Hamilton
   clip replayed as fast as possible with `[camera] loop = true` (275 frames
   last only ~3 s, too short for viewers to connect), in three settings:
     (a) `[web] enabled = false`;
     (b) the dashboard on, nobody watching;
     (c) the dashboard on with 3 live viewers (`/video_feed/camera`, MJPEG)
         and one live-update client (`/events/stream`), logged in over HTTP
         as an admin made with `edgeguard user add`, each stream read in its
         own thread.
   Each run is stopped with SIGTERM WINDOW seconds after the daemon logs
   "running: camera"; the settings alternate (a, b, c, a, b, c, ...) so that
   load from elsewhere hits them alike, and the median per setting is
   compared with (a).  Targets: (b) at most 10% slower than (a), (c) at most
   25% slower.  For (c) the live frames each viewer received per second are
   printed (the live view is capped at `[web] live_fps`, default 5), and what
   the live-update client received.

How fps is measured: N, the frames the daemon processed, is read from its own
final log line `stopped after N frames (X fps), ...`, and divided by the
window this script timed, from the moment it read "running: camera" (the
frame counter starts right there) to the moment it sent SIGTERM (the loop
finishes at most the frame it is on).  The daemon's own X is printed beside
it for reference only: it is taken after the teardown, so it also counts the
time spent stopping the web server, which would count against (b) and (c).
In (c) the clients log in as soon as the daemon logs "dashboard listening",
so the login (one Argon2 hash) and the connections fall into the first
second or so of the window; the "connected" column says when the last
stream got its first bytes.

The site is a temporary folder: Lin-Manuel Miranda enrolled as "wanted",
no folder watching, no Twilio (alerts are dry runs).  The event log, outbox
and captures are removed between runs, so that every run starts alike.
Everything runs on 127.0.0.1 only.  Another job loading the machine skews
all settings alike only on average: the load average is printed at the start
and end.

Run: python bench/dashboard_speed.py [WINDOW_SECONDS] [ROUNDS]   (default 20 s, 2 rounds: about 3 minutes)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
CLIP = TESTDATA / "video" / "short_hamilton_clip.mp4"
PHOTO = TESTDATA / "people" / "lin-manuel-miranda.png"

WINDOW = 20.0  # seconds measured per run, after "running: camera"
ROUNDS = 2
HASH_RUNS = 5
PI4_SLOWER = (3.0, 4.0)  # a Raspberry Pi 4 core against this x86-64 core
VIEWERS = 3
TARGETS = {"b": 10.0, "c": 25.0}  # at most this many percent slower than (a)
USER, PASSWORD = "bench", "benchmark password 1"
BOUNDARY = b"--edgeguardframe"
SSE_EVENT = b"event: edgeguard"
LOGIN_CSRF = re.compile(r'action="/login">\s*<input type="hidden" name="csrf" value="([^"]+)"')
STOPPED = re.compile(
    r"stopped after (\d+) frames \(([\d.]+) fps\), (\d+) events, (\d+) detections, (\d+) encodings"
)
START_TIMEOUT = 120.0  # seconds for a daemon to reach "running: camera"
STOP_TIMEOUT = 30.0  # seconds for a daemon to exit after SIGTERM


@dataclass(frozen=True)
class Setting:
    key: str
    label: str
    web: bool
    viewers: int


SETTINGS = (
    Setting("a", "dashboard off", False, 0),
    Setting("b", "dashboard on, nobody watching", True, 0),
    Setting("c", f"dashboard on, {VIEWERS} viewers + 1 live-update client", True, VIEWERS),
)


class BenchError(RuntimeError):
    pass


def main(window: float, rounds: int) -> int:
    if not CLIP.exists() or not PHOTO.exists():
        sys.exit(f"test data missing: {CLIP} or {PHOTO}")
    load_start = os.getloadavg()
    hashed, verified = hash_cost()

    results: dict[str, list[Run]] = {s.key: [] for s in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="edgeguard-dashboard-bench-") as tmp:
        base = Path(tmp)
        make_site(base)
        config = write_config(base, web=False, port=free_port())
        cmd = edgeguard_cmd(config)
        # Warm the encoding cache, as a daemon restart would find it.
        subprocess.run([*cmd, "enroll", "--check"], capture_output=True, check=False, cwd=ROOT)
        added = subprocess.run(
            [*cmd, "user", "add", USER, "--role", "admin"],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if added.returncode != 0:
            sys.exit(f"edgeguard user add failed ({added.returncode}):\n{added.stderr}")
        for round_ in range(rounds):
            for setting in SETTINGS:
                reset_site(base)
                config = write_config(base, web=setting.web, port=free_port())
                try:
                    run = run_daemon(config, setting, window)
                except BenchError as exc:
                    sys.exit(f"round {round_ + 1}, setting ({setting.key}) {setting.label}: {exc}")
                results[setting.key].append(run)
                print(f"  round {round_ + 1} ({setting.key}): {run.fps:.1f} fps", file=sys.stderr, flush=True)
    report(hashed, verified, results, window, rounds, load_start, os.getloadavg())
    return 0


# -- 1. the login hash


def hash_cost() -> tuple[list[float], list[float]]:
    """Milliseconds of HASHER.hash and HASHER.verify, HASH_RUNS each (after one warm-up)."""
    from edgeguard.web.users import HASHER

    encoded = HASHER.hash(PASSWORD)  # warm-up: the first call pays for allocating the memory
    HASHER.verify(encoded, PASSWORD)
    hashed, verified = [], []
    for _ in range(HASH_RUNS):
        started = time.perf_counter()
        encoded = HASHER.hash(PASSWORD)
        hashed.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        HASHER.verify(encoded, PASSWORD)
        verified.append((time.perf_counter() - started) * 1000)
    return hashed, verified


def hasher_parameters() -> str:
    from edgeguard.web.users import HASHER

    return (
        f"Argon2{HASHER.type.name.lower()}, t={HASHER.time_cost}, m={HASHER.memory_cost // 1024} MiB, "
        f"p={HASHER.parallelism}"
    )


# -- 2. the frame loop


@dataclass
class Stream:
    """One client stream of setting (c) and what it received."""

    path: str
    marker: bytes  # counted in the body: a JPEG part's boundary, or a server-sent event
    parts: int = 0
    bytes: int = 0
    first_bytes_at: float | None = None
    error: str | None = None
    parts_at_end: int = 0
    bytes_at_end: int = 0
    seconds: float = 0.0  # from its first bytes to the end of the window


@dataclass
class Run:
    setting: str
    frames: int
    window: float
    daemon_fps: float
    events: int
    teardown: float  # seconds from SIGTERM to exit
    streams: list[Stream] = field(default_factory=list)
    connected_after: float | None = (
        None  # seconds after "running: camera" when the last stream got its first bytes
    )
    problems: list[str] = field(default_factory=list)  # WARNING/ERROR lines and tracebacks of the daemon

    @property
    def fps(self) -> float:
        return self.frames / self.window


def run_daemon(config: Path, setting: Setting, window: float) -> Run:
    daemon = Daemon(config)
    clients: Clients | None = None
    try:
        if setting.web:
            daemon.wait_for(daemon.listening, "the dashboard listened", START_TIMEOUT)
            if setting.viewers:
                clients = Clients(daemon.port(), setting.viewers)
                clients.start()
        daemon.wait_for(daemon.running, '"running: camera"', START_TIMEOUT)
        assert daemon.running_at is not None
        end = daemon.running_at + window
        while (left := end - time.monotonic()) > 0:
            if daemon.proc.poll() is not None:
                daemon.fail(f"the daemon exited early (code {daemon.proc.returncode}) during the window")
            time.sleep(min(left, 0.2))
        if clients is not None:
            clients.snapshot()
        terminated = daemon.terminate()
        measured = terminated - daemon.running_at
        code = daemon.wait_exit()
        teardown = time.monotonic() - terminated
        if code != 0:
            daemon.fail(f"the daemon exited with code {code}")
        stats = STOPPED.search(daemon.text())
        if stats is None:
            daemon.fail("no 'stopped after N frames' line in the daemon's log")
        run = Run(
            setting.key,
            int(stats.group(1)),
            measured,
            float(stats.group(2)),
            int(stats.group(3)),
            teardown,
            problems=daemon.problems(),
        )
        if setting.web and "dashboard listening" not in daemon.text():
            daemon.fail("the dashboard did not start")
        if not setting.web and "dashboard listening" in daemon.text():
            daemon.fail("the dashboard started although [web] enabled = false")
        if clients is not None:
            clients.finish()
            if clients.error:
                daemon.fail(f"client: {clients.error}")
            broken = [f"{s.path}: {s.error}" for s in clients.streams if s.error]
            if broken:
                daemon.fail("stream failed: " + "; ".join(broken))
            run.streams = clients.streams
            firsts = [s.first_bytes_at for s in clients.streams]
            if None in firsts:
                daemon.fail("a stream received nothing during the window")
            run.connected_after = max(firsts) - daemon.running_at  # type: ignore[arg-type]
        return run
    finally:
        if clients is not None:
            clients.stop.set()
        daemon.kill()


class Daemon:
    """`edgeguard run --source CLIP` with its stderr read line by line on a thread, each line timed."""

    def __init__(self, config: Path) -> None:
        env = {
            k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        }
        self.proc = subprocess.Popen(
            [*edgeguard_cmd(config), "run", "--source", str(CLIP)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.lines: list[str] = []
        self.listening = threading.Event()
        self.running = threading.Event()
        self.running_at: float | None = None
        self._port: int | None = None
        self._reader = threading.Thread(target=self._read, name="daemon-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            now = time.monotonic()
            line = line.rstrip("\n")
            self.lines.append(line)
            if "dashboard listening on" in line:
                found = re.search(r"://[^\s]+:(\d+)", line)
                self._port = int(found.group(1)) if found else None
                self.listening.set()
            if "running: camera" in line and self.running_at is None:
                self.running_at = now
                self.running.set()

    def port(self) -> int:
        if self._port is None:
            self.fail("cannot read the dashboard's port from its log")
        assert self._port is not None
        return self._port

    def wait_for(self, event: threading.Event, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not event.wait(0.1):
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                if event.is_set():
                    return
                self.fail(f"the daemon exited (code {self.proc.returncode}) before {what}")
            if time.monotonic() > deadline:
                self.fail(f"no sign that {what} after {timeout:.0f} s")

    def terminate(self) -> float:
        at = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return at

    def wait_exit(self) -> int:
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail(f"the daemon did not exit within {STOP_TIMEOUT:.0f} s of SIGTERM")
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reader.join(timeout=2)

    def text(self) -> str:
        return "\n".join(self.lines)

    def problems(self) -> list[str]:
        return [
            line
            for line in self.lines
            if line.startswith(("WARNING", "ERROR", "CRITICAL", "Traceback")) or "Error" in line.split(":")[0]
        ]

    def fail(self, message: str) -> None:
        self.kill()
        tail = "\n".join(self.lines[-30:]) or "(nothing)"
        raise BenchError(f"{message}\n--- daemon stderr, last lines ---\n{tail}")


class Clients:
    """Setting (c): log in, then read `viewers` live views and one live-update stream, each on its own
    thread."""

    def __init__(self, port: int, viewers: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.stop = threading.Event()
        self.error: str | None = None
        self.streams = [Stream("/video_feed/camera", BOUNDARY) for _ in range(viewers)]
        self.streams.append(Stream("/events/stream", SSE_EVENT))
        self._threads: list[threading.Thread] = []
        self._responses: list[requests.Response] = []
        self._lock = threading.Lock()
        self._main = threading.Thread(target=self._run, name="clients", daemon=True)

    def start(self) -> None:
        self._main.start()

    def _run(self) -> None:
        try:
            cookies = self._login()
        except Exception as exc:  # noqa: BLE001 - reported as the run's failure
            self.error = f"login failed: {exc!r}"
            return
        for stream in self.streams:
            thread = threading.Thread(
                target=self._read, args=(stream, cookies), name=f"client {stream.path}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # 127.0.0.1 only: no proxy from the environment
        return session

    def _login(self):
        session = self._session()
        page = session.get(f"{self.base}/login", timeout=10)
        found = LOGIN_CSRF.search(page.text)
        if page.status_code != 200 or found is None:
            raise BenchError(f"GET /login: HTTP {page.status_code}, no login form with a CSRF token")
        answer = session.post(
            f"{self.base}/login",
            timeout=30,
            allow_redirects=False,
            data={"csrf": found.group(1), "username": USER, "password": PASSWORD},
        )
        if answer.status_code not in (302, 303) or "edgeguard_session" not in session.cookies:
            raise BenchError(
                f"POST /login: HTTP {answer.status_code}, no session cookie: {answer.text[:200]!r}"
            )
        return session.cookies

    def _read(self, stream: Stream, cookies) -> None:
        session = self._session()
        session.cookies.update(cookies)
        keep = len(stream.marker) - 1
        try:
            response = session.get(self.base + stream.path, stream=True, timeout=(5, 30))
            with self._lock:
                self._responses.append(response)
            with response:
                if response.status_code != 200:
                    stream.error = f"HTTP {response.status_code}: {response.text[:200]!r}"
                    return
                tail = b""
                for chunk in response.iter_content(chunk_size=None):
                    if self.stop.is_set():
                        return
                    if stream.first_bytes_at is None:
                        stream.first_bytes_at = time.monotonic()
                    data = tail + chunk
                    stream.parts += data.count(stream.marker)
                    stream.bytes += len(chunk)
                    tail = data[-keep:]
        except Exception as exc:  # noqa: BLE001 - a stream cut by the daemon's stop is expected
            if not self.stop.is_set():
                stream.error = repr(exc)

    def snapshot(self) -> None:
        """What each stream had at the end of the window; then the readers may stop."""
        now = time.monotonic()
        for stream in self.streams:
            stream.parts_at_end, stream.bytes_at_end = stream.parts, stream.bytes
            if stream.first_bytes_at is not None:
                stream.seconds = now - stream.first_bytes_at
        self.stop.set()

    def finish(self) -> None:
        self.stop.set()
        with self._lock:
            for response in self._responses:
                try:
                    response.close()
                except Exception:  # noqa: BLE001
                    pass
        for thread in self._threads:
            thread.join(timeout=5)
        self._main.join(timeout=5)


# -- the site


def make_site(base: Path) -> None:
    folder = base / "TrainingImage" / "1"
    folder.mkdir(parents=True)
    shutil.copyfile(PHOTO, folder / PHOTO.name)
    (base / "Details").mkdir()
    (base / "Details" / "Details.csv").write_text(
        "Id,Name,phone_number,initial_deposit,category\n1,Lin-Manuel Miranda,,,wanted\n"
    )


def write_config(base: Path, web: bool, port: int) -> Path:
    config = base / "edgeguard.toml"
    config.write_text(
        f'[paths]\nbase_dir = "{base}"\n'
        "[watchlist]\nwatch = false\n"
        "[camera]\nloop = true\n"
        f'[web]\nenabled = {"true" if web else "false"}\nlisten = "127.0.0.1:{port}"\n'
        f"max_live_viewers = {VIEWERS}\n"
    )
    return config


def reset_site(base: Path) -> None:
    """Remove what a run leaves behind (event log, outbox, captures); users, secrets and the cache stay."""
    for pattern in ("events.db*", "outbox.db*"):
        for path in base.glob(pattern):
            path.unlink()
    shutil.rmtree(base / "Unknown_Face_Captures", ignore_errors=True)


def edgeguard_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "edgeguard", "--config", str(config)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the table


def report(
    hashed: list[float],
    verified: list[float],
    results: dict[str, list[Run]],
    window: float,
    rounds: int,
    load_start: tuple[float, ...],
    load_end: tuple[float, ...],
) -> None:
    low, high = PI4_SLOWER
    print(
        f"machine: {os.cpu_count()} cores, load average {load_start[0]:.2f} at the start, "
        f"{load_end[0]:.2f} at the end"
    )
    print()
    print(f"1. login hash ({hasher_parameters()}), median of {HASH_RUNS}:")
    print(f"   {'':<8}{'this machine':>14}   Raspberry Pi 4 ({low:.0f}-{high:.0f}x slower)")
    for name, values in (("hash", hashed), ("verify", verified)):
        m = statistics.median(values)
        print(f"   {name:<8}{m:>11.0f} ms   {m * low:.0f}-{m * high:.0f} ms   (runs: {_fmt(values, 0)} ms)")
    print()
    print(
        f"2. frame loop: Hamilton clip looped as fast as possible, {window:.0f} s windows, {rounds} rounds "
        f"({', '.join(s.key for s in SETTINGS)} alternating)"
    )
    base_fps = statistics.median(r.fps for r in results["a"])
    print(
        f"   {'setting':<52}{'fps per round':<16}{'median':>7}  {'vs (a)':>7}  {'target':<12}"
        f"{'daemon own fps':<16}{'SIGTERM->exit'}"
    )
    for setting in SETTINGS:
        runs = results[setting.key]
        fps = statistics.median(r.fps for r in runs)
        if setting.key == "a":
            versus, target = "", ""
        else:
            slower = (1 - fps / base_fps) * 100
            limit = TARGETS[setting.key]
            versus = f"{slower:+.1f}%"
            target = f"<= {limit:.0f}% {'ok' if slower <= limit else 'MISSED'}"
        own = _fmt([r.daemon_fps for r in runs], 1)
        teardown = _fmt([r.teardown for r in runs], 1) + " s"
        print(
            f"   ({setting.key}) {setting.label:<48}{_fmt([r.fps for r in runs], 1):<16}"
            f"{fps:>7.1f}  {versus:>7}  {target:<12}{own:<16}{teardown}"
        )
    print("   (fps = frames in the daemon's final log line / the window timed here; + means slower than (a);")
    print("    'daemon own fps' is that line's figure, which also counts the teardown)")
    print()
    print("   live view in (c), frames received per viewer per second (cap [web] live_fps, default 5):")
    for number, run in enumerate(results["c"], 1):
        viewers = [s for s in run.streams if s.marker == BOUNDARY]
        rates = [s.parts_at_end / max(s.seconds, 1e-6) for s in viewers]
        sizes = [s.bytes_at_end / max(1, s.parts_at_end) / 1024 for s in viewers]
        events = [s for s in run.streams if s.marker == SSE_EVENT]
        sse = events[0] if events else None
        print(
            f"   round {number}: {_fmt(rates, 2)} frames/s, about {statistics.mean(sizes):.0f} KiB a frame; "
            f"all streams flowing {run.connected_after:.1f} s after 'running'; "
            + (
                f"live updates: {sse.parts_at_end} events, {sse.bytes_at_end} bytes "
                f"(daemon logged {run.events} events in all)"
                if sse
                else ""
            )
        )
    problems = [
        (run.setting, number, line)
        for key in results
        for number, run in enumerate(results[key], 1)
        for line in run.problems
    ]
    print()
    if problems:
        print("   daemon warnings and errors (stderr):")
        seen: set[tuple[str, str]] = set()
        for key, number, line in problems:
            if (key, line) not in seen:
                seen.add((key, line))
                print(f"   ({key}) round {number}: {line}")
    else:
        print("   daemon warnings and errors (stderr): none")


def _fmt(values, digits: int) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


if __name__ == "__main__":
    args = sys.argv[1:]
    raise SystemExit(main(float(args[0]) if args else WINDOW, int(args[1]) if len(args) > 1 else ROUNDS))
