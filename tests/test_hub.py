"""The fleet hub's ingest (`edgeguard hub`): events checked against the MQTT schema, stored once by event_id,
gaps by seq, availability, bad input logged once and skipped; SQLite and a real PostgreSQL server, against a
real Mosquitto broker; two hub processes sharing the load through a shared subscription."""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from brokers import Broker, needs_mosquitto
from helpers import wait_for
from hub_fleet import Publisher, hub_config, payload, start_hub, stop_hub
from postgres import postgres_server_fixture  # noqa: F401  (the fixture postgres_server)

from edgeguard.hub.ingest import BadEvent, EventCheck, Ingest, Message
from edgeguard.hub.store import Gap, HubStore
from edgeguard.hub.tables import metadata

MAX = 64 * 1024


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        url = request.getfixturevalue("postgres_server").database()
    hub = HubStore.open(url)
    yield hub
    hub.close()


def bad(topic: str, body: dict | bytes) -> str:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(BadEvent) as caught:
        EventCheck(MAX).event(topic, data)
    return str(caught.value)


def test_a_device_event_passes_the_check():
    event = payload("shop-1", 4)
    assert EventCheck(MAX).event("edgeguard/shop-1/events", json.dumps(event).encode()) == event


def test_bad_input_is_refused_with_its_reason():
    topic = "edgeguard/shop-1/events"
    assert "schema version 2" in bad(topic, {**payload("shop-1", 1), "schema": 2})
    missing = payload("shop-1", 1)
    del missing["camera"]
    assert "'camera' is a required property" in bad(topic, missing)
    assert "another device's topic" in bad("edgeguard/shop-1/events", payload("shop-2", 1))
    assert "more than [hub] max_event_kb" in bad(topic, b"x" * (10 * 1024 * 1024))
    assert "not JSON" in bad(topic, b"\xff{")
    assert "not a JSON object" in bad(topic, b"[1]")
    wrong = {**payload("shop-1", 1), "seq": 0}
    assert "$.seq" in bad(topic, wrong)


def test_the_migrations_make_the_schema_of_tables_py(store):
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    HubStore.open(
        store.engine.url.render_as_string(hide_password=False)
    ).close()  # a second start finds the schema current


def test_each_event_is_stored_once_and_gaps_are_found(store):
    rows = [payload("a", seq) for seq in (1, 2, 5, 6, 9)] + [payload("b", seq) for seq in (3, 4)]
    from edgeguard.hub.store import event_row

    assert store.add_events([event_row(e, 1.0) for e in rows]) == 7
    assert store.add_events([event_row(e, 2.0) for e in rows[:3]]) == 0
    assert store.count() == 7
    assert store.gaps() == [Gap("a", 3, 4), Gap("a", 7, 8)]
    assert store.gaps("b") == []
    devices = {d["device"]: d for d in store.devices()}
    assert devices["a"]["events"] == 5 and devices["a"]["last_event_time"] == pytest.approx(1_700_000_009.0)
    assert devices["a"]["online"] is None
    store.set_availability("a", True, 5.0)
    store.set_availability("c", False, 6.0)
    devices = {d["device"]: d for d in store.devices()}
    assert devices["a"]["online"] is True and devices["c"]["online"] is False and devices["c"]["events"] == 0


def message(topic: str, body: dict | bytes, mid: int) -> Message:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Message(topic, data, mid, 1, 10.0)


def test_ingest_stores_the_good_skips_the_bad_once_and_acknowledges_all(store, caplog):
    acked: list[int] = []
    ingest = Ingest(store, EventCheck(MAX), lambda mid, qos: acked.append(mid))
    topic = "edgeguard/shop-1/events"
    batch = [
        message(topic, payload("shop-1", 1), 1),
        message(topic, {**payload("shop-1", 2), "schema": 9}, 2),
        message(topic, {**payload("shop-1", 3), "schema": 9}, 3),
        message(topic, payload("shop-1", 1), 4),
        message(topic, payload("shop-1", 5), 5),
        message("edgeguard/shop-1/availability", b"online", 6),
        message("edgeguard/shop-1/availability", b"maybe", 7),
    ]
    ingest.start()
    with caplog.at_level(logging.WARNING, "edgeguard.hub.ingest"):
        for m in batch:
            ingest._queue.put(m)
        wait_for(lambda: len(acked) == len(batch), 10, "every message acknowledged")
    ingest.stop()
    assert store.count() == 2 and store.gaps() == [Gap("shop-1", 2, 4)]
    assert ingest.counts.text() == "2 events stored, 1 duplicates, 3 skipped"
    lines = [r.getMessage() for r in caplog.records]
    assert sum("schema version 9" in line for line in lines) == 1, lines
    assert sum("neither online nor offline" in line for line in lines) == 1, lines
    assert store.devices()[0]["online"] is True


def test_nothing_is_acknowledged_until_the_database_takes_it(store, monkeypatch):
    acked: list[int] = []
    ingest = Ingest(store, EventCheck(MAX), lambda mid, qos: acked.append(mid))
    real, calls = store.add_events, []

    def failing(rows, *new_rows):
        calls.append(len(rows))
        if len(calls) < 3:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(rows, *new_rows)

    monkeypatch.setattr(store, "add_events", failing)
    monkeypatch.setattr("edgeguard.hub.ingest.RETRY_MIN", 0.05)
    ingest.start()
    ingest._queue.put(message("edgeguard/d/events", payload("d", 1), 11))
    wait_for(lambda: acked == [11], 10, "acknowledged once stored")
    ingest.stop()
    assert len(calls) == 3 and store.count() == 1


