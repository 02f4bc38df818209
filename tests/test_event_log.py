"""Tests for edgeguard.store.event_log: the event log (SQLite in WAL mode), `--since` parsing and the
`edgeguard events` command."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import edgeguard

from edgeguard.events.event import EVENT_TYPES, Event
from edgeguard.store.event_log import EventLog, parse_since


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def full_event(**changes) -> Event:
    values = dict(
        type="known_face",
        time=1_790_000_000.125,
        camera="Front Gate cam",
        location="Front Gate",
        latitude=51.5014,
        longitude=-0.1419,
        person_id="7",
        name="Zoë O'Brien",
        category="staff",
        distance=0.4321,
        capture="/data/caps/x-face.jpg",
        frame=123,
        pos_ms=4104.1,
        track=3,
        extra={"box": [1, 2, 3, 4], "nested": {"visitor": 2, "revisit": True}, "note": None},
    )
    values.update(changes)
    return Event(**values)


@pytest.fixture
def event_log(tmp_path: Path):
    log = EventLog(tmp_path / "state" / "events.db")
    yield log
    log.close()


# ---------------------------------------------------------------- EventLog


def test_round_trip_keeps_every_field(event_log):
    original = full_event()
    stored = event_log.append(original)
    assert stored.seq == 1
    assert stored == Event(**{**original.__dict__, "seq": 1})
    back = list(event_log.query())
    assert back == [stored]
    assert back[0].extra == {"box": [1, 2, 3, 4], "nested": {"visitor": 2, "revisit": True}, "note": None}
    assert back[0].name == "Zoë O'Brien" and back[0].latitude == 51.5014


def test_minimal_event_round_trip_and_sequence(event_log):
    first = event_log.append(Event("crowd", 10.0, "cam", "Site", extra={"count": 4}))
    second = event_log.append(Event("unknown_face", 11.0, "cam", "Site"))
    assert (first.seq, second.seq) == (1, 2)
    events = list(event_log.query())
    assert [e.type for e in events] == ["crowd", "unknown_face"]
    assert events[0].extra == {"count": 4} and events[1].extra == {}
    assert events[1].person_id is None and events[1].capture is None and events[1].frame is None


def test_to_json_renames_person_id_and_adds_iso_time():
    data = full_event().to_json()
    assert data["id"] == "7" and "person_id" not in data
    assert datetime.fromisoformat(data["time_iso"]).timestamp() == pytest.approx(1_790_000_000, abs=1)
    json.dumps(data)  # serialisable as is


def test_wal_mode_and_private_file(event_log):
    event_log.append(full_event())
    other = sqlite3.connect(event_log.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # a second reader sees it
    finally:
        other.close()
    assert mode(event_log.path) == 0o600


def test_wal_and_shm_files_are_private_too(tmp_path):
    """The -wal file holds the newest events (names, Ids) until a checkpoint: it must be 0600 like the DB."""
    log = EventLog(tmp_path / "events.db")
    try:
        log.append(full_event())
        sidecars = [tmp_path / "events.db-wal", tmp_path / "events.db-shm"]
        assert all(p.exists() for p in sidecars)
        assert {p.name: oct(mode(p)) for p in sidecars} == {p.name: oct(0o600) for p in sidecars}
    finally:
        log.close()


def test_reopen_keeps_events_and_mode(tmp_path):
    path = tmp_path / "events.db"
    log = EventLog(path)
    log.append(full_event())
    log.close()
    again = EventLog(path)
    try:
        assert [e.name for e in again.query()] == ["Zoë O'Brien"]
        assert again.append(full_event(type="crowd")).seq == 2
    finally:
        again.close()
    assert mode(path) == 0o600


def test_query_by_since_types_and_limit(event_log):
    for i, kind in enumerate(["crowd", "known_face", "unknown_face", "crowd", "known_face", "crowd"]):
        event_log.append(Event(kind, 1000.0 + i * 10, "cam", "Site", frame=i))
    assert [e.frame for e in event_log.query()] == [0, 1, 2, 3, 4, 5]
    assert [e.frame for e in event_log.query(since=1020.0)] == [2, 3, 4, 5]  # inclusive
    assert [e.frame for e in event_log.query(since=1020.5)] == [3, 4, 5]
    assert [e.frame for e in event_log.query(types=["crowd"])] == [0, 3, 5]
    assert [e.frame for e in event_log.query(types=["crowd", "unknown_face"])] == [0, 2, 3, 5]
    assert [e.frame for e in event_log.query(limit=2)] == [0, 1]
    assert [e.frame for e in event_log.query(since=1015.0, types=["crowd"], limit=1)] == [3]
    assert list(event_log.query(since=2000.0)) == []


def test_appends_from_several_threads(event_log):
    import threading

    def write(n: int) -> None:
        for i in range(25):
            event_log.append(Event("crowd", float(i), f"cam{n}", "Site"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = list(event_log.query())
    assert len(events) == 100
    assert [e.seq for e in events] == list(range(1, 101))


# ---------------------------------------------------------------- parse_since


NOW = 1_790_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - 1800),
        ("2h", NOW - 7200),
        ("7d", NOW - 7 * 86400),
        ("45s", NOW - 45),
        ("1.5h", NOW - 5400),
    ],
)
def test_parse_since_spans(text, expected):
    assert parse_since(text, now=NOW) == pytest.approx(expected)


def test_parse_since_iso_with_timezone():
    assert (
        parse_since("2026-11-22T14:00:00+02:00")
        == datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc).timestamp()
    )
    assert parse_since("2026-11-22T14:00Z") == datetime(2026, 11, 22, 14, 0, tzinfo=timezone.utc).timestamp()


def test_parse_since_iso_without_timezone_is_local_time():
    assert parse_since("2026-11-22T14:00") == time.mktime((2026, 11, 22, 14, 0, 0, 0, 0, -1))
    assert parse_since("2026-11-22") == time.mktime((2026, 11, 22, 0, 0, 0, 0, 0, -1))


@pytest.mark.parametrize("text", ["", "yesterday", "30x", "m", "-5m", "2026-13-01", "5 m", "h2"])
def test_parse_since_garbage(text):
    with pytest.raises(ValueError, match="--since"):
        parse_since(text, now=NOW)


# ---------------------------------------------------------------- `edgeguard events`


def events_cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return edgeguard(config, "events", *args, timeout=60)


def test_cli_filters_by_type_and_since(site):
    config = site.write_config()
    db = site.config().paths.events_db
    now = time.time()
    log = EventLog(db)
    log.append(Event("crowd", now - 2 * 3600, "cam", "Site", extra={"count": 9}))  # too old
    log.append(Event("known_face", now - 600, "cam", "Site", person_id="1", name="Lin-Manuel Miranda"))
    log.append(Event("crowd", now - 300, "cam", "Site", extra={"count": 4}, frame=17, pos_ms=567.0))
    log.append(Event("unknown_face", now - 60, "cam", "Site", capture="/x-face.jpg"))
    log.close()

    result = events_cli(config, "--type", "crowd", "--since", "1h", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1
    assert lines[0]["type"] == "crowd" and lines[0]["extra"] == {"count": 4} and lines[0]["frame"] == 17
    assert lines[0]["time"] == pytest.approx(now - 300)
    assert result.stderr == ""

    both = events_cli(config, "--type", "crowd", "--type", "unknown_face", "--json")
    assert [json.loads(x)["type"] for x in both.stdout.splitlines()] == ["crowd", "crowd", "unknown_face"]

    limited = events_cli(config, "--since", "1h", "--limit", "1", "--json")
    assert [json.loads(x)["id"] for x in limited.stdout.splitlines()] == ["1"]

    text = events_cli(config, "--since", "1h")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert len(lines) == 3
    assert "known_face Lin-Manuel Miranda (Id 1)" in lines[0]
    assert "crowd 4 people frame 17" in lines[1]
    assert "unknown_face" in lines[2] and lines[2].endswith("/x-face.jpg")


def test_cli_rejects_bad_since_and_type(site):
    config = site.write_config()
    bad_since = events_cli(config, "--since", "last tuesday")
    assert bad_since.returncode == 2 and "last tuesday" in bad_since.stderr
    bad_type = events_cli(config, "--type", "explosion")
    assert bad_type.returncode == 2 and "explosion" in bad_type.stderr
    assert set(EVENT_TYPES) >= {"crowd", "known_face", "unknown_face"}


def test_cli_without_event_log_yet(site):
    config = site.write_config()
    db = site.config().paths.events_db
    assert not db.exists()
    result = events_cli(config, "--json")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "no event log" in result.stderr and str(db) in result.stderr
    assert not db.exists()  # listing must not create the log


def test_cli_reads_while_a_writer_has_the_log_open(site):
    config = site.write_config()
    log = EventLog(site.config().paths.events_db)
    try:
        for i in range(3):
            log.append(Event("crowd", time.time() - i, "cam", "Site", extra={"count": i + 3}))
        result = events_cli(config, "--json")  # the writer is still open: WAL readers must see committed rows
        assert result.returncode == 0, result.stderr
        assert [json.loads(x)["extra"]["count"] for x in result.stdout.splitlines()] == [3, 4, 5]
    finally:
        log.close()


def test_cli_since_iso(site):
    config = site.write_config()
    log = EventLog(site.config().paths.events_db)
    base = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    for hours in (0, 2, 4):
        log.append(Event("crowd", (base + timedelta(hours=hours)).timestamp(), "cam", "Site", frame=hours))
    log.close()
    result = events_cli(config, "--since", "2026-03-01T13:00:00+00:00", "--json")
    assert [json.loads(x)["frame"] for x in result.stdout.splitlines()] == [2, 4]
