"""Events over MQTT against real Mosquitto brokers (tests/brokers.py): the schema, nothing lost through a
broker outage or `kill -9`, passwords, TLS, Home Assistant's discovery, the last will, and bad brokers (one
that answers garbage, refuses the client id or cuts the connection in the middle of a PUBLISH:
tests/bad_broker.py)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from bad_broker import BadBroker, cut_in_publish, garbage, refuse_client_id
from brokers import Broker, Listener, make_tls, needs_mosquitto
from helpers import wait_for
from test_web import PASSWORD, login_token  # the dashboard's test password and the login form's token
from test_web_cameras import outputs

import edgeguard.outputs.mqtt as mqtt_package
from edgeguard.config import load_config
from edgeguard.events.event import Event
from edgeguard.outputs.bus import EventBus
from edgeguard.outputs.mqtt.output import MqttOutput
from edgeguard.outputs.mqtt.schema import event_id
from edgeguard.service.doctor import Finding, check_mqtt
from edgeguard.store.event_log import EventLog
from edgeguard.watchlist.details import Person
from edgeguard.web.app import create_app
from edgeguard.web.context import SiteStatus
from edgeguard.web.site import build_dashboard

pytestmark = needs_mosquitto

SCHEMA = json.loads((Path(mqtt_package.__file__).parent / "event.schema.json").read_text(encoding="utf-8"))
HARNESS = Path(__file__).with_name("mqtt_harness.py")
PREFIX = "edgeguard/gate-1"
SECRET = "s3cret-broker-pw"  # a password that must never reach a log line


def write_config(base: Path, port: int, extra: str = "", device: str = "gate-1") -> Path:
    path = base / "edgeguard.toml"
    path.write_text(
        f'[paths]\nbase_dir = "{base}"\n'
        '[[camera]]\nname = "gate"\nlocation = "Front Gate"\n'
        "latitude = 51.5\nlongitude = -0.12\nmax_people = 2\n"
        '[[camera]]\nname = "till"\nlocation = "Counter"\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        f'device_id = "{device}"\nkeepalive = 5\n{extra}',
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def sample_events(start: float = 1_700_000_000.0) -> list[Event]:
    """One event of each type."""
    where = {"camera": "gate", "location": "Front Gate", "latitude": 51.5, "longitude": -0.12}
    return [
        Event(
            "unknown_face",
            start,
            **where,
            distance=0.71,
            capture="/nonexistent/u-face.jpg",
            extra={"visitor": 3},
        ),
        Event(
            "known_face",
            start + 1,
            **where,
            person_id="7",
            name="Ana Lima",
            category="wanted",
            distance=0.41,
            extra={"match": "strong"},
        ),
        Event("no_mask", start + 2, **where, person_id="7", name="Ana Lima", category="wanted"),
        Event("crowd", start + 3, **where, extra={"count": 4}),
        Event("camera_down", start + 4, camera="till", location="Counter", extra={"seconds": 120.0}),
        Event("camera_up", start + 5, camera="till", location="Counter", extra={"seconds": 130.0}),
    ]


def numbered(n: int, start: float = 1_700_000_000.0) -> list[Event]:
    return [Event("crowd", start + i, "gate", "Front Gate", extra={"count": 3 + i % 5}) for i in range(n)]


class Cursor:
    """What the bus would keep: every seq `delivered` was called with."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, seq: int) -> None:
        self.calls.append(seq)

    @property
    def last(self) -> int:
        return self.calls[-1] if self.calls else 0


def store(log: EventLog, events: list[Event]) -> list[Event]:
    return [log.append(e) for e in events]


def received(listener: Listener, topic: str = f"{PREFIX}/events") -> list[dict]:
    return [json.loads(p) for p in listener.on(topic)]


