"""Helpers of the hub tests: events as devices publish them (the MQTT output's own JSON), raw publishers,
hub processes and their configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
from helpers import clean_env, free_port, wait_for
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edgeguard.events.event import Event
from edgeguard.outputs.mqtt.schema import event_payload

START = 1_700_000_000.0


def payload(device: str, seq: int, event: Event | None = None) -> dict:
    """The JSON a device publishes for its event `seq` (a crowd event unless given)."""
    event = event or Event("crowd", START + seq, "gate", "Front Gate", 51.5, -0.12, extra={"count": 3})
    return event_payload(replace(event, seq=seq), device)


def sighting(device: str, seq: int, when: float, where: tuple[str, float, float], person="7") -> dict:
    """A known_face event of a wanted person at a place."""
    name, lat, lon = where
    event = Event(
        "known_face", when, "gate", name, lat, lon, person_id=person, name="Ana Lima", category="wanted"
    )
    return payload(device, seq, event)


class Publisher:
    """A raw paho client publishing as one device (QoS 1), its availability retained."""

    def __init__(self, port: int, device: str) -> None:
        self.device = device
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{device}", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, f"{device} connects")

    def event(self, body: dict | bytes, topic: str | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.client.publish(topic or f"edgeguard/{self.device}/events", data, qos=1).wait_for_publish(10)

    def availability(self, state: str) -> None:
        topic = f"edgeguard/{self.device}/availability"
        self.client.publish(topic, state, qos=1, retain=True).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def hub_config(folder: Path, port: int, name: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "edgeguard.toml"
    path.write_text(
        f'[paths]\nbase_dir = "{folder}"\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\nkeepalive = 5\n'
        f'[web]\nlisten = "127.0.0.1:{free_port()}"\n[hub]\nname = "{name}"\n{extra}',
        encoding="utf-8",
    )
    return path


def start_hub(config: Path, log: Path) -> subprocess.Popen:
    env = clean_env(PYTHONPATH=os.pathsep.join(sys.path))
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edgeguard", "--config", str(config), "hub"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def stop_hub(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.terminate()
    return process.wait(20)
