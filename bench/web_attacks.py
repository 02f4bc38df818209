"""Benchmark: the dashboard under attack (issue 21): a figure per probe, against the real daemon on loopback.

Each probe starts `edgeguard run` (the checkout on PYTHONPATH: run it once on
the old code and once on the new for the before/after figures), attacks it
over real sockets on 127.0.0.1, and prints one line.  Every probe is bounded
in count and time.

  tls_idle      HTTPS with 500 idle TCP connections (no handshake): seconds for a login,
                and the frames a push camera got through at 10 fps for 5 s (of 50)
  login_burst   after 5 wrong passwords and the 1 s wait: of 30 parallel logins, how many
                had their password checked (401/302 rather than 429)
  spray         one address guessing at 30 other accounts while logging in to its own
                account between guesses: how many guesses were checked
  redaction     a table of real-world camera URL shapes: how many show a secret through
                the checkout's redaction; whether a viewer's pages or the log show one
  codes         an admin's SMS login code: shown on another admin's alerts page? in the log?
  png_bomb      a 16-bit 6300x6300 PNG (77 KB) as a record photo, then 3 at once, then one
                dropped into TrainingImage/: the daemon's VmHWM and VmRSS (MB)
  slow_uploads  100 uploads to /upload_frame/<camera> without a token, 1 MB announced,
                600 KB sent slowly: the request bodies the daemon holds (MB of temp files + RSS)
  smaller       Cache-Control of a record photo; status of a huge page number, a huge event
                id, a 5000-character record id; /upload_frame answers for a camera that
                exists and one that does not; live-view and event-stream slots one viewer gets
                (of 5 and 20 asked for), and whether another user then still gets one of each

Run: PYTHONPATH=CHECKOUT python bench/web_attacks.py [PROBE ...]   (all: about 3 minutes)
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # our own self-signed certificate

PASSWORD = "correct horse battery"
PUSH_TOKEN = "a-push-token-of-the-bench-0123456789"
CAMERA_SECRET = "hunter2-camera-secret"
PHONE = "+15551230000"

URL_TABLE = [  # (URL, the secret that must not show)
    ("rtsp://admin:s3cret@10.0.0.20:554/stream1", "s3cret"),
    ("rtsp://admin:p#ss@10.0.0.20/stream1", "p#ss"),
    ("rtsp://admin:p@ss@10.0.0.20/stream1", "p@ss"),
    ("rtsp://admin:p%40ss@10.0.0.20/stream1", "p%40ss"),
    ("http://10.0.0.20/videostream.cgi?user=admin&pwd=s3cret", "s3cret"),
    ("http://10.0.0.20/videostream.cgi?loginuse=admin&loginpas=s3cret", "s3cret"),
    ("http://10.0.0.20/snapshot.cgi?user=admin&psw=s3cret", "s3cret"),
    ("http://10.0.0.20/mjpg/video.mjpg?password=s3cret", "s3cret"),
    ("http://10.0.0.20/video.cgi?passwd=s3cret", "s3cret"),
    ("http://10.0.0.20/video.cgi?pass=s3cret", "s3cret"),
    ("http://10.0.0.20/live?token=s3cret", "s3cret"),
    ("http://10.0.0.20/live?auth=YWRtaW46czNjcmV0", "YWRtaW46czNjcmV0"),
    ("http://10.0.0.20/live?apikey=s3cret", "s3cret"),
    ("http://10.0.0.20/live?api_key=s3cret", "s3cret"),
    ("http://10.0.0.20/cgi-bin/mjpg/video.cgi?channel=1&subtype=1&pwd=s3cret#frag", "s3cret"),
    ("rtsp://10.0.0.20:554/user=admin&password=s3cret&channel=1&stream=0.sdp", "s3cret"),
    ("rtsp://10.0.0.20:554/user=admin_password=s3cret_channel=1_stream=0.sdp", "s3cret"),
    ("http://10.0.0.20/videostream.cgi?user=admin&pwd=p#ss&rate=0", "p#ss"),
    ("http://10.0.0.20/videostream.cgi?user=admin&pwd=p@ss", "p@ss"),
    ("https://user:s3cret@cam.example.net/mjpeg?resolution=640x480", "s3cret"),
    ("rtsps://admin:s3cret@[fe80::1]:322/stream", "s3cret"),
    ("rtsp://10.0.0.20/Streaming/Channels/101?PWD=s3cret", "s3cret"),
    ("http://10.0.0.20/axis-cgi/mjpg/video.cgi?camera=1&sig=s3cret", "s3cret"),
    ("http://10.0.0.20/cgi-bin/video.cgi?usr=admin&pswd=s3cret", "s3cret"),
]


# ---------------------------------------------------------------- the daemon


class Site:
    """A temporary site with one push camera (`till`), an admin, a viewer, and the daemon running on it."""

    def __init__(self, tls: bool = False, extra: str = "", people: int = 0) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="edgeguard-attack-"))
        (self.base / "TrainingImage").mkdir()
        (self.base / "Details").mkdir()
        rows = "".join(f"{n},Person {n},,,\n" for n in range(1, people + 1))
        (self.base / "Details" / "Details.csv").write_text(
            "Id,Name,phone_number,initial_deposit,category\n" + rows
        )
        tokens = self.base / "push_tokens"
        tokens.mkdir(mode=0o700)
        (tokens / "till.token").write_text(PUSH_TOKEN)
        (tokens / "till.token").chmod(0o600)
        self.port = free_port()
        web = f'[web]\nlisten = "127.0.0.1:{self.port}"\n'
        if tls:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
                + ["-subj", "/CN=localhost", "-keyout", str(self.base / "key.pem")]
                + ["-out", str(self.base / "cert.pem")],
                capture_output=True,
                check=True,
            )
            web += 'tls_cert = "cert.pem"\ntls_key = "key.pem"\n'
        self.config = self.base / "edgeguard.toml"
        self.config.write_text(
            f'[paths]\nbase_dir = "{self.base}"\n{web}{extra}'
            '[[camera]]\nname = "till"\nsource = "push"\nlocation = "Counter"\nfps = 10\nread_timeout = 5.0\n'
        )
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.add_user("alice", "admin")
        self.add_user("victor", "viewer")
        self.proc: subprocess.Popen | None = None
        self.log = self.base / "daemon.log"

    def add_user(self, name: str, role: str, phone: str | None = None) -> None:
        args = ["user", "add", name, "--role", role] + (["--phone", phone] if phone else [])
        subprocess.run(
            [sys.executable, "-m", "edgeguard", "--config", str(self.config), *args],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=True,
            cwd=self.base,  # not a checkout: `-m edgeguard` must import the one on PYTHONPATH
        )

    def start(self) -> Site:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TWILIO_") and k not in ("CREDENTIALS_DIRECTORY", "EDGEGUARD_CONFIG")
        }
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edgeguard", "--config", str(self.config), "run"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                cwd=self.base,
            )
        deadline = time.monotonic() + 90
        while "dashboard listening" not in self.stderr():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"the daemon did not start:\n{self.stderr()}")
            time.sleep(0.1)
        return self

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.base, ignore_errors=True)

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM of the daemon, in MB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) / 1024 for k in ("VmRSS", "VmHWM")}

    def held_files(self) -> float:
        """MB of the deleted (temporary) files the daemon holds open: waitress's spooled request bodies."""
        total = 0
        for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir():
            try:
                if os.readlink(fd).endswith("(deleted)"):
                    total += os.stat(fd).st_size
            except OSError:
                pass
        return total / 1e6

    def login(self, name: str = "alice", password: str = PASSWORD, timeout: float = 30) -> requests.Session:
        http = Client()
        page = http.get(f"{self.url}/login", timeout=timeout).text
        token = re.search(r'action="/login">\s*<input type="hidden" name="csrf" value="([^"]+)"', page).group(
            1
        )
        answer = http.post(
            f"{self.url}/login",
            data={"csrf": token, "username": name, "password": password},
            allow_redirects=False,
            timeout=timeout,
        )
        http.status = answer.status_code  # type: ignore[attr-defined]
        return http

    def csrf(self, http: requests.Session, path: str = "/") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', http.get(self.url + path).text).group(1)