def deduplicated(payloads: list[dict]) -> list[dict]:
    seen, out = set(), []
    for p in payloads:
        if p["event_id"] not in seen:
            seen.add(p["event_id"])
            out.append(p)
    return out


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture
def output_for(tmp_path):
    """MqttOutput(s) on a config for a broker port, stopped at the end."""
    made = []

    def make(port: int, extra: str = "", **kwargs) -> tuple[MqttOutput, Cursor, EventLog]:
        config = load_config(write_config(tmp_path, port, extra))
        cursor = Cursor()
        output = MqttOutput(config, cursor, **kwargs)
        log = EventLog(config.paths.events_db)
        made.append((output, log))
        return output, cursor, log

    yield make
    for output, log in made:
        output.stop()
        log.close()


def test_every_event_type_arrives_with_the_schema_on_both_topics(broker, output_for):
    listener = Listener(broker.port, f"{PREFIX}/#")
    output, cursor, log = output_for(broker.port, "discovery = false\n")
    output.start()
    events = store(log, sample_events())
    for event in events:
        output.handle(event)
    wait_for(lambda: cursor.last == events[-1].seq, 10, "every event acknowledged")
    payloads = wait_for(lambda: len(received(listener)) == 6 and received(listener), 5, "six events")
    for payload in payloads:
        jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert [p["type"] for p in payloads] == [e.type for e in events]
    assert [p["seq"] for p in payloads] == [e.seq for e in events]
    assert received(listener, f"{PREFIX}/gate/events") == payloads[:4]
    assert received(listener, f"{PREFIX}/till/events") == payloads[4:]
    known = payloads[1]
    assert known["person"] == {"id": "7", "name": "Ana Lima", "category": "wanted"}
    assert known["location"] == {"name": "Front Gate", "latitude": 51.5, "longitude": -0.12}
    assert known["match"] == "strong" and known["distance"] == 0.41
    assert payloads[0]["person"] is None and payloads[0]["visitor"] == 3
    assert payloads[2]["mask"] is False and payloads[3]["count"] == 4
    assert payloads[4]["location"]["latitude"] is None
    assert known["time"] == datetime.fromtimestamp(events[1].time).astimezone().isoformat(
        timespec="milliseconds"
    )
    assert len({p["event_id"] for p in payloads}) == 6
    # retained state: last unknown and known face per camera, crowd, the wanted person's last seen
    assert json.loads(listener.on(f"{PREFIX}/gate/last_unknown")[-1])["seq"] == events[0].seq
    assert json.loads(listener.on(f"{PREFIX}/gate/last_known")[-1])["seq"] == events[1].seq
    assert listener.on(f"{PREFIX}/gate/crowd") == [b"ON"]
    seen = json.loads(listener.on(f"{PREFIX}/watchlist/7/last_seen")[-1])
    assert (seen["location"], seen["camera"]) == ("Front Gate", "gate")
    assert listener.on(f"{PREFIX}/availability") == [b"online"]
    assert (
        listener.on(f"{PREFIX}/gate/last_unknown/image") == []
    )  # face images stay off the broker by default
    assert cursor.calls == sorted(cursor.calls)
    listener.close()


