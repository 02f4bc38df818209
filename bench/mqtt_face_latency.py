"""Benchmark: from a decided face to its message at an MQTT subscriber, through the real daemon.

`edgeguard run` replays the Hamilton clip in real time and in a loop (the four people of the test sites
enrolled, so Lin-Manuel Miranda is named and the audience's faces are unknown) with `[mqtt]` on, against a
local Mosquitto broker; a subscriber on `<prefix>/events` notes when each event arrives.  The latency of an
event is its arrival minus its `time` (the wall-clock time of the frame that decided it), so it holds the
rest of that frame's pipeline, the events stage, the event bus and the MQTT output.  Printed: p50, p95 and
max over the face events of the run.

Run: python bench/mqtt_face_latency.py [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from brokers import Broker  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata"
CLIP = TESTDATA / "video" / "short_hamilton_clip.mp4"
PEOPLE = [
    ("1", "Lin-Manuel Miranda", "lin-manuel-miranda.png"),
    ("2", "Alex Lacamoire", "alex-lacamoire.png"),
    ("3", "Barack Obama", "obama.jpg"),
    ("4", "Joe Biden", "biden.jpg"),
]


def site(folder: Path, port: int) -> Path:
    details = folder / "Details" / "Details.csv"
    details.parent.mkdir(parents=True)
    rows = ["Id,Name,phone_number,initial_deposit,category"]
    for pid, name, photo in PEOPLE:
        (folder / "TrainingImage" / pid).mkdir(parents=True)
        shutil.copyfile(TESTDATA / "people" / photo, folder / "TrainingImage" / pid / photo)
        rows.append(f"{pid},{name},,0,")
    details.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = folder / "edgeguard.toml"
    config.write_text(
        f'[paths]\nbase_dir = "{folder}"\n[camera]\nloop = true\nrealtime = true\n[web]\nenabled = false\n'
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
        'device_id = "bench"\ndiscovery = false\n',
        encoding="utf-8",
    )
    return config


def subscribe(port: int, arrivals: list[tuple[float, dict]]) -> mqtt.Client:
    lock = threading.Lock()

    def message(_client, _userdata, msg) -> None:
        with lock:
            arrivals.append((time.time(), json.loads(msg.payload)))

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
    client.on_connect = lambda c, *_: c.subscribe("edgeguard/bench/events", 1)
    client.on_message = message
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the daemon replays the clip")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker").start()
        arrivals: list[tuple[float, dict]] = []
        client = subscribe(broker.port, arrivals)
        config = site(Path(tmp) / "site", broker.port)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "edgeguard", "--config", str(config), "run", "--source", str(CLIP)],
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(args.seconds)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
            time.sleep(0.5)
            client.loop_stop()
            broker.stop()
    latencies = sorted(
        arrived - datetime.fromisoformat(event["time"]).timestamp()
        for arrived, event in arrivals
        if event["type"] in ("known_face", "unknown_face", "no_mask")
    )
    kinds = statistics.multimode([event["type"] for _, event in arrivals]) if arrivals else []
    if not latencies:
        print("no face events arrived")
        return
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    print(
        f"{len(latencies)} face events over {args.seconds:.0f} s of the looping clip "
        f"(most: {', '.join(kinds)}): "
        f"decided face -> subscriber p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
