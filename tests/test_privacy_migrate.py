"""Tests for `edgeguard privacy migrate`: a plain site sealed in place, killed midway and run again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
from helpers import clean_env, edgeguard

from edgeguard.alerts.outbox import Outbox, read_messages
from edgeguard.common.sealing import is_sealed
from edgeguard.events.event import Event
from edgeguard.service.doctor import check_encryption
from edgeguard.store.event_log import EventLog, read_events
from edgeguard.store.face_captures import CaptureFolder, CaptureStore, parse_name
from edgeguard.watchlist.build import open_cache
from edgeguard.watchlist.cache import CACHE_FILE, CacheEntry

CAPTURES = 600
JPEG = b"\xff\xd8\xff"


def images() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:120, 0:160]
    frame = np.dstack([x * 1.5, y * 2, (x + y) * 0.9]).astype(np.uint8)
    return frame[20:80, 40:100].copy(), frame


def plain_site(site) -> list[str]:
    """A site written before encryption: captures, the cache, events and messages naming people; the
    capture ids."""
    site.write_config("[privacy]\nencrypt = false\n")
    config = site.config()
    store = CaptureStore(config.paths.captures, 30, 100)
    log, outbox = EventLog(config.paths.events_db), Outbox(config.paths.outbox_db)
    start = time.time() - CAPTURES
    ids = []
    for n in range(CAPTURES):
        name = f"Person Name {n:04d}"
        saved = store.save(start + n, "gate", *images(), {"person": {"id": str(n), "name": name}})
        ids.append(parse_name(saved.face.name)[0])
        event = log.append(
            Event(
                "known_face", start + n, "gate", "Gate", person_id=str(n), name=name, capture=str(saved.face)
            )
        )
        outbox.add("+15550000001", f"EdgeGuard ALERT: {name}", None, event.seq)
    log.close()
    outbox.close()
    cache = open_cache(config)
    cache.put("digest", CacheEntry(np.ones(128, np.float32)))
    cache.save(keep={"digest"})
    site.write_config("")  # encryption on, as the site's next configuration
    return ids


def test_migrate_killed_midway_and_run_again_seals_everything(site):
    ids = plain_site(site)
    [before] = check_encryption(site.config())
    assert before.level == "WARN" and before.detail.startswith(
        f"still plain from before: {CAPTURES * 3} capture files, 1 encoding cache, {CAPTURES} events, "
        f"{CAPTURES} messages; run 'edgeguard privacy migrate'"
    )
    command = [sys.executable, "-m", "edgeguard", "--config", str(site.config_path), "privacy", "migrate"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=clean_env())
    try:
        for line in process.stdout:
            if line.startswith("captures: 100/"):
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    config = site.config()
    files = [p for p in config.paths.captures.iterdir() if not p.name.startswith(".")]
    assert any(not is_sealed(p.read_bytes()) for p in files)  # it was stopped midway

    again = edgeguard(site.config_path, "privacy", "migrate", timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"event log: {CAPTURES} rows sealed" in again.stdout and "encoding cache: sealed" in again.stdout
    assert f"outbox: {CAPTURES} rows sealed" in again.stdout

    folder = CaptureFolder.of_config(config)
    for n, capture_id in enumerate(ids):
        capture = folder.get(capture_id)
        assert capture.read("face").startswith(JPEG) and capture.read("frame").startswith(JPEG)
        assert capture.sidecar_data()["person"]["name"] == f"Person Name {n:04d}"
    events = read_events(config.paths.events_db, sealer=config.sealer)
    assert [e.name for e in events] == [f"Person Name {n:04d}" for n in range(CAPTURES)]
    assert folder.of(events[7].capture).id == ids[7]
    bodies = [m.body for m in read_messages(config.paths.outbox_db, sealer=config.sealer)]
    assert bodies[-1] == f"EdgeGuard ALERT: Person Name {CAPTURES - 1:04d}"
    assert len(open_cache(config)) == 1 and is_sealed(
        (config.paths.encodings_cache / CACHE_FILE).read_bytes()
    )
    for path in site.base.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not data.startswith(JPEG) and b"JFIF" not in data and b"Person Name" not in data, path

    [after] = check_encryption(config)
    assert after.level == "ok" and after.detail.startswith(
        "captures, the encoding cache, events and texts sealed"
    )
    done = edgeguard(site.config_path, "privacy", "migrate")  # nothing left to do
    assert done.returncode == 0 and f"captures: 0 of {CAPTURES * 3} files sealed" in done.stdout
    assert "event log: 0 rows sealed" in done.stdout


def test_migrate_needs_encryption_on(site):
    site.write_config("[privacy]\nencrypt = false\n")
    result = edgeguard(site.config_path, "privacy", "migrate")
    assert result.returncode == 2 and "[privacy] encrypt is off" in result.stderr
    assert check_encryption(site.config())[0].level == "WARN"