def test_an_erasure_clears_what_the_broker_retains_and_tells_consumers(broker, output_for):
    output, cursor, log = output_for(broker.port, "discovery = false\n")
    output.start()
    capture = "/site/Unknown_Face_Captures/20260921-141640-000-gate-face.jpg"
    seen = [
        Event("unknown_face", 1_700_000_000.0, "gate", "Front Gate", capture=capture),
        Event(
            "known_face",
            1_700_000_001.0,
            "gate",
            "Front Gate",
            person_id="7",
            name="Ana Lima",
            category="wanted",
            distance=0.4,
        ),
        Event(
            "known_face",
            1_700_000_002.0,
            "till",
            "Counter",
            person_id="8",
            name="Bo Berg",
            category="wanted",
            distance=0.4,
        ),
    ]
    events = store(log, seen)
    for event in events:
        output.handle(event)
    wait_for(lambda: cursor.last == events[-1].seq, 10, "the sightings acknowledged")
    listener = Listener(broker.port, f"{PREFIX}/#")  # a consumer that comes later gets what is retained
    wait_for(lambda: listener.on(f"{PREFIX}/watchlist/7/last_seen"), 5, "the retained last seen")
    erasures = store(
        log,
        [
            Event(
                "erased",
                1_700_000_010.0,
                "",
                "",
                person_id="7",
                extra={"captures": [], "events": [[events[1].seq, events[1].time]]},
            ),
            Event(
                "erased",
                1_700_000_011.0,
                "",
                "",
                extra={"captures": ["20260921-141640-000-gate"], "events": [[events[0].seq, events[0].time]]},
            ),
        ],
    )
    for event in erasures:
        output.handle(event)
    wait_for(lambda: cursor.last == erasures[-1].seq, 10, "the erasures acknowledged")
    payloads = wait_for(lambda: len(received(listener)) == 2 and received(listener), 5, "two erasures")
    for payload in payloads:
        jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
    person, visitor = payloads
    assert person["type"] == "erased" and person["person"] == {"id": "7", "name": None, "category": None}
    assert person["erased"]["event_ids"] == [event_id("gate-1", events[1])]
    assert visitor["person"] is None and visitor["erased"]["captures"] == ["20260921-141640-000-gate"]
    assert listener.on(f"{PREFIX}/gate/events") == [] and listener.on(f"{PREFIX}/till/events") == []
    # what the broker retained about them is deleted (an empty retained message); Bo's sighting stays
    assert listener.on(f"{PREFIX}/watchlist/7/last_seen")[-1] == b""
    assert listener.on(f"{PREFIX}/gate/last_known")[-1] == b""
    assert listener.on(f"{PREFIX}/gate/last_unknown")[-1] == b""
    assert listener.on(f"{PREFIX}/gate/last_unknown/url")[-1] == b""
    assert json.loads(listener.on(f"{PREFIX}/till/last_known")[-1])["person"]["id"] == "8"
    listener.close()
    later = Listener(broker.port, f"{PREFIX}/#")
    time.sleep(1.0)
    assert later.on(f"{PREFIX}/watchlist/7/last_seen") == [] and later.on(f"{PREFIX}/gate/last_known") == []
    assert later.on(f"{PREFIX}/watchlist/8/last_seen") and later.on(f"{PREFIX}/till/last_known")
    later.close()


def test_broker_outage_loses_nothing_and_keeps_the_order(broker, output_for):
    listener = Listener(broker.port, f"{PREFIX}/events")
    output, cursor, log = output_for(broker.port, "discovery = false\n")
    output.start()
    events = store(log, numbered(60))
    for event in events[:20]:
        output.handle(event)
    wait_for(lambda: cursor.last == events[19].seq, 10, "the first 20 acknowledged")
    broker.stop()
    wait_for(lambda: not output.status().connected, 10, "the output sees the broker gone")
    for event in events[20:]:
        output.handle(event)  # the frame loop's events keep coming while the broker is away
    time.sleep(0.5)
    assert cursor.last == events[19].seq  # nothing counts as delivered without the broker's word
    assert output.status().backlog == 40
    broker.start()
    wait_for(
        lambda: cursor.last == events[-1].seq, 20, lambda: f"all acknowledged after the outage: {cursor.last}"
    )
    payloads = wait_for(
        lambda: len(deduplicated(received(listener))) >= 60 and received(listener), 10, "60 events"
    )
    unique = deduplicated(payloads)
    assert [p["seq"] for p in unique] == [e.seq for e in events]  # in order, each once after de-duplication
    assert cursor.calls == sorted(cursor.calls) and output.status().backlog == 0
    listener.close()


def harness(config: Path, cursor: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HARNESS), str(config), str(cursor)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def cursor_of(path: Path) -> int:
    return int(path.read_text() or 0) if path.exists() else 0


