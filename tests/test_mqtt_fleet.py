"""Many devices on one broker cluster: three devices publish to a local broker bridged (Mosquitto) to a
central one, where `edgeguard events --follow --mqtt --group` consumers share the events; together they have
every event of every device exactly once after de-duplication."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from brokers import Broker, needs_mosquitto
from helpers import clean_env, wait_for
from test_mqtt import cursor_of, harness, numbered

from edgeguard.config import load_config
from edgeguard.store.event_log import EventLog

pytestmark = needs_mosquitto

EVENTS_PER_DEVICE = 40


def device_config(folder: Path, port: int, device: str) -> Path:
    folder.mkdir(parents=True)
    path = folder / "edgeguard.toml"
    path.write_text(
        f'[paths]\nbase_dir = "{folder}"\n[[camera]]\nname = "gate"\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        f'device_id = "{device}"\ndiscovery = false\n',
        encoding="utf-8",
    )
    return path


def consumer(config: Path, group: str) -> subprocess.Popen:
    env = clean_env(PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "edgeguard", "--config", str(config), "events", "--follow", "--mqtt"]
    return subprocess.Popen(
        [*command, "--json", "--group", group],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


class Lines:
    """A process's stdout lines, read on a thread as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(process.stdout.readline, "")))
        self.thread.start()


def test_three_devices_through_a_bridge_to_shared_subscription_consumers(tmp_path):
    central = Broker(tmp_path / "central").start()
    local = Broker(
        tmp_path / "local",
        extra=(
            f"connection central\naddress 127.0.0.1:{central.port}\ntopic edgeguard/# out 1\n"
            "cleansession false\nremote_clientid bridge-local\n"
        ),
    ).start()
    processes: list[subprocess.Popen] = []
    try:
        wait_for(lambda: "bridge-local" in central.log(), 10, "the bridge connects to the central broker")
        reader_config = device_config(tmp_path / "reader", central.port, "reader")
        readers = [consumer(reader_config, "fleet") for _ in range(2)]
        processes += readers
        printed = [Lines(reader) for reader in readers]
        pids = [str(reader.pid) for reader in readers]
        wait_for(
            lambda: all(f"-{pid} 1 $share/fleet/edgeguard/+/events" in central.log() for pid in pids),
            20,
            lambda: f"both consumers subscribe: {central.log()[-1500:]}",
        )
        cursors = []
        for n in range(1, 4):
            config = device_config(tmp_path / f"device{n}", local.port, f"shop-{n}")
            log = EventLog(load_config(config).paths.events_db)
            for event in numbered(EVENTS_PER_DEVICE):
                log.append(event)
            log.close()
            cursors.append(tmp_path / f"device{n}" / "cursor")
            processes.append(harness(config, cursors[-1]))
        wait_for(
            lambda: all(cursor_of(c) == EVENTS_PER_DEVICE for c in cursors), 40, "every device delivered"
        )

        def unique() -> dict[str, dict]:
            return {e["event_id"]: e for p in printed for e in map(json.loads, list(p.lines))}

        wait_for(lambda: len(unique()) >= 3 * EVENTS_PER_DEVICE, 20, lambda: f"all events: {len(unique())}")
        for process in processes:
            process.terminate()
        codes = [reader.wait(15) for reader in readers]
        assert codes == [0, 0], [reader.stderr.read() for reader in readers]
        assert all(p.lines for p in printed), "each consumer of the group got a share"
        assert sorted((e["device"], e["seq"]) for e in unique().values()) == sorted(
            (f"shop-{n}", seq) for n in range(1, 4) for seq in range(1, EVENTS_PER_DEVICE + 1)
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
        local.stop()
        central.stop()