class Client(requests.Session):
    """A browser that takes the site's own self-signed certificate (whatever REQUESTS_CA_BUNDLE says)."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("verify", False)
        return super().request(*args, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jpeg() -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", noise)[1].tobytes()


def png_bomb(width: int = 6300, height: int = 6300) -> bytes:
    """A 16-bit RGB PNG of width x height black pixels: a few tens of KB that decode to hundreds of MB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    row = b"\0" + bytes(width * 6)
    raw = zlib.compressobj(9)
    data = b"".join(raw.compress(row) for _ in range(height)) + raw.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.monotonic()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # a probe's failure is its figure
        result = exc
    return time.monotonic() - started, result


# ---------------------------------------------------------------- probes


def tls_idle() -> str:
    site = Site(tls=True).start()
    idle: list[socket.socket] = []
    try:
        started = time.monotonic()
        while len(idle) < 500 and time.monotonic() - started < 30:
            try:
                idle.append(socket.create_connection(("127.0.0.1", site.port), timeout=2))
            except OSError:
                pass  # the backlog is full: the server is not accepting
        took, http = timed(site.login, timeout=30)
        login = f"{took:.1f} s" if isinstance(http, requests.Session) and http.status == 302 else "failed"
        push = Client()
        frame, taken, started = jpeg(), 0, time.monotonic()
        for n in range(50):
            time.sleep(max(0.0, started + n / 10 - time.monotonic()))
            try:
                answer = push.post(
                    f"{site.url}/upload_frame/till",
                    data=frame,
                    headers={"Authorization": f"Bearer {PUSH_TOKEN}", "Content-Type": "image/jpeg"},
                    timeout=2,
                )
                taken += answer.status_code == 200
            except requests.RequestException:
                pass
            if time.monotonic() - started > 15:
                break
        return f"tls_idle: {len(idle)} idle sockets connected; login {login}; push frames taken {taken}/50"
    finally:
        for sock in idle:
            sock.close()
        site.stop()