def test_kill_9_with_events_pending_then_restart_delivers_all(broker, tmp_path):
    listener = Listener(broker.port, f"{PREFIX}/events")
    config = write_config(tmp_path, broker.port, "discovery = false\n")
    cursor = tmp_path / "cursor"
    log = EventLog(load_config(config).paths.events_db)
    events = store(log, numbered(10))
    daemon = harness(config, cursor)
    wait_for(lambda: cursor_of(cursor) == events[-1].seq, 20, "the first 10 delivered")
    broker.stop()
    events += store(log, numbered(25, start=1_700_001_000.0))  # recorded while the broker is away
    time.sleep(1.0)  # handed to the output, waiting for the broker
    daemon.kill()  # kill -9: paho's queue dies with it
    daemon.wait(10)
    assert cursor_of(cursor) == events[9].seq
    broker.start()
    daemon = harness(config, cursor)
    try:
        wait_for(lambda: cursor_of(cursor) == events[-1].seq, 30, "all delivered after the restart")
        unique = wait_for(
            lambda: len(deduplicated(received(listener))) == 35 and deduplicated(received(listener)),
            10,
            "35 events",
        )
        assert [p["seq"] for p in unique] == [e.seq for e in events]
    finally:
        daemon.terminate()
        daemon.wait(15)
        log.close()
        listener.close()


def test_availability_goes_offline_by_the_last_will_when_killed_and_on_a_clean_stop(broker, tmp_path):
    listener = Listener(broker.port, f"{PREFIX}/availability")
    config = write_config(tmp_path, broker.port, "discovery = false\n")
    daemon = harness(config, tmp_path / "cursor")
    wait_for(lambda: listener.on(f"{PREFIX}/availability") == [b"online"], 10, "online")
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(10)
    wait_for(
        lambda: listener.on(f"{PREFIX}/availability")[-1:] == [b"offline"],
        15,
        "the last will (keepalive 5 s)",
    )
    daemon = harness(config, tmp_path / "cursor")
    wait_for(lambda: listener.on(f"{PREFIX}/availability")[-1:] == [b"online"], 10, "online again")
    daemon.terminate()
    assert daemon.wait(15) == 0
    wait_for(lambda: listener.on(f"{PREFIX}/availability")[-1:] == [b"offline"], 5, "offline on a clean stop")
    listener.close()


def test_wrong_password_is_one_clear_line_and_nothing_counts_as_delivered(tmp_path, output_for, caplog):
    broker = Broker(tmp_path / "auth", users={"gate": "right-password"}).start()
    try:
        output, cursor, log = output_for(broker.port, 'username = "gate"\npassword = "wrong-password"\n')
        with caplog.at_level(logging.ERROR):
            output.start()
            output.handle(store(log, numbered(1))[0])
            state = wait_for(
                lambda: output.status().state.startswith("refused") and output.status().state, 10
            )
            time.sleep(1.5)  # paho retries meanwhile: still one line
        assert state in (
            "refused: Bad user name or password",
            "refused: Not authorized",
        )  # mosquitto 2.0: the latter
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("edgeguard.outputs.mqtt")]
        assert len(lines) == 1 and "check [mqtt] username and the password" in lines[0]
        assert "wrong-password" not in caplog.text
        assert cursor.calls == [] and output.status().backlog == 1
    finally:
        broker.stop()


def test_password_and_tls_with_a_test_ca(tmp_path, output_for):
    tls = make_tls(tmp_path / "certs")
    broker = Broker(tmp_path / "tls", users={"gate": "pw"}, tls=tls).start()
    try:
        output, cursor, log = output_for(
            broker.port,
            f'username = "gate"\npassword = "pw"\ntls = true\ntls_ca = "{tls.ca}"\ndiscovery = false\n',
        )
        output.start()
        event = store(log, numbered(1))[0]
        output.handle(event)
        wait_for(lambda: cursor.last == event.seq, 15, lambda: f"delivered over TLS: {output.status()}")
        assert output.status().state == f"connected to 127.0.0.1:{broker.port}"
    finally:
        broker.stop()


def test_a_broker_certificate_from_another_ca_is_named(tmp_path, output_for, caplog):
    broker = Broker(tmp_path / "tls", tls=make_tls(tmp_path / "certs")).start()
    other = make_tls(tmp_path / "other", name="other")
    try:
        output, cursor, _ = output_for(broker.port, f'tls = true\ntls_ca = "{other.ca}"\n')
        with caplog.at_level(logging.ERROR):
            output.start()
            state = wait_for(lambda: output.status().state.startswith("cannot") and output.status().state, 10)
        assert "certificate is not trusted" in state and "tls_ca" in state
        assert sum("not trusted" in r.getMessage() for r in caplog.records) == 1
    finally:
        broker.stop()


