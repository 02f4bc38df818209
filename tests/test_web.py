"""The dashboard over real HTTP (waitress on loopback, the real Flask app, a real users.db and event log):
logins and their throttle, CSRF, roles, sessions, cookies, uploads, capture routes, idle connections."""

from __future__ import annotations

import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import zlib

import helpers  # tests/helpers.py
import pytest
import requests
from conftest import PEOPLE, Site, lfw_photos, make_site

from edgeguard.alerts.outbox import Outbox
from edgeguard.events.event import Event
from edgeguard.faces.engine import FaceEngine
from edgeguard.store.event_log import EventLog
from edgeguard.web.context import CameraStatus, SiteStatus
from edgeguard.web.site import build_dashboard

PASSWORD = "correct horse battery"


def login_token(page: str) -> str:
    """The CSRF token of the login form (a logged-in page has the logout form's before it)."""
    return re.search(r'action="/login">\s*<input type="hidden" name="csrf" value="([^"]+)"', page).group(1)


class Board:
    """A dashboard for a site, served on a free loopback port, with an admin and a viewer."""

    def __init__(self, site: Site, extra: str = "", admin_phone: str | None = None) -> None:
        self.port = helpers.free_port()
        site.write_config(f'[web]\nlisten = "127.0.0.1:{self.port}"\n{extra}')
        self.site = site
        self.config = site.config()
        self.event_log = EventLog(self.config.paths.events_db)
        self.outbox = Outbox(self.config.paths.outbox_db)
        engine = FaceEngine(self.config.recognition)
        status = SiteStatus([CameraStatus("gate", "Front Gate", "streaming", "test", 10.0, 0)])
        self.dashboard, self.server = build_dashboard(
            self.config,
            status=lambda: status,
            watchlist=lambda: None,
            event_log=self.event_log,
            outbox=self.outbox,
            engine=lambda: engine,
            signer=None,
        )
        self.dashboard.users.add("alice", PASSWORD, "admin", admin_phone)
        self.dashboard.users.add("victor", PASSWORD, "viewer")
        self.server.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def login(
        self, name: str = "alice", password: str = PASSWORD
    ) -> tuple[requests.Session, requests.Response]:
        http = requests.Session()
        token = login_token(http.get(f"{self.url}/login").text)
        answer = http.post(
            f"{self.url}/login",
            data={"csrf": token, "username": name, "password": password},
            allow_redirects=False,
        )
        return http, answer

    def csrf(self, http: requests.Session, path: str = "/") -> str:
        return re.search(r'name="csrf" value="([^"]+)"', http.get(self.url + path).text).group(1)

    def stop(self) -> None:
        self.server.stop()
        self.event_log.close()
        self.outbox.close()
        self.dashboard.users.close()


@pytest.fixture
def board(tmp_path):
    site = make_site(
        tmp_path / "site", people=[("1", "Lin-Manuel Miranda", "lin-manuel-miranda.png", "wanted")]
    )
    board = Board(site)
    yield board
    board.stop()


def test_no_user_shows_only_how_to_make_one(tmp_path):
    site = make_site(tmp_path / "site", people=[])
    port = helpers.free_port()
    site.write_config(f'[web]\nlisten = "127.0.0.1:{port}"\n')
    config = site.config()
    dashboard, server = build_dashboard(
        config,
        status=SiteStatus,
        watchlist=lambda: None,
        event_log=None,
        outbox=None,
        engine=lambda: None,
        signer=None,
    )
    server.start()
    try:
        page = requests.get(f"http://127.0.0.1:{port}/login")
        assert page.status_code == 200 and "edgeguard" in page.text and "user add" in page.text
        assert ".venv/bin/edgeguard user add alice --role admin" in page.text  # the checkout form too
        assert 'name="password"' not in page.text
        assert requests.get(f"http://127.0.0.1:{port}/", allow_redirects=False).status_code == 302
    finally:
        server.stop()
        dashboard.users.close()


