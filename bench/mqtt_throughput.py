"""Benchmark: events through the MQTT output (edgeguard.outputs.mqtt) to a local Mosquitto broker.

1. throughput: N events in the event log handed to `MqttOutput` as fast as it takes them; events per second
   until the broker has acknowledged the last one (the cursor reaches it).
2. latency: events recorded one every 20 ms (EventLog.append, then handle, as the bus does), each timed from
   just before it is written to the event log to its arrival at a subscriber; p50 and p95.  The pipeline's
   decision before the event (the clip's part) is measured by bench/alert_latency.py, not here.
3. backlog: the broker is down while BACKLOG events are recorded (a 10-minute outage at the given rate),
   then started; how long until every event is acknowledged.

Run: python bench/mqtt_throughput.py [--events N] [--latency N] [--outage-rate EVENTS_PER_SECOND]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from brokers import Broker, Listener  # noqa: E402

from edgeguard.config import load_config  # noqa: E402
from edgeguard.events.event import Event  # noqa: E402
from edgeguard.outputs.mqtt.output import MqttOutput  # noqa: E402
from edgeguard.store.event_log import EventLog  # noqa: E402

OUTAGE_SECONDS = 600


def config_file(folder: Path, port: int) -> Path:
    path = folder / "edgeguard.toml"
    path.write_text(
        f'[paths]\nbase_dir = "{folder}"\n[[camera]]\nname = "gate"\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        'device_id = "bench"\ndiscovery = false\n',
        encoding="utf-8",
    )
    return path


class Run:
    """One output on a fresh event log, and the cursor it reports."""

    def __init__(self, folder: Path, port: int) -> None:
        folder.mkdir()
        config = load_config(config_file(folder, port))
        self.log = EventLog(config.paths.events_db, sealer=config.sealer)
        self.cursor = 0
        self.reached = threading.Condition()
        self.output = MqttOutput(config, self._delivered)
        self.output.start()

    def _delivered(self, seq: int) -> None:
        with self.reached:
            self.cursor = seq
            self.reached.notify_all()

    def wait(self, seq: int, timeout: float = 600.0) -> None:
        with self.reached:
            if not self.reached.wait_for(lambda: self.cursor >= seq, timeout):
                raise SystemExit(f"not delivered within {timeout} s: cursor {self.cursor}, wanted {seq}")

    def close(self) -> None:
        self.output.stop()
        self.log.close()


def face(i: int) -> Event:
    return Event(
        "known_face",
        time.time(),
        "gate",
        "Front Gate",
        person_id=str(i % 50),
        name="Test Person",
        category="wanted",
        distance=0.4,
        extra={"match": "strong"},
    )


def throughput(folder: Path, port: int, count: int) -> float:
    run = Run(folder, port)
    events = [run.log.append(face(i)) for i in range(count)]
    start = time.perf_counter()
    for event in events:
        run.output.handle(event)
    run.wait(events[-1].seq)
    elapsed = time.perf_counter() - start
    run.close()
    return count / elapsed


class TimedListener(Listener):
    """A subscriber that notes when each event arrives (seq -> perf_counter)."""

    def __init__(self, port: int, topic: str) -> None:
        self.arrived: dict[int, float] = {}
        super().__init__(port, topic, client_id="bench-listener")

    def _message(self, _client, _userdata, message) -> None:
        self.arrived.setdefault(json.loads(message.payload)["seq"], time.perf_counter())


def latency(folder: Path, port: int, count: int) -> list[float]:
    listener = TimedListener(port, "edgeguard/bench/events")
    run = Run(folder, port)
    sent: dict[int, float] = {}
    for i in range(count):
        sent_at = time.perf_counter()
        event = run.log.append(face(i))
        sent[event.seq] = sent_at
        run.output.handle(event)
        time.sleep(0.02)
    run.wait(max(sent))
    time.sleep(0.2)
    listener.close()
    run.close()
    return [listener.arrived[seq] - at for seq, at in sent.items()]


def backlog(folder: Path, broker: Broker, count: int) -> float:
    run = Run(folder, broker.port)
    time.sleep(0.5)
    broker.stop()
    events = [run.log.append(face(i)) for i in range(count)]
    feeder = threading.Thread(target=lambda: [run.output.handle(e) for e in events])
    feeder.start()  # waits once WINDOW events wait for the broker, as the bus's worker would
    time.sleep(1.0)
    start = time.perf_counter()
    broker.start()
    run.wait(events[-1].seq)
    elapsed = time.perf_counter() - start
    feeder.join()
    run.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="events for the throughput run")
    parser.add_argument("--latency", type=int, default=200, help="events for the latency run")
    parser.add_argument(
        "--outage-rate", type=float, default=1.0, help="events per second during the 10-minute outage"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(folder / "broker").start()
        try:
            rate = throughput(folder / "throughput", broker.port, args.events)
            print(f"throughput: {rate:.0f} events/s ({args.events} events, QoS 1, acknowledged)")
            times = sorted(latency(folder / "latency", broker.port, args.latency))
            p50 = statistics.median(times) * 1000
            p95 = times[int(0.95 * (len(times) - 1))] * 1000
            print(f"event log -> subscriber: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(times)} events)")
            count = int(OUTAGE_SECONDS * args.outage_rate)
            drained = backlog(folder / "backlog", broker, count)
            print(
                f"backlog of a 10-minute outage ({count} events at {args.outage_rate:g}/s) "
                f"drained in {drained:.2f} s (from the broker's restart, paho's reconnect wait included)"
            )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