def test_home_assistant_discovery_announces_the_device_and_again_when_it_comes_online(broker, tmp_path):
    config_topic = "homeassistant/device/gate-1/config"
    listener = Listener(broker.port, config_topic)
    config = load_config(write_config(tmp_path, broker.port))
    output = MqttOutput(config, Cursor(), links=lambda path: f"https://gate.example.net/c/{path.name}")
    output.start()
    try:
        first = json.loads(wait_for(lambda: listener.on(config_topic), 10, "the discovery message")[0])
        assert first["dev"]["ids"] == ["edgeguard_gate-1"] and first["o"]["name"] == "EdgeGuard"
        assert first["availability_topic"] == f"{PREFIX}/availability"
        cmps = first["cmps"]
        assert set(cmps) == {
            f"{c}_{what}" for c in ("gate", "till") for what in ("crowd", "alert", "last_unknown")
        }
        assert all(c["unique_id"].startswith("edgeguard_gate-1_") and "p" in c for c in cmps.values())
        assert len({c["unique_id"] for c in cmps.values()}) == len(cmps)
        assert (
            cmps["gate_alert"]["p"] == "event"
            and cmps["gate_alert"]["state_topic"] == f"{PREFIX}/gate/events"
        )
        assert {"unknown_face", "known_face", "no_mask", "crowd", "camera_down"} <= set(
            cmps["gate_alert"]["event_types"]
        )
        assert cmps["gate_last_unknown"] == {
            "p": "image",
            "name": "gate last unknown face",
            "unique_id": "edgeguard_gate-1_gate_last_unknown",
            "url_topic": f"{PREFIX}/gate/last_unknown/url",
        }
        # Home Assistant restarts and publishes its birth message: the device is announced again
        ha = Listener(broker.port, "unused/#", client_id="home-assistant")
        ha.client.publish("homeassistant/status", "online", qos=1)
        wait_for(lambda: len(listener.on(config_topic)) == 2, 10, "announced again")
        ha.close()
    finally:
        output.stop()
    # the next run has one camera fewer: its entities are announced with their platform only (removed)
    path = tmp_path / "edgeguard.toml"
    text = path.read_text(encoding="utf-8").replace('[[camera]]\nname = "till"\nlocation = "Counter"\n', "")
    path.write_text(text, encoding="utf-8")
    output = MqttOutput(load_config(path), Cursor())
    output.start()
    try:
        last = wait_for(
            lambda: len(listener.on(config_topic)) == 3 and json.loads(listener.on(config_topic)[-1]), 10
        )
        assert last["cmps"]["till_alert"] == {"p": "event"} and last["cmps"]["till_crowd"] == {
            "p": "binary_sensor"
        }
        assert last["cmps"]["gate_alert"]["p"] == "event"
        assert last["cmps"]["gate_last_unknown"] == {"p": "image"}  # no links in this run: no image entity
    finally:
        output.stop()
        listener.close()


def test_an_erased_person_leaves_home_assistant_at_once(broker, tmp_path):
    config_topic = "homeassistant/device/gate-1/config"
    listener = Listener(broker.port, config_topic)
    people = {pid: Person(pid, name, "wanted") for pid, name in (("7", "Ana Lima"), ("8", "Bo Berg"))}
    watchlist = SimpleNamespace(people=people)  # the watchlist has not reloaded yet: Ana is still in it
    output = MqttOutput(
        load_config(write_config(tmp_path, broker.port)), Cursor(), watchlist=lambda: watchlist
    )
    output.start()
    try:
        first = json.loads(wait_for(lambda: listener.on(config_topic), 10, "the discovery message")[0])
        assert {"person_7_last_seen", "person_8_last_seen"} <= set(first["cmps"])
        log = EventLog(tmp_path / "events.db")
        [erased] = store(log, [Event("erased", time.time(), "", "", person_id="7", extra={"captures": []})])
        log.close()
        output.handle(erased)
        last = json.loads(
            wait_for(lambda: len(listener.on(config_topic)) == 2 and listener.on(config_topic), 10)[-1]
        )
        assert last["cmps"]["person_7_last_seen"] == {"p": "sensor"}  # how Home Assistant removes it
        assert last["cmps"]["person_8_last_seen"]["name"] == "Bo Berg last seen"
        assert "Ana" not in listener.on(config_topic)[-1].decode()
    finally:
        output.stop()
        listener.close()