def test_login_sets_a_strict_session_cookie_and_logout_ends_it_on_the_server(board):
    http, answer = board.login()
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "edgeguard_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; Secure under TLS
    token = http.cookies["edgeguard_session"]
    assert http.get(f"{board.url}/").status_code == 200
    http.post(f"{board.url}/logout", data={"csrf": board.csrf(http)})
    again = requests.get(f"{board.url}/", cookies={"edgeguard_session": token}, allow_redirects=False)
    assert again.status_code == 302  # the old cookie no longer opens anything


def test_the_session_id_is_rotated_at_login(board):
    http, _ = board.login()
    first = http.cookies["edgeguard_session"]
    token = login_token(http.get(f"{board.url}/login").text)
    http.post(f"{board.url}/login", data={"csrf": token, "username": "alice", "password": PASSWORD})
    assert http.cookies["edgeguard_session"] != first
    assert (
        requests.get(f"{board.url}/", cookies={"edgeguard_session": first}, allow_redirects=False).status_code
        == 302
    )


def test_an_idle_or_too_old_session_is_refused(tmp_path):
    site = make_site(tmp_path / "site", people=[])
    board = Board(site, "idle_minutes = 1\n")
    try:
        http, _ = board.login()
        token = http.cookies["edgeguard_session"]
        with sqlite3.connect(board.config.paths.users_db) as db:  # age the session as an hour would
            db.execute("UPDATE sessions SET seen = seen - 3600")
        assert (
            requests.get(
                f"{board.url}/", cookies={"edgeguard_session": token}, allow_redirects=False
            ).status_code
            == 302
        )
    finally:
        board.stop()


