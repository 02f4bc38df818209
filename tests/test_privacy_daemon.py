"""Encryption at rest end to end: a real daemon replaying the Hamilton clip with `[privacy] encrypt` on
(the default) leaves no JPEG header and no plain name in its files, while the same run's image links, its
dashboard and `edgeguard events` show the right images and names; an event past `[events] retention_days`
is deleted at start, its bytes with it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
from conftest import CLIP, capture_image
from fake_twilio import FakeTwilio
from helpers import free_port
from test_daemon_alerts import GUARD, LIN, edgeguard, env, fetch, make_site, wait_for_body
from test_web import PASSWORD, login_token

from edgeguard.events.event import Event
from edgeguard.store.event_log import EventLog
from edgeguard.web.users import open_users

JPEG = b"\xff\xd8\xff"
RETIRED = "Retired Visitor Name"  # an event's name from long ago, logged plain before encryption


@pytest.fixture
def daemons(daemons):
    """Daemons with the Twilio credentials of test_daemon_alerts in their environment."""
    return lambda config, *args: daemons(config, *args, env=env())


@pytest.fixture
def fake():
    server = FakeTwilio().start()
    yield server
    server.stop()


def site_files(base: Path) -> list[Path]:
    """The files the daemon writes (the watchlist's photos and Details.csv stay plain, by design)."""
    sources = (base / "TrainingImage", base / "Details")
    return [p for p in base.rglob("*") if p.is_file() and not any(s in p.parents for s in sources)]


@pytest.mark.slow  # a daemon replaying the clip until both alerts went out
def test_an_encrypted_run_keeps_nothing_plain_and_shows_everything(tmp_path, fake, daemons):
    port = free_port()
    site = make_site(tmp_path / "site", fake, [GUARD], loop=True, public_port=port)
    config = site.config()
    plain = EventLog(config.paths.events_db)  # from before encryption, older than the 365 days kept
    plain.append(Event("known_face", time.time() - 400 * 86400, "gate", "Gate", person_id="9", name=RETIRED))
    plain.close()
    users = open_users(config.paths.users_db)
    users.add("alice", PASSWORD, "admin", None)
    users.close()

    daemon = daemons(site.config_path, "--source", str(CLIP))
    wait_for_body(fake, "unknown person", 60, daemon)
    known = next(r.form["Body"][0] for r in fake.delivered() if LIN[1] in r.form["Body"][0])
    link = re.search(rf"http://127\.0\.0\.1:{port}/c/\S+", known).group(0)
    status, kind, linked = fetch(link)
    assert status == 200 and kind == "image/jpeg" and linked.startswith(JPEG)

    listed = edgeguard(site.config_path, "events", "--json")
    events = [json.loads(line) for line in listed.stdout.splitlines()]
    assert RETIRED not in listed.stdout and min(e["time"] for e in events) > time.time() - 3600
    his = [e for e in events if e["type"] == "known_face"]
    assert his and {e["id"] for e in his} == {LIN[0]} and {e["name"] for e in his} == {LIN[1]}
    faces = {capture_image(e["capture"]) for e in events if e.get("capture")}
    assert linked in faces

    dashboard = requests.Session()
    url = f"http://127.0.0.1:{port}"
    token = login_token(dashboard.get(f"{url}/login").text)
    dashboard.post(f"{url}/login", data={"csrf": token, "username": "alice", "password": PASSWORD})
    page = dashboard.get(f"{url}/detection_logs", params={"person": LIN[0]})
    assert page.status_code == 200 and LIN[1] in page.text and RETIRED not in page.text
    capture_id = Path(his[0]["capture"]).name.removesuffix("-face.jpg")
    shown = dashboard.get(f"{url}/captures/{capture_id}/face.jpg")
    assert shown.status_code == 200 and shown.content == capture_image(his[0]["capture"])
    assert shown.content.startswith(JPEG)

    assert daemon.stop() == 0, daemon.stderr
    assert "retention: 1 event(s)" in daemon.stderr
    files = site_files(site.base)
    assert any(p.parent == config.paths.captures for p in files)
    for path in files:
        data = path.read_bytes()
        assert not data.startswith(JPEG) and b"JFIF" not in data, path
        for name in (LIN[1], "Miranda", RETIRED):
            assert name.encode() not in data, (path, name)