def test_check_reports_the_broker_and_a_wrong_password(tmp_path):
    broker = Broker(tmp_path / "auth", users={"gate": "pw"}).start()
    try:
        good = load_config(write_config(tmp_path, broker.port, 'username = "gate"\npassword = "pw"\n'))
        assert check_mqtt(good) == [
            Finding(
                "ok",
                "mqtt",
                f"connected to 127.0.0.1:{broker.port} as gate-1; a message to {PREFIX}/check acknowledged",
            )
        ]
        bad = load_config(write_config(tmp_path, broker.port, 'username = "gate"\npassword = "nope"\n'))
        [finding] = check_mqtt(bad)
        assert finding.level == "FAIL" and "refused" in finding.detail and "nope" not in finding.detail
    finally:
        broker.stop()
    [finding] = check_mqtt(good)  # the broker is gone
    assert finding.level == "FAIL" and "cannot connect: Connection refused" in finding.detail


def mqtt_lines(caplog, level: int = logging.WARNING) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("edgeguard.outputs.mqtt") and r.levelno >= level
    ]


def arrived_in_order(listener: Listener, events: list[Event]) -> None:
    unique = wait_for(
        lambda: len(deduplicated(received(listener))) >= len(events) and deduplicated(received(listener)),
        10,
        lambda: f"{len(events)} events, {len(deduplicated(received(listener)))} arrived",
    )
    assert [p["seq"] for p in unique] == [e.seq for e in events]


@pytest.mark.parametrize(
    ("behaviour", "state", "line"),
    [
        (
            garbage,
            "no MQTT answer: ",
            "closed the connection without accepting the device (Unspecified error): is an MQTT 5 broker",
        ),
        (
            refuse_client_id,
            "refused: Client identifier not valid",
            "refused the connection of client id edgeguard-gate-1: Client identifier not valid "
            "(the broker does not take this device id",
        ),
    ],
    ids=["garbage", "client-id-refused"],
)
def test_a_bad_broker_is_one_line_retried_with_backoff_and_loses_nothing(
    broker, output_for, caplog, behaviour, state, line
):
    """The first two connections meet a broker that answers garbage or refuses the client id (MQTT 5
    CONNACK 0x85); the third is passed through to a good broker: every event arrives, in order."""
    bad = BadBroker([behaviour, behaviour], upstream_port=broker.port)
    listener = Listener(broker.port, f"{PREFIX}/events")
    output, cursor, log = output_for(
        bad.port, f'username = "gate"\npassword = "{SECRET}"\ndiscovery = false\n'
    )
    try:
        with caplog.at_level(logging.INFO):
            output.start()
            events = store(log, numbered(20))
            for event in events:
                output.handle(event)
            status = wait_for(
                lambda: output.status().state.startswith(state) and output.status(), 5, "the bad answer seen"
            )
            assert status.fault == status.state and status.backlog == 20 and cursor.calls == []
            wait_for(lambda: cursor.last == events[-1].seq, 15, lambda: f"all delivered: {output.status()}")
        arrived_in_order(listener, events)
        assert bad.connections == 3  # two bad answers, then the good broker
        gaps = [b - a for a, b in zip(bad.times, bad.times[1:])]
        assert min(gaps) >= 0.8 and gaps[-1] >= 1.8, gaps  # backoff: 1 s, then 2 s
        [error] = mqtt_lines(caplog)  # one line for both bad answers
        assert line in error, error
        assert SECRET not in caplog.text
        assert output.status().ok and output.status().state == f"connected to 127.0.0.1:{bad.port}"
    finally:
        bad.close()
        listener.close()


