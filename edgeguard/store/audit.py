"""The audit log: who changed what, from the dashboard or the command line, in a table kept append-only.

Each row has its time, the user (a dashboard user, or the system user of a command), the address (the
client's, or "cli"), the action (ACTIONS), its target (an Id, a photo's name, a user name) and what changed
(a small JSON object).  Passwords, one-time codes and phone numbers never go in: keys that name them are
refused and a phone number in a value is masked.

Append-only: SQLite triggers refuse every UPDATE and DELETE of a row, and each row carries the SHA-256 of
its own fields and of the row before it (`prev`), so a row changed or removed behind the application's back
(with the sqlite3 tool, on a copied card) breaks the chain, which `verify` (`edgeguard audit --verify`)
finds and names.  Rows are written in an immediate transaction, so a command and the daemon that write at the
same time still chain in order.

Retention (`[privacy] audit_retention_days`, `prune`): the oldest rows are deleted after an anchor row
(`audit_anchor`, append-only too) records the seq and hash of the last row removed, in one transaction; the
delete trigger lets through only rows at or below the newest anchor.  `verify` starts the chain from the
anchor's hash, so the rows kept stay verifiable and a row removed otherwise is still found.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.phone import mask_number
from .sqlite import connect_private, connect_readonly

log = logging.getLogger(__name__)

ACTIONS = (
    "record added",
    "record edited",
    "record deleted",
    "photo added",
    "photo removed",
    "capture enrolled",
    "user added",
    "user removed",
    "password changed",
    "login",
    "failed login",
    "erasure",
    "data sealed",
    "config reload",
)
GENESIS = "0" * 64  # the `prev` of the first row
# Keys that would carry a secret or a phone number: never written.
SECRET_KEYS = re.compile(r"pass|code|otp|phone|secret|token|key", re.IGNORECASE)
PHONE = re.compile(r"\+\d[\d ()-]{5,}\d")  # the numbers the device keeps are in international form

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    time    REAL NOT NULL,
    user    TEXT NOT NULL,
    address TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    what    TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_anchor (
    upto    INTEGER PRIMARY KEY,
    time    REAL NOT NULL,
    removed REAL NOT NULL,
    hash    TEXT NOT NULL
);
DROP TRIGGER IF EXISTS audit_no_delete;
CREATE TRIGGER IF NOT EXISTS audit_only_pruned BEFORE DELETE ON audit
WHEN OLD.seq > (SELECT COALESCE(MAX(upto), 0) FROM audit_anchor)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_anchor_no_update BEFORE UPDATE ON audit_anchor
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_anchor_no_delete BEFORE DELETE ON audit_anchor
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class AuditError(ValueError):
    """An entry that cannot be written as asked (an unknown action, a secret in what changed)."""


@dataclass(frozen=True)
class AuditRow:
    seq: int
    time: float
    user: str
    address: str
    action: str
    target: str
    what: dict[str, Any]
    prev: str
    hash: str

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        what = ", ".join(f"{k}={v}" for k, v in self.what.items())
        return f"{self.seq} {when} {self.user}@{self.address} {self.action} {self.target}" + (
            f" ({what})" if what else ""
        )


def row_hash(prev: str, when: float, user: str, address: str, action: str, target: str, what: str) -> str:
    """The SHA-256 that chains a row to the one before it (`prev`)."""
    fields = json.dumps([prev, repr(when), user, address, action, target, what], ensure_ascii=False)
    return hashlib.sha256(fields.encode()).hexdigest()


def clean(what: Mapping[str, Any]) -> dict[str, Any]:
    """What changed, fit for the audit log: AuditError for a key naming a secret, phone numbers masked."""
    out: dict[str, Any] = {}
    for key, value in what.items():
        if SECRET_KEYS.search(key):
            raise AuditError(f"the audit log never keeps {key!r}")
        out[key] = _masked(value)
    return out


def _masked(value: Any) -> Any:
    """Phone numbers in a value (a text, or the texts of a list) masked."""
    if isinstance(value, str):
        return PHONE.sub(lambda m: mask_number(m.group(0)), value)
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


class AuditLog:
    """The audit table in its own SQLite file (0600, WAL); safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self._connect()
        except (OSError, sqlite3.Error) as exc:  # a full disk at start: the daemon runs, and says so
            log.error("audit log: cannot open %s (%s); changes are recorded once it opens", path, exc)

    def _connect(self) -> sqlite3.Connection:
        """The connection, opened now if it could not be before (sqlite3.Error/OSError if it still cannot)."""
        if self._db is None:
            self._db = connect_private(self.path, SCHEMA)
        return self._db

    def record(
        self, action: str, user: str, address: str, target: str = "", what: Mapping[str, Any] | None = None
    ) -> AuditRow:
        """Append one entry, chained to the last; the row as written."""
        if action not in ACTIONS:
            raise AuditError(f"unknown audit action {action!r}")
        text = json.dumps(clean(what or {}), ensure_ascii=False, sort_keys=True, default=str)
        when = time.time()
        with self._lock, self._immediate() as db:
            last = db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            prev = last[0] if last else GENESIS
            digest = row_hash(prev, when, user, address, action, target, text)
            cursor = db.execute(
                "INSERT INTO audit (time, user, address, action, target, what, prev, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (when, user, address, action, target, text, prev, digest),
            )
        return AuditRow(
            cursor.lastrowid or 0, when, user, address, action, target, json.loads(text), prev, digest
        )

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def prune(self, before: float) -> int:
        """Delete the rows written before `before`, after an anchor with the last one's seq and hash (see the
        module docstring); how many."""
        with self._lock, self._immediate() as db:
            last = db.execute(
                "SELECT seq, time, hash FROM audit WHERE time < ? ORDER BY seq DESC LIMIT 1", (before,)
            ).fetchone()
            if last is None:
                return 0
            db.execute(
                "INSERT INTO audit_anchor (upto, time, removed, hash) VALUES (?, ?, ?, ?)",
                (last[0], time.time(), last[1], last[2]),
            )
            db.execute("PRAGMA secure_delete = ON")
            return db.execute("DELETE FROM audit WHERE seq <= ?", (last[0],)).rowcount

    def rows(self, limit: int = 100, offset: int = 0) -> list[AuditRow]:
        """The newest entries first."""
        with self._lock:
            return _rows(
                self._connect().execute(
                    "SELECT * FROM audit ORDER BY seq DESC LIMIT ? OFFSET ?", (limit, offset)
                )
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def audit(path: Path, action: str, user: str, address: str, target: str = "", **what: Any) -> None:
    """Append one entry to the audit log at `path` (for commands: opened and closed around it)."""
    log = AuditLog(path)
    try:
        log.record(action, user, address, target, what)
    finally:
        log.close()


def command_user() -> str:
    """Who runs a command: the system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def read_rows(path: Path, limit: int = -1) -> list[AuditRow]:
    """Entries in the order they were written (oldest first), read without changing the file."""
    db = connect_readonly(path)
    try:
        rows = _rows(db.execute("SELECT * FROM audit ORDER BY seq DESC LIMIT ?", (limit,)))
    finally:
        db.close()
    return rows[::-1]


def verify(path: Path) -> tuple[int, list[str]]:
    """How many rows the audit log at `path` has and what is wrong with its chain (empty: intact): a row whose
    hash does not match its fields (changed), or whose `prev` is not the hash before it (a row removed)."""
    db = connect_readonly(path)
    try:
        found = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        anchor = _anchor(db)
    finally:
        db.close()
    problems, prev, last_seq = [], GENESIS, 0
    if anchor is not None:  # rows up to it removed by retention: the chain goes on from the last one's hash
        last_seq, prev = anchor
    for seq, when, user, address, action, target, what, row_prev, digest in found:
        if seq != last_seq + 1 and not problems:
            problems.append(f"row {seq}: the row(s) before it ({last_seq + 1}-{seq - 1}) are missing")
        if row_prev != prev:
            problems.append(f"row {seq}: does not follow the row before it (a row was removed or replaced)")
        if row_hash(row_prev, when, user, address, action, target, what) != digest:
            problems.append(f"row {seq}: its fields were changed after it was written ({action} {target})")
        prev, last_seq = digest, seq
    return len(found), problems


def _anchor(db: sqlite3.Connection) -> tuple[int, str] | None:
    """The newest anchor (the seq and hash of the last row removed by retention); None if none was."""
    try:
        row = db.execute("SELECT upto, hash FROM audit_anchor ORDER BY upto DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # written by a version without retention
        return None
    return None if row is None else (int(row[0]), str(row[1]))


def span(path: Path) -> tuple[int, float | None]:
    """How many rows the audit log keeps and the time of the oldest (for `edgeguard check`)."""
    db = connect_readonly(path)
    try:
        count, oldest = db.execute("SELECT COUNT(*), MIN(time) FROM audit").fetchone()
    finally:
        db.close()
    return int(count), oldest


def _rows(cursor: sqlite3.Cursor) -> list[AuditRow]:
    return [
        AuditRow(seq, when, user, address, action, target, json.loads(what or "{}"), prev, digest)
        for seq, when, user, address, action, target, what, prev, digest in cursor.fetchall()
    ]
