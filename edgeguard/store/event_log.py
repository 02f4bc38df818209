"""The embedded event log (SQLite, WAL mode): every event is written here before anything else acts on it.

With a data key (`[privacy] encrypt`) the personal fields (`PERSONAL`: who, their category, the capture and
the extra details) are stored sealed for their column (edgeguard.common.sealing), as BLOBs; rows written
plain before (or not yet migrated by `edgeguard privacy migrate`) read as they are.  Searches that filter
on a personal field filter after opening it, inside SQLite (the `opened` function registered on each
connection), not on a keyed hash: the name filter is a substring match, which no hash can answer, none of
these columns was indexed before (so the scan is the same), and paging and counting stay in SQL.  A field
that does not open is shown empty and logged (at most once a minute), and the rest of the log reads.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from ..common.ratelimit import EveryMinute
from ..common.sealing import Sealer, SealError, open_text, seal_text
from ..events.event import Event, EventType
from .face_captures import capture_id
from .sqlite import PrivateDB, connect_readonly

# Events kept in memory at most while the disk is full (a few hundred bytes each).
MEMORY_EVENTS = 10_000
log = logging.getLogger(__name__)
_damaged_logged = EveryMinute()
# The personal fields: sealed with the data key when encryption is on.
PERSONAL = ("person_id", "name", "category", "capture", "extra")
# A row with a personal field still plain (written before encryption, or not yet migrated).
PLAIN_ROW = " OR ".join(f"typeof({c}) = 'text'" for c in PERSONAL)
# What an erased event shows instead of the person (edgeguard forget): the event stays, so counts stay true.
ERASED = "erased person"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    time      REAL NOT NULL,
    type      TEXT NOT NULL,
    camera    TEXT NOT NULL,
    location  TEXT NOT NULL,
    latitude  REAL,
    longitude REAL,
    person_id TEXT,
    name      TEXT,
    category  TEXT,
    distance  REAL,
    capture   TEXT,
    frame     INTEGER,
    pos_ms    REAL,
    track     INTEGER,
    extra     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_type ON events(type, time);
CREATE TABLE IF NOT EXISTS output_cursors (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL
);
"""

# What a full disk carries into memory: no events (only their numbering, so that seq goes on from the file's)
# and the outputs' cursors (edgeguard.outputs.bus).
CARRY = {"events": "WHERE 0", "output_cursors": ""}