def login_burst() -> str:
    site = Site().start()
    try:
        for n in range(5):
            site.login("alice", f"wrong {n}")
        time.sleep(1.2)
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            codes = list(pool.map(lambda n: site.login("alice", f"guess {n}").status, range(30)))
        checked = sum(code != 429 for code in codes)
        return f"login_burst: {checked} of 30 parallel passwords checked after the throttle engaged"
    finally:
        site.stop()


def spray() -> str:
    site = Site().start()
    try:
        checked, started = 0, time.monotonic()
        for n in range(30):
            checked += site.login(f"user{n}", "a guess at another account").status != 429
            if n % 4 == 3:
                site.login("victor")
            if time.monotonic() - started > 40:
                break
        return f"spray: {checked} of 30 guesses at other accounts checked (own account logged in between)"
    finally:
        site.stop()


def redaction() -> str:
    from edgeguard.sources.stream import redact

    leaks = [url for url, secret in URL_TABLE if secret in redact(url) or secret.lower() in redact(url)]
    source = f"rtsp://admin:{CAMERA_SECRET}@127.0.0.1:9/live?user=admin&pwd={CAMERA_SECRET}"
    extra = f'[[camera]]\nname = "gate"\nsource = "{source}"\nlocation = "Front Gate"\nopen_timeout = 1.0\n'
    site = Site(extra=extra)
    site.start()
    try:
        time.sleep(3)
        http = site.login("victor")
        pages = [
            http.get(f"{site.url}{p}").text for p in ("/", "/live_feed", "/cameras.json", "/view_records")
        ]
        shown = sum("127.0.0.1:9" in page or CAMERA_SECRET in page for page in pages)
        logged = CAMERA_SECRET in site.stderr()
        return (
            f"redaction: {len(leaks)} of {len(URL_TABLE)} URL shapes show a secret; "
            f"viewer pages showing the source {shown} of {len(pages)}; secret in the log: {logged}"
        )
    finally:
        site.stop()


def codes() -> str:
    site = Site()
    site.config.write_text(site.config.read_text().replace("[web]\n", '[web]\notp = "admin"\n'))
    site.add_user("bob", "admin", PHONE)
    site.start()
    try:
        alice = site.login("alice")
        bob = site.login("bob")
        assert bob.status == 302
        time.sleep(0.5)
        page = alice.get(f"{site.url}/alerts").text
        shown = bool(re.search(r"login code: \d{6}", page))
        logged = bool(re.search(r"login code: \d{6}", site.stderr()))
        return f"codes: another admin's login code on the alerts page: {shown}; in the log: {logged}"
    finally:
        site.stop()


def png_bomb_probe() -> str:
    site = Site(people=1).start()
    try:
        http = site.login("alice")
        bomb = png_bomb()
        time.sleep(1)
        base = site.memory()

        def upload(n: int) -> int:
            token = site.csrf(http, "/records/1")
            files = {"photos": (f"bomb{n}.png", bomb, "image/png")}
            return http.post(f"{site.url}/records/1/photos", data={"csrf": token}, files=files).status_code

        upload(0)
        one = site.memory()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            list(pool.map(upload, range(1, 4)))
        three = site.memory()
        (site.base / "TrainingImage" / "1").mkdir(exist_ok=True)
        (site.base / "TrainingImage" / "1" / "dropped.png").write_bytes(bomb)
        time.sleep(8)
        dropped = site.memory()
        return (
            f"png_bomb ({len(bomb) // 1024} KB): RSS at start {base['VmRSS']:.0f} MB; peak after one upload "
            f"{one['VmHWM']:.0f} MB, after 3 at once {three['VmHWM']:.0f} MB, after one in TrainingImage "
            f"{dropped['VmHWM']:.0f} MB; RSS afterwards {dropped['VmRSS']:.0f} MB"
        )
    finally:
        site.stop()


