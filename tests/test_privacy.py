"""Tests for biometric data at rest: edgeguard.common.sealing (the data key, AES-GCM sealing), captures and
the encoding cache written sealed and read back plain, and a wrong key refused at start-up in one line."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import PEOPLE
from helpers import clean_env, edgeguard
from test_web import Board  # the dashboard on a free port, with an admin (alice) and a viewer (victor)

from edgeguard.alerts.outbox import Outbox, read_messages
from edgeguard.alerts.service import AlertService
from edgeguard.common.sealing import (
    CHECK_FILE,
    KEY_SIZE,
    DataKeyError,
    Sealer,
    SealError,
    is_sealed,
    load_sealer,
    parse_key,
    unseal,
)
from edgeguard.config import load_config
from edgeguard.configfile.reading import ConfigError
from edgeguard.events.event import Event
from edgeguard.service.erasure import ErasureError, forget_capture, forget_person
from edgeguard.store.event_log import ERASED, EventLog, read_events
from edgeguard.store.face_captures import CaptureDamaged, CaptureFolder, CaptureStore, capture_id
from edgeguard.watchlist.build import open_cache
from edgeguard.watchlist.cache import CACHE_FILE, CacheEntry, EncodingCache, photo_digest

JPEG = b"\xff\xd8\xff"
KEY = bytes(range(KEY_SIZE))
OTHER_KEY = bytes(range(1, KEY_SIZE + 1))
SIDECAR = {"time": 1_790_000_000.5, "camera": "Gate 1", "box": [20, 100, 80, 40], "name": "Alice Example"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("CREDENTIALS_DIRECTORY", "EDGEGUARD_DATA_KEY", "EDGEGUARD_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def images() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:120, 0:160]
    frame = np.dstack([x * 1.5, y * 2, (x + y) * 0.9]).astype(np.uint8)
    return frame[20:80, 40:100].copy(), frame


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- sealing


def test_sealed_bytes_open_only_for_their_role_and_key():
    sealer = Sealer(KEY)
    blob = sealer.seal(b"secret face", "capture/a-face.jpg")
    assert is_sealed(blob) and b"secret face" not in blob
    assert sealer.open(blob, "capture/a-face.jpg") == b"secret face"
    assert blob != sealer.seal(b"secret face", "capture/a-face.jpg")  # a fresh nonce each time
    with pytest.raises(SealError, match="renamed"):
        sealer.open(blob, "capture/b-face.jpg")
    with pytest.raises(SealError, match="another key"):
        Sealer(OTHER_KEY).open(blob, "capture/a-face.jpg")


@pytest.mark.parametrize("damage", ["truncate", "flip", "short"])
def test_damaged_sealed_bytes_are_refused(damage):
    sealer = Sealer(KEY)
    blob = bytearray(sealer.seal(b"x" * 100, "r"))
    if damage == "truncate":
        blob = blob[:-5]
    elif damage == "flip":
        blob[40] ^= 0x01
    else:
        blob = blob[:20]
    with pytest.raises(SealError):
        sealer.open(bytes(blob), "r")


def test_plain_bytes_pass_and_sealed_bytes_need_a_key():
    assert unseal(Sealer(KEY), b"plain", "r") == b"plain"
    with pytest.raises(SealError, match="encrypt is off"):
        unseal(None, Sealer(KEY).seal(b"x", "r"), "r")


def test_key_is_raw_or_base64_of_32_bytes():
    assert parse_key(KEY, "k") == KEY
    assert parse_key(base64.b64encode(KEY) + b"\n", "k") == KEY
    with pytest.raises(DataKeyError, match="32 random bytes"):
        parse_key(b"too short\n", "k")
    with pytest.raises(DataKeyError):
        Sealer(b"short")


# ---------------------------------------------------------------- the data key


def test_key_file_is_made_private_with_a_warning_and_checked(tmp_path):
    sealer, note = load_sealer(tmp_path / "data.key", tmp_path)
    assert mode(tmp_path / "data.key") == 0o600 and mode(tmp_path / CHECK_FILE) == 0o600
    assert "same disk" in note and "data_key" in note
    again, _ = load_sealer(tmp_path / "data.key", tmp_path)
    assert again.open(sealer.seal(b"x", "r"), "r") == b"x"


def test_key_file_open_to_others_is_refused(tmp_path):
    load_sealer(tmp_path / "data.key", tmp_path)
    (tmp_path / "data.key").chmod(0o644)
    with pytest.raises(DataKeyError, match="readable by others.*chmod 600"):
        load_sealer(tmp_path / "data.key", tmp_path)


def test_key_of_wrong_length_is_refused(tmp_path):
    key = tmp_path / "data.key"
    key.write_bytes(b"abc\n")
    key.chmod(0o600)
    with pytest.raises(DataKeyError, match="32 random bytes"):
        load_sealer(key, tmp_path)


def test_wrong_key_is_refused_and_nothing_changes(tmp_path, monkeypatch):
    load_sealer(tmp_path / "data.key", tmp_path)
    check = (tmp_path / CHECK_FILE).read_bytes()
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "data_key").write_bytes(OTHER_KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    with pytest.raises(DataKeyError, match="not the key this device's data was encrypted with"):
        load_sealer(tmp_path / "data.key", tmp_path)
    assert (tmp_path / CHECK_FILE).read_bytes() == check


def test_credential_wins_without_a_warning(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "data_key").write_bytes(base64.b64encode(KEY))
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    sealer, note = load_sealer(tmp_path / "data.key", tmp_path)
    assert note == "" and not (tmp_path / "data.key").exists()
    assert Sealer(KEY).open(sealer.seal(b"x", "r"), "r") == b"x"


def test_config_loads_the_key_by_default_and_refuses_a_wrong_one(tmp_path, monkeypatch):
    config_file = tmp_path / "edgeguard.toml"
    config_file.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n')
    config = load_config(config_file)
    assert config.sealer is not None and any("data key" in note for note in config.notes)
    assert repr(config).count(str(KEY)) == 0
    monkeypatch.setenv("EDGEGUARD_DATA_KEY", base64.b64encode(OTHER_KEY).decode())
    with pytest.raises(ConfigError, match="not the key"):
        load_config(config_file)
    config_file.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n[privacy]\nencrypt = false\n')
    assert load_config(config_file).sealer is None


def test_wrong_key_stops_a_command_with_one_line(tmp_path):
    config_file = tmp_path / "edgeguard.toml"
    config_file.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n')
    load_config(config_file)  # the first start makes the key and its check
    env = clean_env(EDGEGUARD_DATA_KEY=base64.b64encode(OTHER_KEY).decode())
    result = edgeguard(config_file, "events", env=env)
    assert result.returncode == 78
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not the key this device's data was encrypted with" in lines[0], result.stderr
    assert base64.b64encode(OTHER_KEY).decode() not in result.stderr


# ---------------------------------------------------------------- captures


def test_captures_are_sealed_on_disk_and_read_back_plain(tmp_path):
    folder = tmp_path / "caps"
    store = CaptureStore(folder, 30, 100, Sealer(KEY))
    saved = store.save(1_790_000_000.25, "gate", *images(), SIDECAR)
    for path in (saved.face, saved.frame, saved.sidecar):
        data = path.read_bytes()
        assert is_sealed(data) and JPEG not in data and b"Alice" not in data and b"Gate 1" not in data
        assert mode(path) == 0o600
    capture = CaptureFolder(folder, Sealer(KEY)).of(saved.face)
    assert capture.read("face").startswith(JPEG) and capture.read("frame").startswith(JPEG)
    assert capture.sidecar_data() == SIDECAR
    assert capture.frame_image().shape == (120, 160, 3)
    assert CaptureFolder(folder, Sealer(KEY)).image_named(saved.face.name).startswith(JPEG)


def test_a_damaged_capture_is_named_and_the_others_stay_readable(tmp_path):
    folder = tmp_path / "caps"
    store = CaptureStore(folder, 30, 100, Sealer(KEY))
    first = store.save(1_790_000_000.25, "gate", *images(), SIDECAR)
    second = store.save(1_790_000_100.25, "gate", *images(), SIDECAR)
    data = bytearray(first.face.read_bytes())
    data[-1] ^= 0x80
    first.face.write_bytes(bytes(data))
    first.frame.write_bytes(first.frame.read_bytes()[:50])
    reader = CaptureFolder(folder, Sealer(KEY))
    with pytest.raises(CaptureDamaged, match=first.face.name):
        reader.of(first.face).read("face")
    with pytest.raises(CaptureDamaged, match=first.frame.name):
        reader.of(first.face).read("frame")
    assert reader.of(second.face).read("face").startswith(JPEG)


def test_a_sealed_file_moved_to_another_capture_does_not_open(tmp_path):
    folder = tmp_path / "caps"
    store = CaptureStore(folder, 30, 100, Sealer(KEY))
    first = store.save(1_790_000_000.25, "gate", *images(), SIDECAR)
    second = store.save(1_790_000_100.25, "gate", *images(), SIDECAR)
    os.replace(first.face, second.face)
    with pytest.raises(CaptureDamaged):
        CaptureFolder(folder, Sealer(KEY)).of(second.face).read("face")


def test_plain_captures_from_before_stay_readable(tmp_path):
    folder = tmp_path / "caps"
    saved = CaptureStore(folder, 30, 100).save(1_790_000_000.25, "gate", *images(), SIDECAR)
    assert saved.face.read_bytes().startswith(JPEG)
    capture = CaptureFolder(folder, Sealer(KEY)).of(saved.face)
    assert capture.read("face").startswith(JPEG) and capture.sidecar_data() == SIDECAR


def test_sealed_captures_without_the_key_are_refused_by_name(tmp_path):
    folder = tmp_path / "caps"
    saved = CaptureStore(folder, 30, 100, Sealer(KEY)).save(1_790_000_000.25, "gate", *images(), SIDECAR)
    with pytest.raises(CaptureDamaged, match="encrypt is off"):
        CaptureFolder(folder).of(saved.face).sidecar_data()


# ---------------------------------------------------------------- encoding cache


def cache_with_one(folder: Path, sealer: Sealer | None) -> EncodingCache:
    cache = EncodingCache(folder, "sig", sealer)
    cache.put("d1", CacheEntry(np.linspace(-0.2, 0.2, 128).astype(np.float32)))
    cache.put("d2", CacheEntry(None, "no face"))
    cache.save(keep={"d1", "d2"})
    return cache


def test_encoding_cache_is_sealed_and_reads_back(tmp_path):
    cache_with_one(tmp_path, Sealer(KEY))
    data = (tmp_path / CACHE_FILE).read_bytes()
    assert is_sealed(data) and not data.startswith(b"PK") and np.float32(0.2).tobytes() not in data
    again = EncodingCache(tmp_path, "sig", Sealer(KEY))
    again.load()
    assert len(again) == 2 and again.get("d2").error == "no face"
    assert np.allclose(again.get("d1").encoding, np.linspace(-0.2, 0.2, 128))


def test_plain_encoding_cache_is_read_and_sealed_on_the_next_save(tmp_path):
    cache_with_one(tmp_path, None)
    assert (tmp_path / CACHE_FILE).read_bytes().startswith(b"PK")
    cache = EncodingCache(tmp_path, "sig", Sealer(KEY))
    cache.load()
    assert len(cache) == 2
    cache.save(keep={"d1", "d2"})
    assert is_sealed((tmp_path / CACHE_FILE).read_bytes())


def test_damaged_encoding_cache_is_rebuilt_with_a_warning(tmp_path, caplog):
    cache_with_one(tmp_path, Sealer(KEY))
    path = tmp_path / CACHE_FILE
    path.write_bytes(path.read_bytes()[:-3])
    cache = EncodingCache(tmp_path, "sig", Sealer(KEY))
    cache.load()
    assert len(cache) == 0 and "unusable" in caplog.text


def test_sidecar_json_is_not_readable_on_disk(tmp_path):
    saved = CaptureStore(tmp_path, 30, 100, Sealer(KEY)).save(1_790_000_000.25, "gate", *images(), SIDECAR)
    with pytest.raises((UnicodeDecodeError, ValueError)):
        json.loads(saved.sidecar.read_bytes())


# ---------------------------------------------------------------- erasure (edgeguard forget)


def erasure_site(site):
    """Two people with a photo, cached encodings, a sighting capture and an event each, a pending message
    about each event, and an unknown visitor's capture and event; returns the config and what was made."""
    site.add_person("3", "Barack Obama", [PEOPLE / "obama.jpg"])
    site.add_person("4", "Joe Biden", [PEOPLE / "biden.jpg"])
    config = site.config()
    cache = open_cache(config)
    encodings = {}
    for pid in ("3", "4"):
        [photo] = (site.training / pid).iterdir()
        encodings[pid] = np.random.default_rng(int(pid)).normal(size=128).astype(np.float32)
        cache.put(photo_digest(photo.read_bytes()), CacheEntry(encodings[pid]))
    cache.save(keep=set(cache._entries))
    store = CaptureStore(config.paths.captures, 30, 100, config.sealer)
    log = EventLog(config.paths.events_db, sealer=config.sealer)
    outbox = Outbox(config.paths.outbox_db, sealer=config.sealer)
    captures = {}
    for n, (pid, name) in enumerate((("3", "Barack Obama"), ("4", "Joe Biden"), (None, None))):
        person = {"person": {"id": pid, "name": name}} if pid else {}
        saved = store.save(1_790_000_000.0 + n * 100, "gate", *images(), {**SIDECAR, **person})
        captures[pid] = saved
        event = log.append(
            Event(
                "known_face" if pid else "unknown_face",
                1_790_000_000.0 + n * 100,
                "gate",
                "Gate",
                person_id=pid,
                name=name,
                capture=str(saved.face),
                extra={"match": "strong"},
            )
        )
        outbox.add("+15550000001", f"EdgeGuard ALERT: {name or 'unknown'}", None, event.seq)
    log.close()
    outbox.close()
    return config, encodings, captures


