"""A stand-in for the event bus in the MQTT tests and the benchmark: hands the events of an event log after
a cursor to an `MqttOutput`, in order, and keeps the cursor (the last seq delivered) in a file, as the bus
keeps it in the event log.  Run as `python mqtt_harness.py CONFIG CURSOR_FILE`; SIGTERM stops it (after up
to 5 s of draining); `kill -9` is what the tests do to it otherwise."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from edgeguard.config import load_config
from edgeguard.outputs.mqtt.output import MqttOutput
from edgeguard.store.event_log import read_events


def read_cursor(path: Path) -> int:
    return int(path.read_text() or 0) if path.exists() else 0


def write_cursor(path: Path, seq: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(seq))
    tmp.replace(path)


def run(config_path: Path, cursor_path: Path, stop: threading.Event) -> None:
    config = load_config(config_path)
    output = MqttOutput(config, lambda seq: write_cursor(cursor_path, seq))
    output.start()
    handed = read_cursor(cursor_path)
    while not stop.wait(0.05):
        if not config.paths.events_db.exists():
            continue
        for event in read_events(config.paths.events_db, sealer=config.sealer):
            if event.seq > handed and not stop.is_set():
                output.handle(event)
                handed = event.seq
    output.stop(drain_seconds=5.0)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run(Path(sys.argv[1]), Path(sys.argv[2]), stop)


if __name__ == "__main__":
    main()