def slow_uploads() -> str:
    site = Site().start()
    socks: list[socket.socket] = []
    try:
        base = site.memory()
        head = (
            b"POST /upload_frame/till HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", site.port))
            sock.sendall(head)
            sock.setblocking(False)
            socks.append(sock)
        chunk, sent, started = bytes(60_000), 0, time.monotonic()
        for _ in range(10):  # 10 rounds of 60 KB each: 600 KB a connection, if the daemon takes them
            for sock in socks:
                try:
                    sent += sock.send(chunk)
                except OSError:
                    pass
            time.sleep(0.3)
        held = site.held_files()
        grown = site.memory()["VmRSS"] - base["VmRSS"]
        took = time.monotonic() - started
        return (
            f"slow_uploads: 100 untokened uploads sent {sent / 1e6:.0f} MB in {took:.0f} s; the daemon holds "
            f"{held:.0f} MB of spooled bodies, RSS +{grown:.0f} MB"
        )
    finally:
        for sock in socks:
            sock.close()
        site.stop()


def smaller() -> str:
    site = Site(people=1)
    photo = site.base / "TrainingImage" / "1"
    photo.mkdir()
    shutil.copyfile(Path(__file__).resolve().parents[1] / "docs" / "overview.png", photo / "a.png")
    site.start()
    try:
        http = site.login("victor")
        cache = http.get(f"{site.url}/records/1/photos/a.png").headers.get("Cache-Control")
        statuses = [
            http.get(f"{site.url}/detection_logs", params={"page": "9" * 30}).status_code,
            http.get(f"{site.url}/detection_logs", params={"event": "9" * 30}).status_code,
            http.get(f"{site.url}/records/{'7' * 5000}").status_code,
        ]
        known = requests.post(
            f"{site.url}/upload_frame/till", data=b"x", headers={"Authorization": "Bearer no"}
        )
        unknown = requests.post(
            f"{site.url}/upload_frame/nope", data=b"x", headers={"Authorization": "Bearer no"}
        )
        for _ in range(20):  # a frame of the push camera, so that a live view has something to send
            requests.post(
                f"{site.url}/upload_frame/till",
                data=jpeg(),
                headers={"Authorization": f"Bearer {PUSH_TOKEN}", "Content-Type": "image/jpeg"},
            )
            if http.get(f"{site.url}/snapshot/till.jpg").status_code == 200:
                break
            time.sleep(0.2)
        held: list[requests.Response] = []

        def slot(client: requests.Session, path: str) -> bool:
            """Whether the client got (or is held waiting on) a streaming slot; a refusal is quick."""
            try:
                answer = client.get(f"{site.url}{path}", stream=True, timeout=3)
            except requests.RequestException:
                return True
            held.append(answer)
            return answer.status_code == 200

        events_got = sum(slot(http, "/events/stream") for _ in range(20))
        live_got = sum(slot(http, "/video_feed/till") for _ in range(5))
        other = site.login("alice")
        other_got = [slot(other, path) for path in ("/events/stream", "/video_feed/till")]
        for answer in held:
            answer.close()
        return (
            f"smaller: record photo Cache-Control {cache!r}; huge page/event id/5000-char id -> {statuses}; "
            f"/upload_frame wrong token: known camera {known.status_code}, unknown {unknown.status_code}; "
            f"one viewer holds {events_got} of 20 event streams and {live_got} of 5 live views; another user "
            f"then gets an event stream: {other_got[0]}, a live view: {other_got[1]}"
        )
    finally:
        site.stop()


PROBES = {
    "tls_idle": tls_idle,
    "login_burst": login_burst,
    "spray": spray,
    "redaction": redaction,
    "codes": codes,
    "png_bomb": png_bomb_probe,
    "slow_uploads": slow_uploads,
    "smaller": smaller,
}


def main(names: list[str]) -> None:
    import edgeguard

    print(f"edgeguard from {Path(edgeguard.__file__).parent.parent}")
    for name in names or list(PROBES):
        took, line = timed(PROBES[name])
        print(f"{line if isinstance(line, str) else f'{name}: failed: {line!r}'}  ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
