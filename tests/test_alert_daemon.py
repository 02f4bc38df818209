"""Alerts end to end: real `python -m edgeguard` processes replaying the Hamilton clip, talking to
FakeTwilio (tests/fake_twilio.py) over loopback with the real twilio client, and serving image links.

Checks what a guard's phone would get (through what the fake server received), what the image link
serves, what survives kill -9, what `edgeguard test-alert` / `edgeguard alerts` say, and that a
Twilio outage does not slow the camera.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fake_twilio import FakeTwilio  # tests/fake_twilio.py

from conftest import PEOPLE, TESTDATA, Site
from daemons import Daemon

CLIP = TESTDATA / "video" / "short_hamilton_clip.mp4"
ACCOUNT = "AC" + "1" * 32
# a token that cannot occur by chance in a log, so its absence means something
TOKEN = "a7c3e9f1b5d2" + "0d1e" * 5
FROM = "+15551230000"
GUARD = "+15551230009"
LIN = ("1", "Lin-Manuel Miranda")


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(credentials: bool = True) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith("TWILIO_") and k not in ("CREDENTIALS_DIRECTORY", "EDGEGUARD_CONFIG")}
    if credentials:
        out.update(TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN)
    return out


def make_site(base: Path, fake: FakeTwilio, to: list[str], *, loop: bool = False, public_port: int | None = None,
              timeout: float = 10.0) -> Site:
    site = Site(base)
    site.add_person(LIN[0], LIN[1], [PEOPLE / "lin-manuel-miranda.png"], category="wanted")
    alerts = "mms = true\n"
    if public_port is not None:
        alerts += f'public_url = "http://127.0.0.1:{public_port}"\nlisten = "127.0.0.1:{public_port}"\n'
    numbers = ", ".join(f'"{n}"' for n in to)
    site.write_config(
        f"[camera]\nloop = {'true' if loop else 'false'}\n"
        f'[twilio]\napi_url = "{fake.url}"\nfrom_number = "{FROM}"\ntimeout = {timeout}\n'
        f"[alerts]\n{alerts}"
        f'[[alerts.route]]\nto = [{numbers}]\nevents = ["unknown_face", "known_face"]\n'
    )
    return site


def edgeguard(config: Path, *args: str, timeout: float = 60, credentials: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeguard", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, env=env(credentials))


@pytest.fixture
def daemons(daemons):
    """Daemons with the test's Twilio credentials in their environment."""
    return lambda config, *args: daemons(config, *args, env=env())


@pytest.fixture
def fake():
    server = FakeTwilio().start()
    yield server
    server.stop()


def wait_for_body(fake: FakeTwilio, text: str, timeout: float, daemon: Daemon | None = None):
    """The first accepted request whose Body contains `text`."""
    deadline = time.monotonic() + timeout
    while True:
        for request in fake.delivered():
            if text in request.form["Body"][0]:
                return request
        if daemon is not None:
            assert daemon.proc.poll() is None, f"daemon exited:\n{daemon.stderr}"
        assert time.monotonic() < deadline, (f"no message with {text!r} within {timeout} s:\n"
                                             + (daemon.stderr if daemon else ""))
        time.sleep(0.05)


def outbox_rows(db: Path) -> list[dict]:
    """The outbox read directly (read-only); [] before it exists."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM messages ORDER BY id")]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return []


def fetch(url: str, method: str = "GET") -> tuple[int, str, bytes]:
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/c/\S+)", url)
    assert match, url
    conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
    try:
        conn.request(method, match.group(2))
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def assert_no_secrets(text: str, numbers: list[str]) -> None:
    assert TOKEN not in text
    assert base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode() not in text
    for number in numbers:
        assert number not in text and number.lstrip("+") not in text, number
        assert number[-10:-3] not in text, number  # nothing longer than the last 3 digits


def blank_video(path: Path, frames: int = 15) -> Path:
    """A short video with no faces in it (made here, not test data)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    assert writer.isOpened()
    for n in range(frames):
        writer.write(np.full((240, 320, 3), 60 + n, np.uint8))
    writer.release()
    return path


# ---------------------------------------------------------------- the clip, end to end