def all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


def test_forget_erases_a_person_everywhere_and_keeps_the_others(site):
    config, encodings, captures = erasure_site(site)
    photo = (PEOPLE / "obama.jpg").read_bytes()
    result = edgeguard(site.config_path, "forget", "3")
    assert result.returncode == 0, result.stderr
    assert "photos: 1 removed" in result.stdout and "captures: 1 (3 files) removed" in result.stdout
    assert "events: 1 kept as erased" in result.stdout and "1 pending deleted" in result.stdout
    for path, data in all_bytes(site.base):
        assert photo[-300:-200] not in data, path  # the image data, not EXIF text other photos share
        if site.training not in path.parents:  # (another person's photo may name him in its EXIF text)
            assert b"Barack Obama" not in data, path
    assert not (site.training / "3").exists() and (site.training / "4").is_dir()
    assert "Obama" not in site.details.read_text() and "Joe Biden" in site.details.read_text()
    cache = open_cache(site.config())
    assert len(cache) == 1 and np.allclose(next(iter(cache._entries.values())).encoding, encodings["4"])
    assert not any(os.path.lexists(p) for p in vars(captures["3"]).values())
    folder = CaptureFolder.of_config(site.config())
    assert folder.of(captures["4"].face).sidecar_data()["person"]["id"] == "4"
    assert folder.of(captures[None].face).read("face").startswith(JPEG)
    events = read_events(config.paths.events_db, sealer=config.sealer)
    assert [(e.type, e.name, e.person_id, e.capture) for e in events][0] == ("known_face", ERASED, None, None)
    assert [e.name for e in events[1:3]] == ["Joe Biden", None] and len(events) == 4
    # the erasure, for the outputs: the Id, the capture ids and the stripped events, nothing personal
    erased = events[3]
    assert (erased.type, erased.person_id, erased.name, erased.capture) == ("erased", "3", None, None)
    assert erased.extra == {"captures": [capture_id(captures["3"].face)], "events": [[1, 1_790_000_000.0]]}
    assert f"outputs: erased event {erased.seq} logged" in result.stdout
    assert erased.subject() == "Id 3"
    bodies = [m.body for m in read_messages(config.paths.outbox_db, sealer=config.sealer)]
    assert len(bodies) == 2 and not any("Obama" in b for b in bodies)


