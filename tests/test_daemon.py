"""`edgeguard run` as a real process: the Hamilton clip, a local MJPEG camera, signals, broken input.

Each test runs `python -m edgeguard` in a throwaway site folder and checks what
it leaves behind: exit code, stderr, the SQLite event log (through
`edgeguard events --json` or read directly) and the capture files.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import helpers  # tests/helpers.py
import numpy as np
import pytest
from conftest import CLIP, CLIP_FPS, CLIP_FRAMES, Site, capture_image, capture_sidecar, make_site
from helpers import clean_env, edgeguard, wait_for
from streams import MjpegServer, jpeg_frames  # tests/streams.py

# Every test here replays the whole clip in a daemon, needs the module's replay (its encodings cache),
# or bounds how long the daemon takes.
pytestmark = pytest.mark.slow

LIN = "1"
EVENT_KEYS = {"type", "id", "frame", "time", "camera", "capture"}
# A log line's level, after the local time that starts each line outside journald (edgeguard.service.logs).
LEVEL = re.compile(r"(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d )?(\S*)")
SIDECAR_KEYS = {"time", "camera", "location", "box", "distance", "frame"}


# ---------------------------------------------------------------- helpers


def decode(jpeg: bytes) -> np.ndarray:
    """A capture image's bytes as the BGR image (captures are sealed on disk: read through the store)."""
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def events_json(config: Path) -> list[dict]:
    result = edgeguard(config, "events", "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def db_events(db: Path) -> list[dict]:
    """The events committed so far, read directly (cheap enough to poll); [] before the log exists."""
    return helpers.db_rows(db, "SELECT * FROM events ORDER BY seq")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def phone_numbers(site: Site) -> list[str]:
    with site.details.open(encoding="utf-8", newline="") as fh:
        numbers = [row["phone_number"] for row in csv.DictReader(fh) if row.get("phone_number")]
    assert numbers
    return numbers


def stopped_frames(stderr: str) -> int:
    line = next(line for line in stderr.splitlines() if "stopped after" in line)
    return int(line.split("stopped after ")[1].split()[0])


def footage() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


# ---------------------------------------------------------------- one replay of the clip, many checks


@dataclass
class Run:
    site: Site
    code: int
    stderr: str
    seconds: float
    events: list[dict]


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Run:
    site = make_site(tmp_path_factory.mktemp("daemon") / "site")
    started = time.monotonic()
    result = edgeguard(site.config_path, "run", "--source", str(CLIP), timeout=120)
    seconds = time.monotonic() - started
    return Run(site, result.returncode, result.stderr, seconds, events_json(site.config_path))


def test_replay_runs_to_the_end_of_the_file(replay):
    assert replay.code == 0, replay.stderr
    assert "source ended" in replay.stderr
    assert stopped_frames(replay.stderr) == CLIP_FRAMES
    assert "Traceback" not in replay.stderr
    assert replay.seconds < 60


def test_replay_names_lin_manuel_early_and_nobody_else(replay):
    known = [e for e in replay.events if e["type"] == "known_face"]
    assert known, replay.stderr
    assert known[0]["id"] == LIN and known[0]["name"] == "Lin-Manuel Miranda"
    assert known[0]["frame"] < 20
    assert {e["id"] for e in known} == {LIN}
    assert all(e["distance"] is not None and e["distance"] <= 0.56 for e in known)


def test_replay_records_the_unknown_face_with_a_capture(replay):
    unknown = [e for e in replay.events if e["type"] == "unknown_face"]
    assert len(unknown) == 1, replay.events
    event = unknown[0]
    assert 211 <= event["frame"] < 240 and event["id"] is None
    face = Path(event["capture"])
    assert face.is_file() and face.name.endswith("-face.jpg")
    assert face.parent == replay.site.base / "Unknown_Face_Captures"
    stem = face.name.removesuffix("-face.jpg")
    frame_file, sidecar_file = face.with_name(f"{stem}-frame.jpg"), face.with_name(f"{stem}.json")
    assert frame_file.is_file() and sidecar_file.is_file()
    assert event["extra"]["frame_image"] == str(frame_file)
    crop, whole = decode(capture_image(face)), decode(capture_image(frame_file))
    assert crop is not None and 40 <= min(crop.shape[:2]) <= 200
    assert whole.shape == (360, 640, 3)
    sidecar = capture_sidecar(sidecar_file)
    assert SIDECAR_KEYS <= set(sidecar)
    # The sidecar describes the saved view (the track's best frame); the event, the decision.
    assert sidecar["decided_at_frame"] == event["frame"] and sidecar["frame"] <= event["frame"]
    assert sidecar["camera"] == event["camera"] == "camera"
    assert sidecar["time"] == pytest.approx(event["time"])
    assert sidecar["location"]["name"] == "Site"
    assert sidecar["distance"] == pytest.approx(event["distance"]) and sidecar["distance"] > 0.56
    top, right, bottom, left = sidecar["box"]
    assert 0 <= top < bottom <= 360 and 0 <= left < right <= 640
    # the box is where the face is in the saved frame: the crop is that part of it
    cut = whole[top:bottom, left:right]
    assert cut.shape[:2] == crop.shape[:2]
    assert np.abs(cut.astype(int) - crop).mean() < 8


def test_capture_frame_image_is_the_footage_frame_its_sidecar_names(replay):
    """Someone reviewing a capture looks up the footage at the sidecar's frame: the saved frame image
    (and the box measured in it) must come from that frame."""
    event = next(e for e in replay.events if e["type"] == "unknown_face")
    stem = Path(event["capture"]).name.removesuffix("-face.jpg")
    sidecar = capture_sidecar(event["capture"])
    saved = decode(capture_image(Path(event["capture"]).parent / f"{stem}-frame.jpg")).astype(int)
    frames = footage()
    differences = {n: float(np.abs(frames[n].astype(int) - saved).mean()) for n in range(200, 240)}
    best = min(differences, key=differences.get)
    assert differences[best] < 3  # it is a frame of the clip
    assert best == sidecar["frame"], (
        f"saved frame is footage frame {best}, the sidecar says {sidecar['frame']}"
    )


def test_every_event_has_the_documented_keys(replay):
    assert len(replay.events) >= 3
    for event in replay.events:
        assert EVENT_KEYS <= set(event), event
        assert event["camera"] == "camera" and event["location"] == "Site"
    assert [e["seq"] for e in replay.events] == list(range(1, len(replay.events) + 1))
    # every sighted face is captured: the unknown visitor, and Lin-Manuel (wanted: not a quiet category)
    assert all(e["capture"] is not None for e in replay.events if e["type"] != "crowd"), replay.events


def test_replay_reports_each_bare_face_once_saying_who(replay):
    """Nobody in the clip wears a mask: each tracked face gets one no_mask event, once its
    identity is known, naming Lin-Manuel or pointing at the unknown face's capture."""
    identities = {e["track"]: e for e in replay.events if e["type"] in ("known_face", "unknown_face")}
    bare = [e for e in replay.events if e["type"] == "no_mask"]
    assert sorted(e["track"] for e in bare) == sorted(identities), replay.events
    for event in bare:
        identity = identities[event["track"]]
        assert event["frame"] >= identity["frame"]
        assert (event["id"], event["name"], event["capture"]) == (
            identity["id"],
            identity["name"],
            identity["capture"],
        )
        if identity["type"] == "unknown_face":
            assert event["extra"]["visitor"] == identity["extra"]["visitor"]


def test_event_frames_are_footage_positions(replay):
    for event in replay.events:
        assert 0 <= event["frame"] < CLIP_FRAMES
        assert event["pos_ms"] == pytest.approx(event["frame"] * 1000 / CLIP_FPS, abs=1.0)
    frames = [e["frame"] for e in replay.events]
    assert frames == sorted(frames)
    known = [e for e in replay.events if e["type"] == "known_face"]
    assert any(e["frame"] < 20 for e in known) and any(82 <= e["frame"] < 110 for e in known)
    # the box of the first sighting is where Lin-Manuel is in that frame of the footage
    top, right, bottom, left = known[0]["extra"]["box"]
    image = footage()[known[0]["frame"]]
    assert 0 <= top < bottom <= 360 and 0 <= left < right <= 640
    face = image[top:bottom, left:right]
    assert face.std() > 20  # a face, not the dark stage around it


def test_captures_are_private(replay):
    folder = replay.site.base / "Unknown_Face_Captures"
    files = list(folder.iterdir())
    assert len(files) == 6  # face, frame and sidecar of the unknown visitor and of Lin-Manuel's sighting
    assert mode(folder) == 0o700
    assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
    assert mode(replay.site.base / "events.db") == 0o600


def test_no_phone_numbers_on_stderr_or_in_events(replay):
    numbers = phone_numbers(replay.site)
    everything = replay.stderr + json.dumps(replay.events)
    for number in numbers:
        assert number not in everything
        assert number.lstrip("+") not in everything


# ---------------------------------------------------------------- refusing to start


def test_missing_source_file(tmp_path, replay):
    site = make_site(tmp_path / "site", cache_from=replay.site)
    missing = tmp_path / "videos" / "no-such-clip.mp4"
    started = time.monotonic()
    result = edgeguard(site.config_path, "run", "--source", str(missing), timeout=60)
    assert result.returncode != 0
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 15
    assert db_events(site.base / "events.db") == []


def test_bad_config_key(tmp_path):
    site = Site(tmp_path / "site")
    config = site.write_config("[camera]\nread_timout = 2.0\n")
    started = time.monotonic()
    result = edgeguard(config, "run", "--source", str(CLIP), timeout=60)
    assert result.returncode == 78
    assert str(config) in result.stderr and "read_timout" in result.stderr and "[camera]" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 10
    assert not (site.base / "events.db").exists()


# ---------------------------------------------------------------- signals


def test_sigterm_mid_stream_stops_cleanly(tmp_path, replay, daemons):
    site = make_site(tmp_path / "site", cache_from=replay.site)
    daemon = daemons(site.config_path, "--source", str(CLIP), "--realtime")
    wait_for(lambda: events_json(site.config_path), 30, "first event", poll=0.2)
    assert daemon.proc.poll() is None  # realtime: the 9 s clip is still playing
    daemon.proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert daemon.wait(timeout=15) == 0, daemon.stderr
    assert time.monotonic() - sent < 10  # generous: after the current frame, the parts stop within seconds
    assert (
        "end of video file" not in daemon.stderr and "source ended" not in daemon.stderr
    )  # stopped mid-file
    assert stopped_frames(daemon.stderr) > 0
    assert "Traceback" not in daemon.stderr

    db = site.base / "events.db"
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    rows = [(r["type"], r["person_id"], r["frame"]) for r in db_events(db)]  # person_id is sealed on disk
    assert rows and rows[0][:2] == ("known_face", LIN)  # realtime drops frames when busy: any frame will do
    assert all(frame < CLIP_FRAMES for _, _, frame in rows)
    assert events_json(site.config_path)[0]["id"] == LIN


# ---------------------------------------------------------------- a live camera that stalls


def test_stream_that_stalls_and_comes_back(tmp_path, replay, daemons):
    frames = jpeg_frames(CLIP, 120, size=(640, 360))  # the stage shot and the start of the close-up, looped
    site = make_site(
        tmp_path / "site", "[camera]\nread_timeout = 1.0\nopen_timeout = 1.0\n", cache_from=replay.site
    )
    db = site.base / "events.db"
    with MjpegServer(frames, fps=30) as server:
        daemon = daemons(site.config_path, "--source", server.url)
        wait_for(lambda: db_events(db), 20, "first event from the stream", poll=0.1)
        server.pause()
        paused = time.time()
        daemon.wait_for_line("no frame for 1 s", 20)  # past read_timeout: the stall was noticed
        # a third connection while paused: the daemon reopened, that failed while nothing came, and it retried
        wait_for(lambda: server.requests >= 3, 30, lambda: f"a second reopening:\n{daemon.stderr}", poll=0.1)
        assert daemon.proc.poll() is None, daemon.stderr
        before = db_events(db)
        assert all(e["time"] < paused + 0.5 for e in before)  # nothing was processed during the stall
        server.resume()
        resumed = time.time()
        after = wait_for(
            lambda: [e for e in db_events(db) if e["time"] > resumed],
            20,
            "an event after the resume",
            poll=0.1,
        )
        assert after[0]["type"] in ("known_face", "unknown_face", "no_mask")
        assert after[0]["frame"] > max(e["frame"] for e in before)  # live numbering goes on
        assert after[0]["pos_ms"] is None
        assert server.requests >= 2  # it reconnected
        assert daemon.proc.poll() is None
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0, daemon.stderr
    assert any(e["type"] == "known_face" and e["person_id"] == LIN for e in db_events(db))
    stalls = [line for line in daemon.stderr.splitlines() if "no frame for 1 s" in line]
    assert len(stalls) == 1, daemon.stderr  # logged once, not on every retry
    assert stalls[0].split()[2] == "WARNING"  # "date time LEVEL name: message"
    assert "Traceback" not in daemon.stderr


# ---------------------------------------------------------------- damaged files


def test_corrupt_frames_are_skipped_to_the_end(tmp_path, replay):
    data = bytearray(CLIP.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20_000] = (
        np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    )
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    site = make_site(tmp_path / "site", cache_from=replay.site)
    result = edgeguard(site.config_path, "run", "--source", str(damaged), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "source ended" in result.stderr and "Traceback" not in result.stderr
    assert "skipped unreadable" in result.stderr
    assert 100 < stopped_frames(result.stderr) < CLIP_FRAMES
    events = events_json(site.config_path)
    assert events and events[0]["type"] == "known_face" and events[0]["id"] == LIN
    assert all(e["frame"] < CLIP_FRAMES for e in events)


# ---------------------------------------------------------------- captures that cannot be written


def check_run_without_captures(code: int, stderr: str, config: Path) -> None:
    assert code == 0, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if LEVEL.match(line).group(1) in ("ERROR", "CRITICAL")]
    assert len(errors) == 1, stderr
    assert "capture" in errors[0]
    events = events_json(config)
    unknown = [e for e in events if e["type"] == "unknown_face"]
    assert len(unknown) == 1, events
    assert unknown[0]["capture"] is None
    assert unknown[0]["extra"]["capture_error"].startswith("capture not saved")
    assert any(e["type"] == "known_face" and e["id"] == LIN for e in events)


def test_captures_folder_that_cannot_be_created(tmp_path, replay):
    """Works for root too: the captures folder's parent is a regular file."""
    site = make_site(tmp_path / "site", 'captures = "card/captures"\n', cache_from=replay.site)  # in [paths]
    assert site.config().paths.captures == site.base / "card" / "captures"
    (site.base / "card").write_text("a file where the card's folder should be")
    result = edgeguard(site.config_path, "run", "--source", str(CLIP), timeout=120)
    check_run_without_captures(result.returncode, result.stderr, site.config_path)


def test_captures_folder_lost_while_running(tmp_path, replay, daemons):
    """The captures folder goes away under the running daemon (a card unmounted): works for root too."""
    site = make_site(tmp_path / "site", cache_from=replay.site)
    folder = site.base / "Unknown_Face_Captures"
    daemon = daemons(site.config_path, "--source", str(CLIP))
    daemon.wait_for_line("running:", 30)  # the folder was made at start; the unknown face comes ~2 s later
    shutil.rmtree(folder)
    folder.symlink_to(site.base / "unmounted" / "captures")
    code = daemon.wait(timeout=90)
    check_run_without_captures(code, daemon.stderr, site.config_path)
    assert not (site.base / "unmounted").exists()


# ---------------------------------------------------------------- enrolling a reviewed capture


@dataclass
class Enrolment:
    site: Site
    result: subprocess.CompletedProcess
    tmpdir: Path
    second: Run


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, replay) -> Enrolment:
    base = tmp_path_factory.mktemp("enrol") / "site"
    shutil.copytree(replay.site.base, base)
    site = Site.__new__(Site)
    site.base, site.training, site.details = base, base / "TrainingImage", base / "Details" / "Details.csv"
    site.config_path = base / "edgeguard.toml"
    site.write_config()
    (base / "events.db").unlink()
    [face] = [
        f for f in (base / "Unknown_Face_Captures").glob("*-face.jpg") if "person" not in capture_sidecar(f)
    ]
    tmpdir = base.parent / "tmp"
    tmpdir.mkdir()
    env = clean_env(TMPDIR=str(tmpdir))
    result = edgeguard(
        site.config_path, "enroll", "9", "--name", "Visitor", "--from-capture", str(face), env=env
    )
    started = time.monotonic()
    second = edgeguard(site.config_path, "run", "--source", str(CLIP), timeout=120)
    run = Run(
        site, second.returncode, second.stderr, time.monotonic() - started, events_json(site.config_path)
    )
    return Enrolment(site, result, tmpdir, run)


