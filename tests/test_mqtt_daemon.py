"""MQTT as an output of the real daemon's event bus: `edgeguard run` replays the Hamilton clip with `[mqtt]`
on, against a real Mosquitto broker on a loopback port.  Every event of the event log arrives on
`<prefix>/events` (in seq order, once per event_id after de-duplication), also when the broker was away
while they were recorded and the daemon was killed with SIGKILL before it could send them."""

from __future__ import annotations

import json
import signal
import sqlite3

import pytest
from brokers import Broker, Listener, needs_mosquitto
from conftest import CLIP, make_site
from helpers import wait_for

pytestmark = [pytest.mark.slow, needs_mosquitto]

PREFIX = "edgeguard/door-1"


def logged_seqs(db) -> list[int]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [row[0] for row in conn.execute("SELECT seq FROM events ORDER BY seq")]
    except sqlite3.Error:
        return []


def received(listener: Listener) -> list[dict]:
    """The events on the device's topic, duplicates (at least once) dropped by event_id, in arrival order."""
    seen: dict[str, dict] = {}
    for payload in listener.on(f"{PREFIX}/events"):
        event = json.loads(payload)
        seen.setdefault(event["event_id"], event)
    return list(seen.values())


def test_every_event_reaches_the_broker_through_an_outage_and_a_kill(tmp_path, daemons):
    broker = Broker(tmp_path / "broker").start()
    listener = Listener(broker.port, f"{PREFIX}/events")
    site = make_site(
        tmp_path / "site",
        f"[camera]\nloop = true\nrealtime = true\n[web]\nenabled = false\n"
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "door-1"\n'
        "keepalive = 5\ndiscovery = false\n",
    )
    db = site.base / "events.db"
    try:
        daemon = daemons(site.config_path, "--source", str(CLIP))
        wait_for(lambda: len(received(listener)) >= 1, 60, lambda: f"a first event:\n{daemon.stderr}")

        broker.stop()  # events go on being recorded while the broker is away
        before = len(logged_seqs(db))
        wait_for(
            lambda: len(logged_seqs(db)) >= before + 2, 60, lambda: f"events meanwhile:\n{daemon.stderr}"
        )
        daemon.proc.send_signal(signal.SIGKILL)  # nothing sent, nothing flushed
        daemon.proc.wait(10)
        logged = logged_seqs(db)

        broker.start()
        again = daemons(site.config_path, "--source", str(CLIP))
        wait_for(
            lambda: {e["seq"] for e in received(listener)} >= set(logged),
            60,
            lambda: (
                f"every logged event: {sorted(e['seq'] for e in received(listener))} of {logged}\n"
                f"{again.stderr}"
            ),
        )
        seqs = [e["seq"] for e in received(listener)]
        assert seqs == sorted(seqs)  # in order, after the de-duplication
        assert all(e["device"] == "door-1" and e["camera"] == "camera" for e in received(listener))
        again.proc.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0, again.stderr
        assert "+15550100" not in again.stderr  # no phone number of the watchlist in the log
    finally:
        listener.close()
        broker.stop()
