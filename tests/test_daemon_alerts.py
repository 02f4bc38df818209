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
import re
import signal
import subprocess
from pathlib import Path

import cv2
import helpers  # tests/helpers.py
import numpy as np
import pytest
from conftest import CLIP, Site, capture_image
from conftest import make_site as make_any_site
from daemons import Daemon
from fake_twilio import FakeTwilio  # tests/fake_twilio.py
from helpers import clean_env, free_port, wait_for

ACCOUNT = "AC" + "1" * 32
# a token that cannot occur by chance in a log, so its absence means something
TOKEN = "a7c3e9f1b5d2" + "0d1e" * 5
FROM = "+15551230000"
GUARD = "+15551230009"
LIN = ("1", "Lin-Manuel Miranda")


# ---------------------------------------------------------------- helpers


def env(credentials: bool = True) -> dict[str, str]:
    return clean_env(TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN) if credentials else clean_env()


def make_site(
    base: Path,
    fake: FakeTwilio,
    to: list[str],
    *,
    loop: bool = False,
    public_port: int | None = None,
    timeout: float = 10.0,
) -> Site:
    """Lin-Manuel (wanted) on the watchlist, alerts for known and unknown faces to `to` through `fake`."""
    alerts = "mms = true\n"
    if public_port is not None:
        alerts += f'public_url = "http://127.0.0.1:{public_port}"\nlisten = "127.0.0.1:{public_port}"\n'
    numbers = ", ".join(f'"{n}"' for n in to)
    return make_any_site(
        base,
        (
            f"[camera]\nloop = {'true' if loop else 'false'}\n"
            f'[twilio]\napi_url = "{fake.url}"\nfrom_number = "{FROM}"\ntimeout = {timeout}\n'
            f"[alerts]\n{alerts}"
            f'[[alerts.route]]\nto = [{numbers}]\nevents = ["unknown_face", "known_face"]\n'
        ),
        people=[(*LIN, "lin-manuel-miranda.png", "wanted")],
    )


def edgeguard(
    config: Path, *args: str, timeout: float = 60, credentials: bool = True
) -> subprocess.CompletedProcess:
    return helpers.edgeguard(config, *args, timeout=timeout, env=env(credentials))


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

    def found():
        if daemon is not None:
            assert daemon.proc.poll() is None, f"daemon exited:\n{daemon.stderr}"
        return next((r for r in fake.delivered() if text in r.form["Body"][0]), None)

    return wait_for(
        found, timeout, lambda: f"a message with {text!r}:\n" + (daemon.stderr if daemon else ""), poll=0.05
    )


def outbox_rows(db: Path) -> list[dict]:
    """The outbox read directly (read-only); [] before it exists."""
    return helpers.db_rows(db, "SELECT * FROM messages ORDER BY id")


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


