"""The durable outbox: every alert message is stored here before any attempt to send it.

A message is `pending` until the sender delivers it (`sent`), gives up on a
permanent error (`failed`), or records it without sending because no Twilio
credentials are configured (`dry_run`).  A restart finds the pending ones and
sends them, in the order they were queued.  SQLite in WAL mode: a `kill -9`
at any moment leaves either the old or the new state of a message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..store.sqlite import connect_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created      REAL NOT NULL,
    to_number    TEXT NOT NULL,
    body         TEXT NOT NULL,
    media_url    TEXT,
    event_seq    INTEGER,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error   TEXT,
    sid          TEXT,
    finished     REAL
);
CREATE INDEX IF NOT EXISTS messages_pending ON messages(status, id);
CREATE INDEX IF NOT EXISTS messages_recipient ON messages(to_number, created);
CREATE TABLE IF NOT EXISTS held (
    to_number TEXT PRIMARY KEY,
    count     INTEGER NOT NULL,
    since     REAL NOT NULL
);
"""

@dataclass(frozen=True)
class Message:
    id: int
    created: float
    to_number: str
    body: str
    media_url: str | None
    event_seq: int | None
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None
    sid: str | None
    finished: float | None


class Outbox:
    """Thread-safe access to the outbox file; each method is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect_private(path, SCHEMA)
        self._lock = threading.Lock()
        self.changed = threading.Event()  # set when a message is added: wakes the sender

    def add(self, to_number: str, body: str, media_url: str | None, event_seq: int | None,
            now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT INTO messages (created, to_number, body, media_url, event_seq, next_attempt) "
                "VALUES (?, ?, ?, ?, ?, ?)", (now, to_number, body, media_url, event_seq, now))
        self.changed.set()
        return int(cursor.lastrowid)

    def next_pending(self) -> Message | None:
        """The oldest pending message, due or not (order is kept across retries)."""
        rows = self._select("WHERE status = 'pending' ORDER BY id LIMIT 1", ())
        return rows[0] if rows else None

    def mark_sent(self, message_id: int, sid: str, now: float) -> None:
        self._finish(message_id, "sent", sid, None, now)

    def mark_failed(self, message_id: int, error: str, now: float) -> None:
        self._finish(message_id, "failed", None, error, now)

    def mark_dry_run(self, message_id: int, now: float) -> None:
        self._finish(message_id, "dry_run", None, "no Twilio credentials: not sent", now)

    def retry_later(self, message_id: int, error: str, next_attempt: float) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE messages SET attempts = attempts + 1, last_error = ?, next_attempt = ? "
                             "WHERE id = ?", (error, next_attempt, message_id))

    def _finish(self, message_id: int, status: str, sid: str | None, error: str | None, now: float) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE messages SET status = ?, sid = ?, last_error = COALESCE(?, last_error), "
                             "attempts = attempts + 1, finished = ? WHERE id = ?",
                             (status, sid, error, now, message_id))

    def sent_since(self, to_number: str, since: float) -> int:
        """Messages queued for a recipient since a time (what the hourly cap counts)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM messages WHERE to_number = ? AND created >= ?",
                                   (to_number, since)).fetchone()
        return int(row[0])

    def hold(self, to_number: str, now: float) -> None:
        """Count a message held back by the cap, to be mentioned in the next one."""
        with self._lock, self._db:
            self._db.execute("INSERT INTO held (to_number, count, since) VALUES (?, 1, ?) "
                             "ON CONFLICT(to_number) DO UPDATE SET count = count + 1", (to_number, now))

    def take_held(self, to_number: str) -> tuple[int, float] | None:
        """How many were held back for a recipient and since when; clears the count."""
        with self._lock, self._db:
            row = self._db.execute("SELECT count, since FROM held WHERE to_number = ?", (to_number,)).fetchone()
            if row:
                self._db.execute("DELETE FROM held WHERE to_number = ?", (to_number,))
        return (int(row[0]), float(row[1])) if row else None

    def get(self, message_id: int) -> Message | None:
        rows = self._select("WHERE id = ?", (message_id,))
        return rows[0] if rows else None

    def list(self, statuses: list[str] | None = None, limit: int | None = None) -> list[Message]:
        where, args = "", ()
        if statuses:
            where = f"WHERE status IN ({', '.join('?' for _ in statuses)})"
            args = tuple(statuses)
        return self._select(f"{where} ORDER BY id" + (f" LIMIT {int(limit)}" if limit else ""), args)

    def _select(self, clause: str, args: tuple) -> list[Message]:
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM messages {clause}", args).fetchall()
        return [Message(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
