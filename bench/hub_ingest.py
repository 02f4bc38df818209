"""Benchmark: events per second the fleet hub (`edgeguard hub`) ingests from 50 devices publishing at once
through a local Mosquitto broker, with SQLite and with PostgreSQL (a throwaway server, as in the tests); the
hub process's peak memory (VmHWM).

Each device is a paho client publishing its events (the MQTT output's JSON) at QoS 1 as fast as the broker
takes them; the time runs from the first publish to the moment the hub's database holds every event.

Run: python bench/hub_ingest.py [--devices 50] [--events 100] [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import sqlalchemy as sa  # noqa: E402
from brokers import Broker  # noqa: E402
from helpers import wait_for  # noqa: E402
from hub_fleet import Publisher, hub_config, payload, start_hub, stop_hub  # noqa: E402
from postgres import PostgresServer  # noqa: E402

from edgeguard.hub.store import HubStore  # noqa: E402

BROKER = "max_queued_messages 1000000\nmax_inflight_messages 100\n"


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(folder: Path, backend: str, devices: int, events: int) -> dict:
    # Mosquitto keeps 1000 QoS 1 messages per client beyond those in flight and drops the rest (the hub would
    # show them as gaps): a central broker in front of a hub needs a deeper queue, as here.
    broker = Broker(folder / "broker", extra=BROKER).start()
    server = PostgresServer() if backend == "postgresql" else None
    url = server.database() if server else f"sqlite:///{folder / 'hub' / 'hub.db'}"
    extra = f'database_url = "{url}"\n' if server else ""
    hub = start_hub(hub_config(folder / "hub", broker.port, "bench", extra), folder / "hub.log")
    try:
        wait_for(lambda: "$share/edgeguard-hub/edgeguard/+/events" in broker.log(), 30, "the hub subscribes")
        publishers = [Publisher(broker.port, f"dev-{n:02d}") for n in range(devices)]
        bodies = [
            [json.dumps(payload(p.device, s)).encode() for s in range(1, events + 1)] for p in publishers
        ]
        store = HubStore(sa.create_engine(url))
        total = devices * events
        start = time.perf_counter()

        def send(publisher: Publisher, messages: list[bytes]) -> None:
            infos = [
                publisher.client.publish(f"edgeguard/{publisher.device}/events", m, qos=1) for m in messages
            ]
            for info in infos:
                info.wait_for_publish(60)

        threads = [threading.Thread(target=send, args=pair) for pair in zip(publishers, bodies)]
        for thread in threads:
            thread.start()
        wait_for(lambda: store.count() >= total, 300, lambda: f"{store.count()} of {total} stored", poll=0.05)
        seconds = time.perf_counter() - start
        for thread in threads:
            thread.join()
        memory = peak_memory_mb(hub.pid)
        store.close()
        for p in publishers:
            p.close()
    finally:
        stop_hub(hub)
        broker.stop()
        if server:
            server.stop()
    return {
        "backend": backend,
        "events": total,
        "seconds": round(seconds, 2),
        "events_per_second": round(total / seconds),
        "hub_peak_mb": round(memory),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--events", type=int, default=100, help="events per device")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(run(Path(folder), backend, args.devices, args.events)), flush=True)


if __name__ == "__main__":
    main()