@pytest.mark.slow  # a whole-clip daemon replay
def test_replay_sends_both_alerts_and_the_link_serves_the_capture(tmp_path, fake, daemons):
    port = free_port()
    site = make_site(tmp_path / "site", fake, [GUARD], loop=True, public_port=port)
    daemon = daemons(site.config_path, "--source", str(CLIP))

    unknown = wait_for_body(fake, "unknown person", 60, daemon)
    known = [r for r in fake.delivered() if LIN[1] in r.form["Body"][0]]
    assert known, [r.form["Body"] for r in fake.delivered()]
    assert known[0].time < unknown.time  # frame 3 comes before frame 214
    assert re.fullmatch(
        rf"EdgeGuard ALERT Site: Lin-Manuel Miranda \(Id 1, wanted\), (strong|possible) match "
        rf"\d\d:\d\d:\d\d http://127\.0\.0\.1:{port}/c/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
        known[0].form["Body"][0],
    )
    for request in (known[0], unknown):
        assert request.form["To"] == [GUARD] and request.form["From"] == [FROM]
        assert request.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    body = unknown.form["Body"][0]
    match = re.fullmatch(
        rf"EdgeGuard ALERT Site: unknown person \d\d:\d\d:\d\d "
        rf"(http://127\.0\.0\.1:{port}/c/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)",
        body,
    )
    assert match, body
    link = match.group(1)
    (media,) = unknown.form["MediaUrl"]  # mms = true
    assert media.startswith(f"http://127.0.0.1:{port}/c/")
    assert known[0].form["MediaUrl"][0].startswith(f"http://127.0.0.1:{port}/c/")  # his sighting's face

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
    def seen_again():
        assert daemon.proc.poll() is None, daemon.stderr
        return daemon.stderr.count("event known_face Lin-Manuel Miranda") >= 2

    wait_for(seen_again, 30, lambda: daemon.stderr, poll=0.05)
    # The alerter queues a text in the outbox before the frame loop goes on; once the daemon has exited,
    # the outbox holds every text the later sighting could have caused, and nothing more is sent.
    assert daemon.stop() == 0, daemon.stderr
    assert "stopped after" in daemon.stderr
    assert len([m for m in outbox_rows(site.base / "outbox.db") if LIN[1] in m["body"]]) == 1
    assert len([r for r in fake.delivered() if LIN[1] in r.form["Body"][0]]) == 1

    events = [
        json.loads(line) for line in edgeguard(site.config_path, "events", "--json").stdout.splitlines()
    ]
    captures = {e["capture"] for e in events if e["type"] == "unknown_face"}
    assert len(captures) == 1, events
    capture = Path(captures.pop())
    assert capture.parent == site.base / "Unknown_Face_Captures"
    assert image == capture_image(capture)

    phones = [GUARD] + [line.split(",")[2] for line in site.details.read_text().splitlines()[1:]]
    assert_no_secrets(daemon.stderr, phones)
    assert "Traceback" not in daemon.stderr


# ---------------------------------------------------------------- kill -9 with alerts pending


@pytest.mark.slow  # a whole-clip daemon replay
def test_kill_9_with_20_pending_then_all_delivered_once_in_order(tmp_path, daemons):
    numbers = [f"+155512300{n:02d}" for n in range(1, 11)]
    fake = FakeTwilio().start()
    port = fake.port
    fake.stop()  # Twilio unreachable: connection refused
    site = make_site(tmp_path / "site", fake, numbers)
    db = site.base / "outbox.db"

    daemon = daemons(site.config_path, "--source", str(CLIP))

    def twenty_pending():
        assert daemon.proc.poll() is None, daemon.stderr
        return len([r for r in outbox_rows(db) if r["status"] == "pending"]) >= 20

    wait_for(twenty_pending, 90, lambda: f"20 alerts queued:\n{daemon.stderr}", poll=0.05)
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
        second = edgeguard(
            site.config_path, "run", "--source", str(blank_video(tmp_path / "blank.avi")), timeout=60
        )
        assert second.returncode == 0, second.stderr
        assert "20 alert(s) pending from before" in second.stderr
        assert restarted.wait_for(20, 5)
        # the second run has exited: every request it made is in `received` (recorded before it is answered)
        got = list(restarted.received)
        assert len(got) == 20 and all(r.answered == 201 for r in got)
        sent = [("*" * 9 + r.form["To"][0][-3:], r.form["Body"][0]) for r in got]
        assert sent == [(m["to"], m["body"]) for m in pending]  # in queue order, each once
        assert len(set((r.form["To"][0], r.form["Body"][0]) for r in got)) == 20
    finally:
        restarted.stop()

    still = edgeguard(site.config_path, "alerts", "--pending")
    assert still.returncode == 0 and still.stdout.startswith("no pending messages in the outbox"), (
        still.stdout
    )
    everything = [
        json.loads(line) for line in edgeguard(site.config_path, "alerts", "--json").stdout.splitlines()
    ]
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
    assert len(fake.received) == 2  # the dry run has exited, and it reached nothing

    for result in (ok, bad, dry):
        assert_no_secrets(result.stdout + result.stderr, ["+15551230009"])


# ---------------------------------------------------------------- Twilio outage vs. the camera


@pytest.mark.slow  # two whole-clip daemon replays, and a bound on how long the second takes
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