def test_wrong_passwords_are_throttled_and_logged_without_the_password(board, caplog):
    codes = [board.login("alice", f"wrong password {n}")[1].status_code for n in range(20)]
    assert codes[:5] == [401] * 5
    assert 429 in codes
    refused = next(r for r in (board.login("alice", "wrong again")[1],) if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert board.login("alice")[1].status_code == 429  # even the right one must wait
    assert "wrong password" not in caplog.text and "failed login for alice from 127.0.0.1" in caplog.text


def test_every_change_needs_the_csrf_token(board):
    http, _ = board.login()
    for path in ("/logout", "/users", "/add_record", "/records/1/delete", "/detection_logs/1/reviewed"):
        assert http.post(board.url + path, data={}).status_code == 403, path
        assert http.post(board.url + path, data={"csrf": "forged"}).status_code == 403, path
    assert http.get(f"{board.url}/").status_code == 200  # still logged in: the refused logout did nothing


def test_a_viewer_sees_but_changes_nothing(board):
    http, _ = board.login("victor")
    for path in ("/", "/detection_logs", "/view_records", "/live_feed", "/records/1"):
        assert http.get(board.url + path).status_code == 200, path
    assert http.get(f"{board.url}/users").status_code == 403
    token = board.csrf(http)
    for path in (
        "/users",
        "/add_record",
        "/records/1/delete",
        "/records/1",
        "/detection_logs/1/reviewed",
        "/alerts/test",
    ):
        assert http.post(board.url + path, data={"csrf": token, "confirm": "1"}).status_code == 403, path
    assert (board.site.training / "1").is_dir()


def test_security_headers_on_every_page(board):
    http, _ = board.login()
    for path in ("/", "/login", "/static/app.js"):
        headers = http.get(board.url + path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in http.get(f"{board.url}/").text  # no inline script for the CSP to forbid


def png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = zlib.compress(b"\0" * (width // 8 + 1) * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "name,data,expected",
    [
        ("notes.jpg", b"this is not a photo at all", "not an image"),
        ("bomb.png", png_bomb(60000, 60000), "image too large"),
        ("dogs.jpg", None, "no face found"),
    ],
)
def test_an_unusable_upload_is_refused_with_the_reason_and_nothing_is_written(board, name, data, expected):
    http, _ = board.login()
    if data is None:
        data = (PEOPLE.parent / "crowd" / "dogs.jpg").read_bytes()
    before = board.site.details.read_bytes()
    answer = http.post(
        f"{board.url}/add_record",
        data={"csrf": board.csrf(http, "/add_record"), "id": "9", "name": "Nobody"},
        files={"photos": (name, data)},
    )
    assert answer.status_code == 400 and expected in answer.text, answer.text[-800:]
    assert not (board.site.training / "9").exists() and board.site.details.read_bytes() == before


def test_a_50_mb_upload_is_refused_before_it_is_read(board):
    http, _ = board.login()
    answer = http.post(
        f"{board.url}/add_record",
        data={"csrf": board.csrf(http, "/add_record"), "id": "9", "name": "Big"},
        files={"photos": ("big.jpg", b"\0" * 50_000_000)},
    )
    assert answer.status_code == 413
    assert not (board.site.training / "9").exists()


def test_an_admin_adds_edits_and_deletes_a_person(board):
    http, _ = board.login()
    photo = lfw_photos("Tony_Blair")[0]
    answer = http.post(
        f"{board.url}/add_record",
        data={"csrf": board.csrf(http, "/add_record"), "id": "7", "name": "Tony Blair", "category": "vip"},
        files={"photos": (photo.name, photo.read_bytes())},
    )
    assert answer.status_code == 200 and "1 photo(s) added" in answer.text
    assert len(list((board.site.training / "7").iterdir())) == 1
    assert "7,Tony Blair," in board.site.details.read_text() and ",vip" in board.site.details.read_text()
    assert (board.site.training / "7").stat().st_mode & 0o077 == 0
    http.post(
        f"{board.url}/records/7",
        data={
            "csrf": board.csrf(http, "/records/7"),
            "name": "Tony Blair",
            "category": "wanted",
            "phone": "+15550100077",
        },
    )
    assert "+15550100077" in board.site.details.read_text()
    answer = http.post(
        f"{board.url}/records/7/delete", data={"csrf": board.csrf(http, "/records/7"), "confirm": "8"}
    )
    assert (board.site.training / "7").exists()  # the wrong Id typed: nothing deleted
    http.post(f"{board.url}/records/7/delete", data={"csrf": board.csrf(http, "/records/7"), "confirm": "7"})
    assert not (board.site.training / "7").exists() and "Tony Blair" not in board.site.details.read_text()


@pytest.mark.parametrize(
    "path",
    [
        "/captures/..%2Fedgeguard.toml",
        "/captures/../edgeguard.toml",
        "/captures/.hidden-face.jpg",
        "/captures/x.json",
        "/captures/..%2Fedgeguard/face.jpg",
        "/captures/..%2F..%2Fedgeguard.toml%00/face.jpg",
        "/captures/.hidden/face.jpg",
        "/captures/x/sidecar.jpg",
        "/captures/x/face.json",
        f"/captures/{'x' * 300}/face.jpg",
        "/records/1/photos/..%2F..%2Fedgeguard.toml",
        "/c/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_capture_routes_refuse_traversal(board, path):
    http, _ = board.login()
    answer = http.get(board.url + path)
    assert answer.status_code in (403, 404), (path, answer.status_code)
    assert b"[paths]" not in answer.content and b"root:" not in answer.content


def test_a_capture_is_served_to_a_logged_in_user_only(board):
    captures = board.config.paths.captures
    captures.mkdir(parents=True, exist_ok=True)
    (captures / "20261122-140211-000-gate-face.jpg").write_bytes(b"\xff\xd8jpeg")
    (captures / "20261122-140211-000-gate-frame.jpg").write_bytes(b"\xff\xd8frame")
    assert requests.get(
        f"{board.url}/captures/20261122-140211-000-gate/face.jpg", allow_redirects=False
    ).status_code in (302, 403)
    http, _ = board.login("victor")
    answer = http.get(f"{board.url}/captures/20261122-140211-000-gate/face.jpg")
    assert answer.status_code == 200 and answer.content == b"\xff\xd8jpeg"
    answer = http.get(f"{board.url}/captures/20261122-140211-000-gate/frame.jpg")
    assert answer.status_code == 200 and answer.content == b"\xff\xd8frame"


def test_a_capture_image_that_is_a_symlink_is_not_served(board, tmp_path):
    captures = board.config.paths.captures
    captures.mkdir(parents=True, exist_ok=True)
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8secret")
    (captures / "20261122-140211-000-gate-face.jpg").symlink_to(tmp_path / "secret.jpg")
    http, _ = board.login("victor")
    answer = http.get(f"{board.url}/captures/20261122-140211-000-gate/face.jpg")
    assert answer.status_code == 404 and b"secret" not in answer.content


def test_the_detection_log_filters_pages_and_exports_safely(board):
    for n in range(60):
        board.event_log.append(Event("unknown_face", time.time() - n, "gate", "Front Gate"))
    board.event_log.append(
        Event(
            "known_face",
            time.time(),
            "gate",
            "Front Gate",
            person_id="1",
            name='=HYPERLINK("http://evil")',
            category="wanted",
        )
    )
    http, _ = board.login("victor")
    page = http.get(f"{board.url}/detection_logs")
    assert "61 in all" in page.text and "page 1 of 2" in page.text
    assert "1 in all" in http.get(f"{board.url}/detection_logs", params={"type": "known_face"}).text
    assert "1 in all" in http.get(f"{board.url}/detection_logs", params={"person": "1"}).text
    csv = http.get(f"{board.url}/detection_logs.csv", params={"category": "wanted"}).text
    assert "'=HYPERLINK" in csv and csv.count("\n") == 2  # a formula is not run by a spreadsheet


def test_200_idle_connections_do_not_stop_a_login(board):
    idle = []
    try:
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", board.port)))  # connected, saying nothing
        started = time.monotonic()
        http, answer = board.login()
        assert answer.status_code == 302 and time.monotonic() - started < 20
    finally:
        for sock in idle:
            sock.close()


def test_a_login_code_by_sms_after_the_password(tmp_path):
    site = make_site(tmp_path / "site", people=[])
    board = Board(site, 'otp = "admin"\n', admin_phone="+15550100042")
    try:
        http, answer = board.login()
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/login/code")
        assert http.get(f"{board.url}/", allow_redirects=False).status_code == 302  # not in yet
        [message] = board.outbox.list(["pending"])
        assert message.to_number == "+15550100042"
        code = re.search(r"code: (\d{6})", message.body).group(1)
        token = board.csrf(http, "/login/code")
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        assert http.post(f"{board.url}/login/code", data={"csrf": token, "code": wrong}).status_code == 401
        answer = http.post(
            f"{board.url}/login/code", data={"csrf": token, "code": code}, allow_redirects=False
        )
        assert answer.status_code == 302
        assert http.get(f"{board.url}/").status_code == 200
        assert (
            board.login("victor")[1].headers["Location"].endswith("/")
        )  # a viewer needs no code with otp = admin
        # a second login within a minute gets no second text: the phone is not flooded
        assert board.login()[1].status_code == 429 and len(board.outbox.list(["pending"])) == 1
    finally:
        board.stop()


def test_five_wrong_codes_end_the_login(tmp_path):
    site = make_site(tmp_path / "site", people=[])
    board = Board(site, 'otp = "all"\n', admin_phone="+15550100042")
    try:
        http, _ = board.login()
        token = board.csrf(http, "/login/code")
        for _ in range(5):
            assert http.post(
                f"{board.url}/login/code", data={"csrf": token, "code": "000000"}
            ).status_code in (401, 200)
        code = re.search(r"code: (\d{6})", board.outbox.list(["pending"])[0].body).group(1)
        http.post(f"{board.url}/login/code", data={"csrf": token, "code": code})
        assert (
            http.get(f"{board.url}/", allow_redirects=False).status_code == 302
        )  # even the right code is too late
    finally:
        board.stop()


def test_check_reports_the_dashboard(tmp_path):
    site = make_site(tmp_path / "site", people=[])
    site.write_config('[web]\nlisten = "0.0.0.0:18781"\n')
    out = helpers.edgeguard(site.config_path, "check", "--source", "/nonexistent.mp4").stdout
    assert "[WARN] dashboard: http://0.0.0.0:18781 (starts with the daemon); 0 user(s)" in out
    assert "listens beyond this device (0.0.0.0:18781) without TLS" in out


def test_user_commands_read_the_password_from_standard_input(tmp_path):
    site = make_site(tmp_path / "site", people=[])
    user = [sys.executable, "-m", "edgeguard", "--config", str(site.config_path), "user"]

    def run(*args: str, password: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [*user, *args],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=helpers.clean_env(),
            timeout=60,
        )

    assert run("add", "bob", password="short").returncode == 2  # fewer than 12 characters
    assert "at least 12 characters" in run("add", "bob", password="short").stderr
    added = run("add", "bob", "--role", "admin", "--phone", "+15550100042", password=PASSWORD)
    assert added.returncode == 0 and "user bob added (admin)" in added.stdout
    assert "exists already" in run("add", "bob", password=PASSWORD).stderr
    listed = run("list").stdout
    assert "bob admin *********042" in listed and "+15550100042" not in listed
    assert run("passwd", "bob", password="another long password").returncode == 0
    assert run("remove", "bob").returncode == 0 and run("list").stdout == ""
    assert run("remove", "bob").returncode == 1
    with sqlite3.connect(site.base / "users.db") as db:
        assert db.execute("SELECT hash FROM users").fetchall() == []
    assert (site.base / "users.db").stat().st_mode & 0o077 == 0


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate"
)
@pytest.mark.filterwarnings(
    "ignore::urllib3.exceptions.InsecureRequestWarning"
)  # our own self-signed certificate
def test_https_with_a_certificate_marks_the_cookie_secure(tmp_path):
    site = make_site(tmp_path / "site", people=[])
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(site.base / "key.pem"),
            "-out",
            str(site.base / "cert.pem"),
        ],
        capture_output=True,
    )
    assert made.returncode == 0, made.stderr
    board = Board(site, 'tls_cert = "cert.pem"\ntls_key = "key.pem"\n')
    board.url = board.url.replace("http://", "https://")
    try:
        http = requests.Session()  # verify=False on each call: our own self-signed certificate
        token = login_token(http.get(f"{board.url}/login", verify=False).text)
        answer = http.post(
            f"{board.url}/login",
            data={"csrf": token, "username": "alice", "password": PASSWORD},
            allow_redirects=False,
            verify=False,
        )
        assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]
        assert (
            http.get(f"{board.url}/", verify=False)
            .headers["Strict-Transport-Security"]
            .startswith("max-age=")
        )
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{board.port}/login", timeout=5)  # no plain HTTP beside it
    finally:
        board.stop()


def test_a_server_sent_event_carries_every_line_of_its_text():
    from edgeguard.web.events import server_sent

    sent = server_sent("row", "<tr>\n<td>a\r\nb\rc\u2028d</td>\n</tr>\n")
    assert sent.startswith("event: row\n") and sent.endswith("\n\n")
    data = [line.removeprefix("data: ") for line in sent.split("\n")[1:-2]]
    assert "\n".join(data) == "<tr>\n<td>a\nb\nc\u2028d</td>\n</tr>\n"  # as the browser joins them


def test_the_favicon_is_there_without_a_login(board):
    answer = requests.get(f"{board.url}/favicon.ico", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] in (
        "image/x-icon",
        "image/vnd.microsoft.icon",
    )
    assert answer.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon" href="/favicon.ico"' in requests.get(f"{board.url}/login", timeout=10).text


def test_closing_one_of_two_idle_event_streams_keeps_the_other():
    """Two streams with empty queues: closing the second must not take the first's queue (deques compare
    by content), which then broke the first stream's close with a ValueError."""
    import threading

    from edgeguard.web.events import EventHub

    hub = EventHub()
    stop_a, stop_b = threading.Event(), threading.Event()
    a = hub.stream("alice", stop_a, render=str)
    b = hub.stream("bob", stop_b, render=str)
    assert next(a) == next(b) == "retry: 1000\n\n"
    b.close()  # the second closes first
    hub.publish({"seq": 1})
    assert next(a).startswith("event: row")  # the first still gets what is published
    a.close()
    assert not hub.watching()
