"""The fleet end to end, on a real Mosquitto with the shipped broker ACLs (systemd/mosquitto-edgeguard.acl)
and a broker user per device: a device may publish only under its own prefix and read only its own notices;
three real daemons replaying the clip at three locations and a real hub: every event is at the hub once, and a
device cut off from the broker and back delivers its backlog, in order."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from bad_broker import BadBroker
from brokers import Broker, needs_mosquitto
from conftest import CLIP, make_site
from helpers import wait_for
from hub_fleet import hub_config, payload, start_hub, stop_hub
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edgeguard.config import load_config
from edgeguard.hub.store import HubStore

pytestmark = needs_mosquitto

ACL = Path(__file__).resolve().parents[1] / "systemd" / "mosquitto-edgeguard.acl"
PASSWORD = "broker password of the test"
PLACES = {
    "door-1": ("City Centre", 51.5074, -0.1278),
    "door-2": ("Airport", 51.4700, -0.4543),
    "door-3": ("Far Town", 51.7520, -0.3360),
}


def fleet_broker(folder: Path) -> Broker:
    users = {name: PASSWORD for name in (*PLACES, "hub")}
    return Broker(folder, extra=f"acl_file {ACL}\n", users=users).start()


class Client:
    """A raw paho client as one broker user, keeping what it receives."""

    def __init__(self, port: int, user: str, subscribe: tuple[str, ...] = ()) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.username_pw_set(user, PASSWORD)
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, f"{user} connects")
        if subscribe:
            self.client.subscribe([(topic, 1) for topic in subscribe])
            assert subscribed.wait(10)

    def publish(self, topic: str, body: bytes) -> None:
        self.client.publish(topic, body, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_broker_acls_keep_each_device_to_its_own_prefix(tmp_path):
    broker = fleet_broker(tmp_path / "broker")
    hub = Client(broker.port, "hub", ("$share/edgeguard-hub/edgeguard/+/events",))
    snoop = Client(broker.port, "door-1", ("edgeguard/+/events", "edgeguard/+/watchlist"))
    door2 = Client(broker.port, "door-2", ("edgeguard/door-2/watchlist",))
    try:
        door2.publish("edgeguard/door-2/events", json.dumps(payload("door-2", 1)).encode())
        snoop.publish("edgeguard/door-2/events", json.dumps(payload("door-2", 99)).encode())  # forged
        snoop.publish("edgeguard/door-2/watchlist", b"666")  # only the hub tells devices
        hub.publish(
            "edgeguard/door-2/events", json.dumps(payload("door-2", 98)).encode()
        )  # the hub only reads
        hub.publish("edgeguard/door-2/watchlist", b"7")
        hub.publish("edgeguard/door-1/watchlist", b"8")
        wait_for(lambda: hub.received and door2.received, 10, "the allowed messages delivered")
        wait_for(lambda: snoop.received, 10, "door-1's own notice")
        seqs = [json.loads(body)["seq"] for _topic, body in hub.received]
        assert seqs == [1]  # neither the forged event nor the hub's own reached the hub
        assert door2.received == [("edgeguard/door-2/watchlist", b"7")]
        assert snoop.received == [("edgeguard/door-1/watchlist", b"8")]  # nothing of door-2's
    finally:
        for client in (hub, snoop, door2):
            client.close()
        broker.stop()


def logged(db: Path) -> list[int]:
    """The seqs of a daemon's event log ([] while it is being made)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [row[0] for row in conn.execute("SELECT seq FROM events ORDER BY seq")]
    except sqlite3.Error:
        return []


def device_site(folder: Path, device: str, port: int, loop: bool):
    name, lat, lon = PLACES[device]
    site = make_site(
        folder,
        f'[camera]\nloop = {str(loop).lower()}\nrealtime = true\nlocation = "{name}"\n'
        f"latitude = {lat}\nlongitude = {lon}\n[web]\nenabled = false\n"
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\ndevice_id = "{device}"\n'
        f'username = "{device}"\npassword = "{PASSWORD}"\nkeepalive = 5\ndiscovery = false\n',
    )
    os.chmod(site.config_path, 0o600)
    return site


@pytest.mark.slow
def test_three_daemons_and_a_hub_every_event_once_and_a_backlog_in_order(tmp_path, daemons):
    broker = fleet_broker(tmp_path / "broker")
    link = BadBroker([lambda client, _up: None] * 1000, broker.port)  # door-3's link: cut until restored
    hub_toml = hub_config(tmp_path / "hub", broker.port, "hub-a", "")
    text = hub_toml.read_text().replace("[mqtt]\n", f'[mqtt]\nusername = "hub"\npassword = "{PASSWORD}"\n')
    hub_toml.write_text(text.replace("[web]\n", "[web]\nenabled = false\n"))
    os.chmod(hub_toml, 0o600)
    config = load_config(hub_toml)
    store = HubStore.open(config.hub.database(config.paths.base_dir))  # migrated before the hub starts
    hub = start_hub(hub_toml, tmp_path / "hub.log")
    sites = {
        "door-1": device_site(tmp_path / "door-1", "door-1", broker.port, loop=False),
        "door-2": device_site(tmp_path / "door-2", "door-2", broker.port, loop=False),
        "door-3": device_site(tmp_path / "door-3", "door-3", link.port, loop=True),
    }
    try:
        running = {d: daemons(site.config_path, "--source", str(CLIP)) for d, site in sites.items()}
        db3 = sites["door-3"].base / "events.db"
        wait_for(lambda: len(logged(db3)) >= 3, 120, lambda: running["door-3"].stderr)
        assert not store.events(device="door-3")  # recorded while cut off: nothing reached the hub
        link.behaviours = []  # the link is back: door-3's next connection goes through
        wait_for(lambda: len(store.events(device="door-3")) >= 3, 120, lambda: running["door-3"].stderr)

        for device in ("door-1", "door-2"):
            assert running[device].proc.wait(180) == 0, running[device].stderr
        running["door-3"].proc.terminate()
        assert running["door-3"].proc.wait(60) == 0, running["door-3"].stderr

        def at_hub(device: str) -> list[int]:
            return sorted(row["seq"] for row in store.events(device=device, limit=100_000))

        for device, site in sites.items():
            seqs = logged(site.base / "events.db")
            assert seqs, device
            wait_for(
                lambda d=device, s=seqs: at_hub(d) == s,
                60,
                lambda d=device, s=seqs: f"{d}: {at_hub(d)} != {s}",
            )
            rows = store.events(device=device, limit=100_000)
            assert {row["location"] for row in rows} == {PLACES[device][0]}
            assert (rows[0]["latitude"], rows[0]["longitude"]) == PLACES[device][1:]
        assert store.gaps() == []
        backlog = sorted(store.events(device="door-3", limit=100_000), key=lambda row: row["received"])
        assert [row["seq"] for row in backlog] == at_hub("door-3")  # arrived in seq order
    finally:
        assert stop_hub(hub) == 0
        store.close()
        link.close()
        broker.stop()
    log = (tmp_path / "hub.log").read_text()
    assert "skipped a message" not in log, log