class EventLog:
    """Append-only event store; safe to use from several threads.  A damaged file is moved aside and a
    full disk keeps new events in memory until they can be written (edgeguard.store.sqlite).

    Beside the events it keeps each durable output's cursor: the seq of the last event that output handled
    (edgeguard.outputs.bus), so that what an output had not handled at a crash is handed to it again."""

    def __init__(
        self, path: Path, make_room: Callable[[], bool] | None = None, sealer: Sealer | None = None
    ) -> None:
        self.path = path
        self.sealer = sealer
        self._db = PrivateDB(
            path, SCHEMA, "event log", carry=CARRY, make_room=make_room, memory_rows=MEMORY_EVENTS
        )

    @property
    def fault(self) -> str:
        """Why events are kept in memory for now; "" while they are written to the file."""
        return self._db.fault

    def append(self, event: Event) -> Event:
        """Store an event; returns it with its sequence number."""
        row = _stored(asdict(event), self.sealer)
        row.pop("seq")
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cursor = self._db.transaction(
            lambda db: db.execute(f"INSERT INTO events ({columns}) VALUES ({marks})", tuple(row.values()))
        )
        return Event(**{**asdict(event), "seq": cursor.lastrowid})

    def query(
        self, since: float | None = None, types: list[str] | None = None, limit: int | None = None
    ) -> list[Event]:
        return self._db.read(lambda db: _select(_ready(db, self.sealer), since, types, limit, self.sealer))

    def search(self, filters: EventFilter, offset: int = 0, limit: int = 50) -> tuple[list[Event], int]:
        """A page of the events matching `filters`, newest first, and how many match in all."""
        return self._db.read(lambda db: _search(_ready(db, self.sealer), filters, offset, limit, self.sealer))

    def get(self, seq: int) -> Event | None:
        found = self.search(EventFilter(seq=seq), 0, 1)[0]
        return found[0] if found else None

    def after(self, seq: int, limit: int) -> list[Event]:
        """At most `limit` events logged after `seq`, in the order they were logged."""
        return self._db.read(lambda db: _after(_ready(db, self.sealer), seq, limit, self.sealer))

    def last_seq(self) -> int:
        """The seq of the newest event; 0 for an empty log."""
        return self._db.read(lambda db: db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def cursor(self, output: str) -> int | None:
        """The seq of the last event `output` handled; None if it never ran against this log."""
        row = self._db.read(
            lambda db: db.execute("SELECT seq FROM output_cursors WHERE name = ?", (output,)).fetchone()
        )
        return None if row is None else int(row[0])

    def set_cursor(self, output: str, seq: int) -> None:
        self._db.transaction(
            lambda db: db.execute(
                "INSERT INTO output_cursors (name, seq) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET seq = excluded.seq",
                (output, seq),
            )
        )

    def of_person(self, person_id: str) -> list[Event]:
        """The events about the watchlist person `person_id`, in the order they were logged."""
        return self._db.read(
            lambda db: _rows(
                _ready(db, self.sealer).execute(
                    "SELECT * FROM events WHERE opened(person_id, 'person_id') = ? AND type != ? "
                    "ORDER BY seq",
                    (person_id, EventType.ERASED),
                ),
                self.sealer,
            )
        )

    def with_capture(self, capture: str) -> list[Event]:
        """The events whose capture has the id `capture` (whatever path they stored it under)."""
        found = self._db.read(
            lambda db: _rows(
                _ready(db, self.sealer).execute(
                    "SELECT * FROM events WHERE instr(opened(capture, 'capture'), ?) > 0 ORDER BY seq",
                    (capture,),
                ),
                self.sealer,
            )
        )
        return [e for e in found if capture_id(e.capture) == capture]

    def erase(self, seqs: list[int]) -> int:
        """Strip the personal fields (who, how close, the capture, the extra details) of these events, which
        stay as an "erased person" event of their type, time and camera; how many were changed."""

        def work(db: sqlite3.Connection) -> int:
            # the old fields' bytes overwritten, not left in the file's free space
            db.execute("PRAGMA secure_delete = ON")
            cursor = db.executemany(
                "UPDATE events SET person_id = NULL, name = ?, category = NULL, distance = NULL, "
                "capture = NULL, extra = ? WHERE seq = ? AND type != 'erased'",
                [
                    (
                        seal_text(self.sealer, ERASED, _role("name")),
                        seal_text(self.sealer, json.dumps({"erased": True}), _role("extra")),
                        seq,
                    )
                    for seq in seqs
                ],
            )
            return cursor.rowcount

        return self._db.transaction(work) if seqs else 0

    def prune(self, before: float) -> int:
        """Delete the events logged before `before` (`[events] retention_days`), their bytes overwritten
        (`secure_delete`); how many.  The numbering goes on (seq is never reused)."""

        def work(db: sqlite3.Connection) -> int:
            db.execute("PRAGMA secure_delete = ON")
            return db.execute("DELETE FROM events WHERE time < ?", (before,)).rowcount

        return self._db.transaction(work)

    def seal_plain(self, batch: int = 200) -> int:
        """Seal the personal fields of up to `batch` rows still plain (`edgeguard privacy migrate`), in one
        transaction; how many rows were sealed (0: none left)."""
        if self.sealer is None:
            raise SealError("no data key: [privacy] encrypt is off")
        sealer = self.sealer

        def work(db: sqlite3.Connection) -> int:
            columns = ", ".join(PERSONAL)
            rows = db.execute(f"SELECT seq, {columns} FROM events WHERE {PLAIN_ROW} LIMIT ?", (batch,))
            sealed = [(*_sealed_fields(row[1:], sealer), row[0]) for row in rows.fetchall()]
            sets = ", ".join(f"{c} = ?" for c in PERSONAL)
            db.executemany(f"UPDATE events SET {sets} WHERE seq = ?", sealed)
            return len(sealed)

        return self._db.transaction(work)

    def recover(self) -> bool:
        """Write events kept in memory to the file if it takes writes again."""
        return self._db.recover()

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class EventFilter:
    """What the detection log asks for; None or empty: any."""

    types: tuple[str, ...] = ()
    person: str | None = None  # an Id, or part of a Name
    category: str | None = None
    camera: str | None = None
    location: str | None = None
    since: float | None = None
    until: float | None = None
    seq: int | None = None
    capture: str | None = None  # the events showing this capture (its face image's path, as recorded)


def _where(f: EventFilter) -> tuple[str, list]:
    """The SQL condition of a filter and its arguments."""
    where, args = ["1=1"], []
    for column, value in (
        ("opened(category, 'category')", f.category),
        ("camera", f.camera),
        ("location", f.location),
        ("seq", f.seq),
        ("opened(capture, 'capture')", f.capture),
    ):
        if value not in (None, ""):
            where.append(f"{column} = ?")
            args.append(value)
    if f.types:
        where.append(f"type IN ({', '.join('?' for _ in f.types)})")
        args += list(f.types)
    if f.person:
        where.append("(opened(person_id, 'person_id') = ? OR opened(name, 'name') LIKE ? ESCAPE '\\')")
        args += [f.person, "%" + f.person.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"]
    if f.since is not None:
        where.append("time >= ?")
        args.append(f.since)
    if f.until is not None:
        where.append("time < ?")
        args.append(f.until)
    return " AND ".join(where), args


def _search(
    db: sqlite3.Connection, f: EventFilter, offset: int, limit: int, sealer: Sealer | None
) -> tuple[list[Event], int]:
    clause, args = _where(f)
    total = db.execute(f"SELECT COUNT(*) FROM events WHERE {clause}", args).fetchone()[0]
    cursor = db.execute(
        f"SELECT * FROM events WHERE {clause} ORDER BY seq DESC LIMIT ? OFFSET ?", [*args, limit, offset]
    )
    return _rows(cursor, sealer), int(total)


def _select(
    db: sqlite3.Connection,
    since: float | None,
    types: list[str] | None,
    limit: int | None,
    sealer: Sealer | None,
) -> list[Event]:
    """Events in the order they happened (for `edgeguard events`)."""
    clause, args = _where(EventFilter(types=tuple(types or ()), since=since))
    return _rows(
        db.execute(f"SELECT * FROM events WHERE {clause} ORDER BY seq LIMIT ?", [*args, limit or -1]), sealer
    )


def read_events(
    path: Path,
    since: float | None = None,
    types: list[str] | None = None,
    limit: int | None = None,
    sealer: Sealer | None = None,
) -> list[Event]:
    """Events from the log file without changing it (beside a running daemon); DamagedDatabase if it is
    not one."""
    db = connect_readonly(path)
    try:
        return _select(_ready(db, sealer), since, types, limit, sealer)
    finally:
        db.close()


def output_positions(path: Path) -> tuple[int, dict[str, int]]:
    """The newest event's seq and each durable output's cursor, read without changing the file (for
    `edgeguard check`); DamagedDatabase if it is not a sound database."""
    db = connect_readonly(path)
    try:
        last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        try:
            cursors = dict(db.execute("SELECT name, seq FROM output_cursors ORDER BY name").fetchall())
        except sqlite3.OperationalError:  # written by a version without outputs' cursors
            cursors = {}
        return int(last), cursors
    finally:
        db.close()


def event_span(path: Path) -> tuple[int, float | None]:
    """How many events the log keeps and the time of the oldest, read without changing the file (for
    `edgeguard check`)."""
    db = connect_readonly(path)
    try:
        count, oldest = db.execute("SELECT COUNT(*), MIN(time) FROM events").fetchone()
    finally:
        db.close()
    return int(count), oldest


def plain_rows_in(path: Path) -> int:
    """How many events of the log at `path` have a personal field still plain, read without changing it."""
    db = connect_readonly(path)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM events WHERE {PLAIN_ROW}").fetchone()[0])
    finally:
        db.close()


class EventReader:
    """The event log opened read-only beside a running daemon (for commands): `get`, `search` and `after`
    as in EventLog; DamagedDatabase if the file is not a sound database."""

    def __init__(self, path: Path, sealer: Sealer | None = None) -> None:
        self.path = path
        self.sealer = sealer
        self._db = _ready(connect_readonly(path), sealer)

    def get(self, seq: int) -> Event | None:
        found = self.search(EventFilter(seq=seq), 0, 1)[0]
        return found[0] if found else None

    def search(self, filters: EventFilter, offset: int = 0, limit: int = 50) -> tuple[list[Event], int]:
        return _search(self._db, filters, offset, limit, self.sealer)

    def after(self, seq: int, limit: int) -> list[Event]:
        return _after(self._db, seq, limit, self.sealer)

    def close(self) -> None:
        self._db.close()


def _after(db: sqlite3.Connection, seq: int, limit: int, sealer: Sealer | None) -> list[Event]:
    return _rows(db.execute("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)), sealer)


def _role(column: str) -> str:
    """What a personal field is sealed for: its column, so a field copied into another does not open."""
    return f"events/{column}"


def _stored(row: dict, sealer: Sealer | None) -> dict:
    """An event's row as stored: the extra details as JSON, the personal fields sealed when there is a key."""
    row["extra"] = json.dumps(row["extra"])
    for column in PERSONAL:
        row[column] = seal_text(sealer, row[column], _role(column))
    return row


def _sealed_fields(values: tuple, sealer: Sealer) -> tuple:
    """A row's personal fields (in PERSONAL's order) with those still plain sealed."""
    return tuple(
        value if isinstance(value, bytes) else seal_text(sealer, value, _role(column))
        for column, value in zip(PERSONAL, values, strict=True)
    )


def _ready(db: sqlite3.Connection, sealer: Sealer | None) -> sqlite3.Connection:
    """The connection with `opened(value, column)`, a personal field's plain text, for filters (NULL if it
    does not open; `_rows` reports it)."""

    def opened(value: str | bytes | None, column: str) -> str | None:
        try:
            return open_text(sealer, value, _role(column))
        except SealError:
            return None

    db.create_function("opened", 2, opened, deterministic=True)
    return db


def _rows(cursor: sqlite3.Cursor, sealer: Sealer | None) -> list[Event]:
    names = [d[0] for d in cursor.description]
    events = []
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        for column in PERSONAL:
            try:
                row[column] = open_text(sealer, row[column], _role(column))
            except SealError as exc:
                row[column] = None
                if _damaged_logged.due(f"{column}"):
                    log.warning("event %s: its %s cannot be read (%s); shown empty", row["seq"], column, exc)
        row["extra"] = json.loads(row["extra"] or "{}")
        events.append(Event(**row))
    return events


def parse_since(text: str, now: float | None = None) -> float:
    """`--since` values: an ISO date/time, or a span back from now like 30m, 2h, 7d."""
    now = time.time() if now is None else now
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return now - float(text[:-1]) * units[text[-1]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use an ISO time (2026-11-22T14:00) or a span (30m, 2h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()