@needs_mosquitto
def test_the_hub_stores_every_event_of_three_devices_once(tmp_path):
    broker = Broker(tmp_path / "broker").start()
    config = hub_config(tmp_path / "hub", broker.port, "h1")
    log = tmp_path / "hub.log"
    hub = start_hub(config, log)
    publishers: list[Publisher] = []
    try:
        wait_for(
            lambda: "$share/edgeguard-hub/edgeguard/+/events" in broker.log(),
            20,
            lambda: f"the hub subscribes: {log.read_text()[-2000:]}",
        )
        publishers = [Publisher(broker.port, f"shop-{n}") for n in (1, 2, 3)]
        shop1, shop2, shop3 = publishers
        for p in publishers:
            p.availability("online")
        for seq in range(1, 21):
            shop1.event(payload("shop-1", seq))
            shop2.event(payload("shop-2", seq))
            if seq not in (8, 9):
                shop3.event(payload("shop-3", seq))
        shop1.event(payload("shop-1", 5))  # delivered again: stored once
        shop1.event({**payload("shop-1", 21), "schema": 2})
        missing = payload("shop-2", 21)
        del missing["location"]
        shop2.event(missing)
        shop1.event(payload("shop-2", 22))  # shop-1 forging shop-2's event under its own topic
        shop3.event(b"{" + b" " * (10 * 1024 * 1024) + b"}")
        shop2.availability("offline")
        shop3.event(payload("shop-3", 21))  # after the bad ones: the rest flows
        store = HubStore(sa.create_engine(f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"))
        wait_for(lambda: store.count() == 59, 30, lambda: f"59 events stored: {store.count()}")
        wait_for(
            lambda: (
                {d["device"]: d["online"] for d in store.devices()}
                == {"shop-1": True, "shop-2": False, "shop-3": True}
            ),
            10,
            lambda: f"availability: {store.devices()}",
        )
        rows = store.events(limit=100)
        assert sorted((r["device"], r["seq"]) for r in rows) == sorted(
            [(f"shop-{n}", s) for n in (1, 2) for s in range(1, 21)]
            + [("shop-3", s) for s in range(1, 22) if s not in (8, 9)]
        )
        assert store.gaps() == [Gap("shop-3", 8, 9)]
        store.close()
    finally:
        for p in publishers:
            p.close()
        code = stop_hub(hub)
        broker.stop()
    text = log.read_text()
    assert code == 0, text
    for reason in (
        "schema version 2",
        "'location' is a required property",
        "another device's topic",
        "max_event_kb",
    ):
        assert text.count(reason) == 1, (reason, text)
    assert "hub: stopped; 59 events stored, 1 duplicates, 4 skipped" in text


@needs_mosquitto
def test_two_hub_processes_share_the_events_without_a_duplicate_row(tmp_path, postgres_server):
    broker = Broker(tmp_path / "broker").start()
    url = postgres_server.database()
    logs = [tmp_path / "h1.log", tmp_path / "h2.log"]
    hubs = [
        start_hub(hub_config(tmp_path / name, broker.port, name, f'database_url = "{url}"\n'), log)
        for name, log in zip(("h1", "h2"), logs)
    ]
    publishers: list[Publisher] = []
    try:
        for name in ("h1", "h2"):
            wait_for(
                lambda name=name: (
                    f"edgeguard-hub-{name} 1 $share/edgeguard-hub/edgeguard/+/events" in broker.log()
                ),
                30,
                lambda: f"both hubs subscribe: {[log.read_text()[-1500:] for log in logs]}",
            )
        publishers = [Publisher(broker.port, f"shop-{n}") for n in (1, 2, 3)]
        for seq in range(1, 101):
            for p in publishers:
                p.event(payload(p.device, seq))
        for p in publishers:
            p.event(payload(p.device, 50))  # again: whichever hub gets it, it is stored once
        store = HubStore(sa.create_engine(url))
        wait_for(lambda: store.count() == 300, 60, lambda: f"300 events stored: {store.count()}")
        rows = store.events(limit=1000)
        store.close()
    finally:
        for p in publishers:
            p.close()
        codes = [stop_hub(hub) for hub in hubs]
        broker.stop()
    texts = [log.read_text() for log in logs]
    assert codes == [0, 0], texts
    assert sorted((r["device"], r["seq"]) for r in rows) == [
        (f"shop-{n}", s) for n in (1, 2, 3) for s in range(1, 101)
    ]
    stored = [int(text.split("hub: stopped; ")[1].split(" events stored")[0]) for text in texts]
    assert all(stored) and sum(stored) == 300, texts  # each hub stored a share, together each event once


UNIT = Path(__file__).resolve().parents[1] / "systemd" / "edgeguard-hub.service"


def test_the_hub_unit_is_a_notify_service_that_does_not_restart_on_a_config_error():
    text = UNIT.read_text()
    assert re.search(r"^ExecStart=\S+/edgeguard --config \S+ hub$", text, re.M)
    assert re.search(r"^Type=notify$", text, re.M) and re.search(r"^WatchdogSec=", text, re.M)
    assert re.search(r"^RestartPreventExitStatus=78$", text, re.M)
    assert re.search(r"^LoadCredential=mqtt_password:", text, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_hub_unit_exposure_is_at_most_2():
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True, text=True
    )
    level = re.search(r"Overall exposure level for edgeguard-hub.service: ([\d.]+)", out.stdout + out.stderr)
    assert level, out.stdout + out.stderr
    assert float(level.group(1)) <= 2.0