def test_forget_again_finds_nothing_and_the_erased_event_is_not_erased(site):
    config, _, _ = erasure_site(site)
    assert edgeguard(site.config_path, "forget", "3").returncode == 0
    again = edgeguard(site.config_path, "forget", "3")
    assert again.returncode == 2 and "no person with Id 3" in again.stderr
    assert [e.type for e in read_events(config.paths.events_db, sealer=config.sealer)][-1] == "erased"


def test_the_sms_output_ignores_an_erasure(site):
    site.write_config('[[alerts.route]]\nto = ["+15550000009"]\n')
    config = site.config()
    service = AlertService(config)
    try:
        service.handle(Event("erased", 1_790_000_000.0, "", "", person_id="3", seq=9, extra={"captures": []}))
        assert service.outbox.count("pending") == 0 and not service.outbox.has_event(9)
    finally:
        service.outbox.close()


def test_a_route_cannot_send_erasures(site):
    site.write_config('[[alerts.route]]\nto = ["+15550000009"]\nevents = ["erased"]\n')
    with pytest.raises(ConfigError, match="erased"):
        site.config()


def test_the_dashboard_button_erases_for_admins_only(site):
    config, _, captures = erasure_site(site)
    board = Board(site)
    try:
        board.dashboard.erase = lambda person_id: forget_person(board.config, person_id)
        viewer, _ = board.login("victor")
        token = board.csrf(viewer, "/records/3")
        assert "Erase Id 3 everywhere" not in viewer.get(f"{board.url}/records/3").text
        refused = viewer.post(f"{board.url}/records/3/erase", data={"csrf": token, "confirm": "3"})
        assert refused.status_code == 403 and (site.training / "3").is_dir()
        admin, _ = board.login()
        page = admin.get(f"{board.url}/records/3").text
        assert "Erase Id 3 everywhere" in page and "/records/3/erase" in page
        assert admin.post(f"{board.url}/records/3/erase", data={"confirm": "3"}).status_code == 403  # no CSRF
        assert (site.training / "3").is_dir()
        admin.post(
            f"{board.url}/records/3/erase", data={"csrf": board.csrf(admin, "/records/3"), "confirm": "4"}
        )
        assert (site.training / "3").is_dir() and captures["3"].face.exists()  # the wrong Id typed
        done = admin.post(
            f"{board.url}/records/3/erase", data={"csrf": board.csrf(admin, "/records/3"), "confirm": "3"}
        )
        assert done.status_code == 200 and "erased everywhere" in done.text
        assert not (site.training / "3").exists() and not captures["3"].face.exists()
        assert (site.training / "4").is_dir() and captures["4"].face.exists()
        assert [e.type for e in read_events(config.paths.events_db, sealer=config.sealer)][-1] == "erased"
    finally:
        board.stop()


def test_forget_an_unknown_id_says_so_and_changes_nothing(site):
    erasure_site(site)
    before = all_bytes(site.base)
    result = edgeguard(site.config_path, "forget", "9")
    assert (
        result.returncode == 2
        and "no person with Id 9" in result.stderr
        and "nothing changed" in result.stderr
    )
    assert all_bytes(site.base) == before


def test_forget_one_capture(site):
    config, _, captures = erasure_site(site)
    done = forget_capture(config, captures[None].frame.name)
    assert done[0].startswith("captures: 1 (3 files)") and "events: 1 kept as erased" in done[1]
    erased = read_events(config.paths.events_db, sealer=config.sealer)[-1]
    assert (erased.type, erased.person_id, erased.extra["captures"]) == (
        "erased",
        None,
        [capture_id(captures[None].face)],
    )
    assert erased.subject() == f"capture {capture_id(captures[None].face)}"
    assert not captures[None].face.exists() and captures["3"].face.exists()
    with pytest.raises(ErasureError, match="no capture"):
        forget_capture(config, captures[None].face.name)
    with pytest.raises(ErasureError):
        forget_capture(config, "../etc/passwd")