def test_replay_sends_both_alerts_and_the_link_serves_the_capture(tmp_path, fake, daemons):
    port = free_port()
    site = make_site(tmp_path / "site", fake, [GUARD], loop=True, public_port=port)
    daemon = daemons(site.config_path, "--source", str(CLIP))

    unknown = wait_for_body(fake, "unknown person", 60, daemon)
    known = [r for r in fake.delivered() if LIN[1] in r.form["Body"][0]]
    assert known, [r.form["Body"] for r in fake.delivered()]
    assert known[0].time < unknown.time  # frame 3 comes before frame 214
    assert re.fullmatch(r"EdgeGuard ALERT Site: Lin-Manuel Miranda \(Id 1, wanted\) \d\d:\d\d:\d\d",
                        known[0].form["Body"][0])
    for request in (known[0], unknown):
        assert request.form["To"] == [GUARD] and request.form["From"] == [FROM]
        assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    body = unknown.form["Body"][0]
    match = re.fullmatch(rf"EdgeGuard ALERT Site: unknown person \d\d:\d\d:\d\d "
                         rf"(http://127\.0\.0\.1:{port}/c/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", body)
    assert match, body
    link = match.group(1)
    (media,) = unknown.form["MediaUrl"]  # mms = true
    assert media.startswith(f"http://127.0.0.1:{port}/c/")
    assert "MediaUrl" not in known[0].form  # no capture for a known face: nothing to attach

    # the daemon is still running (the clip loops): the links work now
    assert daemon.proc.poll() is None
    status, kind, image = fetch(link)
    assert status == 200 and kind == "image/jpeg" and image[:3] == b"\xff\xd8\xff"
    status, kind, head = fetch(link, "HEAD")
    assert status == 200 and kind == "image/jpeg" and head == b""
    assert fetch(media)[2] == image
    status, _, _ = fetch(link[:-2] + ("AA" if not link.endswith("AA") else "BB"))
    assert status == 403  # a changed signature is refused

    # Lin-Manuel's later sightings (frame ~91, and again as the clip loops) are in the cooldown
    deadline = time.monotonic() + 30
    while daemon.stderr.count("event known_face Lin-Manuel Miranda") < 2:
        assert daemon.proc.poll() is None and time.monotonic() < deadline, daemon.stderr
        time.sleep(0.05)
    time.sleep(0.5)  # an alert for it would be on its way by now
    assert daemon.stop() == 0, daemon.stderr
    assert len([r for r in fake.delivered() if LIN[1] in r.form["Body"][0]]) == 1

    events = [json.loads(line) for line in edgeguard(site.config_path, "events", "--json").stdout.splitlines()]
    captures = {e["capture"] for e in events if e["type"] == "unknown_face"}
    assert len(captures) == 1, events
    capture = Path(captures.pop())
    assert capture.parent == site.base / "Unknown_Face_Captures"
    assert image == capture.read_bytes()

    phones = [GUARD] + [line.split(",")[2] for line in site.details.read_text().splitlines()[1:]]
    assert_no_secrets(daemon.stderr, phones)
    assert "Traceback" not in daemon.stderr


# ---------------------------------------------------------------- kill -9 with alerts pending