def test_a_connection_cut_in_the_middle_of_a_publish_loses_nothing(broker, output_for, caplog):
    bad = BadBroker([cut_in_publish(6)], upstream_port=broker.port)
    listener = Listener(broker.port, f"{PREFIX}/events")
    output, cursor, log = output_for(
        bad.port, f'username = "gate"\npassword = "{SECRET}"\ndiscovery = false\n'
    )
    try:
        with caplog.at_level(logging.INFO):
            output.start()
            # Accepted first: paho may send publishes before the CONNACK is read, and a cut then is (rightly)
            # reported as a connection the broker never accepted, which the test of garbage answers covers.
            wait_for(lambda: output.status().connected, 10, "connected through the proxy")
            events = store(log, numbered(30))
            for event in events:
                output.handle(event)
            wait_for(lambda: cursor.last == events[-1].seq, 15, lambda: f"all delivered: {output.status()}")
        arrived_in_order(listener, events)
        assert bad.connections == 2  # cut once, then reconnected
        [warning] = mqtt_lines(caplog)
        assert f"lost the connection to 127.0.0.1:{bad.port}" in warning and "reconnecting" in warning
        assert SECRET not in caplog.text
        assert cursor.calls == sorted(cursor.calls) and output.status().backlog == 0
    finally:
        bad.close()
        listener.close()


def test_the_broker_stopped_while_a_burst_is_in_flight_loses_nothing(broker, output_for):
    listener = Listener(broker.port, f"{PREFIX}/events")
    output, cursor, log = output_for(broker.port, "discovery = false\n")
    output.start()
    wait_for(lambda: output.status().connected, 10, "connected")
    events = store(log, numbered(300))
    for event in events:
        output.handle(event)
    broker.stop()  # at once: most of the burst is queued or in flight
    assert cursor.last < events[-1].seq
    broker.start()
    wait_for(lambda: cursor.last == events[-1].seq, 15, lambda: f"all delivered: {output.status()}")
    arrived_in_order(listener, events)
    assert cursor.calls == sorted(cursor.calls)
    listener.close()


def test_the_overview_shows_the_mqtt_state_from_the_event_bus_without_secrets(broker, tmp_path):
    """The event bus's status of the real output, as the daemon hands it to the dashboard, seen by a viewer:
    connected to host:port, then the fault and the events waiting while the broker is away."""
    config = load_config(
        write_config(tmp_path, broker.port, f'username = "gate"\npassword = "{SECRET}"\ndiscovery = false\n')
    )
    log = EventLog(config.paths.events_db)
    bus = EventBus(log, [MqttOutput(config)])
    dashboard, _ = build_dashboard(
        config,
        status=lambda: SiteStatus(outputs=bus.status()),
        watchlist=lambda: None,
        event_log=log,
        outbox=None,
        engine=lambda: None,
        signer=None,
    )
    dashboard.users.add("victor", PASSWORD, "viewer")
    viewer = create_app(dashboard).test_client()
    token = login_token(viewer.get("/login").text)
    viewer.post("/login", data={"csrf": token, "username": "victor", "password": PASSWORD})
    bus.start()
    try:
        connected = ("ok", f"connected to 127.0.0.1:{broker.port}", 0)
        wait_for(lambda: outputs(viewer.get("/").text).get("mqtt") == connected, 10, "shown connected")
        broker.stop()
        for event in store(log, numbered(3)):
            bus.publish(event)
        state, text, waiting = wait_for(
            lambda: outputs(viewer.get("/").text)["mqtt"][2] == 3 and outputs(viewer.get("/").text)["mqtt"],
            10,
            lambda: f"three events waiting: {bus.status()}",
        )
        assert state == "fault" and text.startswith("disconnected: "), text
        page = viewer.get("/").text
        assert SECRET not in page  # the broker's password is in the config, never on a page
    finally:
        bus.stop()
        dashboard.users.close()
        log.close()