def test_enrol_from_capture_adds_the_person(enrolled):
    assert enrolled.result.returncode == 0, enrolled.result.stdout + enrolled.result.stderr
    assert "Id 9: 1 of 1 photo(s) added" in enrolled.result.stdout
    with enrolled.site.details.open(encoding="utf-8", newline="") as fh:
        rows = {row["Id"]: row for row in csv.DictReader(fh)}
    assert rows["9"]["Name"] == "Visitor"
    assert set(rows) == {"1", "2", "3", "4", "9"}  # the others are kept
    photos = list((enrolled.site.training / "9").iterdir())
    assert len(photos) == 1 and cv2.imread(str(photos[0])) is not None
    assert mode(photos[0]) == 0o600 and mode(enrolled.site.training / "9") == 0o700


def test_second_replay_names_the_enrolled_visitor(enrolled):
    run = enrolled.second
    assert run.code == 0, run.stderr
    assert not [e for e in run.events if e["type"] == "unknown_face"], run.events
    visitor = [e for e in run.events if e["type"] == "known_face" and e["id"] == "9"]
    assert len(visitor) == 1 and visitor[0]["name"] == "Visitor"
    assert 211 <= visitor[0]["frame"] < 240
    assert [e["frame"] for e in run.events if e["id"] == LIN][0] < 20  # Lin-Manuel as before


def test_enrol_from_capture_leaves_no_copy_of_the_face_behind(enrolled):
    """capture_to_photo cuts the face out into a temporary file: biometric data that must not stay in /tmp."""
    assert enrolled.result.returncode == 0
    left = [str(p) for p in enrolled.tmpdir.rglob("*")]
    assert left == []