def test_kill_9_with_20_pending_then_all_delivered_once_in_order(tmp_path, daemons):
    numbers = [f"+155512300{n:02d}" for n in range(1, 11)]
    fake = FakeTwilio().start()
    port = fake.port
    fake.stop()  # Twilio unreachable: connection refused
    site = make_site(tmp_path / "site", fake, numbers)
    db = site.base / "outbox.db"

    daemon = daemons(site.config_path, "--source", str(CLIP))
    deadline = time.monotonic() + 90
    while len([r for r in outbox_rows(db) if r["status"] == "pending"]) < 20:
        assert daemon.proc.poll() is None, daemon.stderr
        assert time.monotonic() < deadline, f"fewer than 20 alerts queued:\n{daemon.stderr}"
        time.sleep(0.05)
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL

    listed = edgeguard(site.config_path, "alerts", "--pending", "--json")
    assert listed.returncode == 0, listed.stderr
    pending = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(pending) == 20
    assert [m["id"] for m in pending] == sorted(m["id"] for m in pending)
    assert all(m["status"] == "pending" and m["sid"] is None for m in pending)
    assert {m["to"] for m in pending} == {"*" * 9 + n[-3:] for n in numbers}
    bodies = [m["body"] for m in pending]
    assert sum(LIN[1] in b for b in bodies) == 10 and sum("unknown person" in b for b in bodies) == 10
    assert_no_secrets(listed.stdout, numbers)

    restarted = FakeTwilio(port=port).start()
    try:
        second = edgeguard(site.config_path, "run", "--source", str(blank_video(tmp_path / "blank.avi")), timeout=60)
        assert second.returncode == 0, second.stderr
        assert "20 alert(s) pending from before" in second.stderr
        assert restarted.wait_for(20, 5)
        time.sleep(0.3)  # anything sent twice would show up by now
        got = list(restarted.received)
        assert len(got) == 20 and all(r.answered == 201 for r in got)
        sent = [("*" * 9 + r.form["To"][0][-3:], r.form["Body"][0]) for r in got]
        assert sent == [(m["to"], m["body"]) for m in pending]  # in queue order, each once
        assert len(set((r.form["To"][0], r.form["Body"][0]) for r in got)) == 20
    finally:
        restarted.stop()

    still = edgeguard(site.config_path, "alerts", "--pending")
    assert still.returncode == 0 and still.stdout == "", still.stdout
    everything = [json.loads(line) for line in edgeguard(site.config_path, "alerts", "--json").stdout.splitlines()]
    assert [m["id"] for m in everything] == [m["id"] for m in pending]
    assert all(m["status"] == "sent" and m["sid"].startswith("SM") for m in everything)


# ---------------------------------------------------------------- edgeguard test-alert


def test_test_alert_reports_sent_failed_and_dry_run(tmp_path, fake):
    site = make_site(tmp_path / "site", fake, [GUARD])

    ok = edgeguard(site.config_path, "test-alert", "--to", "+15551230009")
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(r"\*{9}009: sent \(SM[0-9a-f]{32}\)\n", ok.stdout), ok.stdout
    assert fake.wait_for(1, 5)
    (request,) = fake.received
    assert request.form["To"] == ["+15551230009"] and request.form["From"] == [FROM]
    assert re.fullmatch(r"EdgeGuard TEST Site: test alert \d\d:\d\d:\d\d", request.form["Body"][0])

    fake.script = [("error", 400, 21211)]
    bad = edgeguard(site.config_path, "test-alert", "--to", "+15551230009")
    assert bad.returncode == 1
    assert "*********009: failed: Twilio error 21211: the recipient is not a valid phone number" in bad.stdout

    dry = edgeguard(site.config_path, "test-alert", "--to", "+15551230009", credentials=False)
    assert dry.returncode == 1
    assert "*********009" in dry.stdout and "dry run" in dry.stdout
    time.sleep(0.2)
    assert len(fake.received) == 2  # the dry run reached nothing

    for result in (ok, bad, dry):
        assert_no_secrets(result.stdout + result.stderr, ["+15551230009"])


# ---------------------------------------------------------------- Twilio outage vs. the camera


def test_twilio_hanging_does_not_slow_frame_processing(tmp_path, fake, daemons):
    healthy_site = make_site(tmp_path / "healthy", fake, [GUARD])
    healthy = daemons(healthy_site.config_path, "--source", str(CLIP))
    baseline = healthy.wait_for_line("source ended", 90)
    assert healthy.proc.wait(30) == 0, healthy.stderr  # both alerts went out: no drain wait
    assert fake.wait_for(2, 5)  # both alerts went out

    hanging = FakeTwilio(script=[("hang", 5)] * 40).start()
    try:
        site = make_site(tmp_path / "hanging", hanging, [GUARD])
        daemon = daemons(site.config_path, "--source", str(CLIP))
        slow = daemon.wait_for_line("source ended", 90)
        rows = outbox_rows(site.base / "outbox.db")
        # the outage was real: at the end of the clip the alerts are still waiting on Twilio
        assert len(rows) >= 2 and any(r["status"] == "pending" for r in rows)
        print(f"clip replay: {baseline:.1f} s with Twilio healthy, {slow:.1f} s with Twilio hanging")
        assert slow < 2 * baseline + 3, (baseline, slow)
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        assert "Traceback" not in daemon.stderr
    finally:
        hanging.stop()
