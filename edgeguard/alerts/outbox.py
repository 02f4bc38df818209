"""The durable outbox: every alert message is stored here before any attempt to send it.

A message is `pending` until the sender delivers it (`sent`), gives up on a
permanent error (`failed`), or records it without sending because no Twilio
credentials are configured (`dry_run`).  A restart finds the pending ones and
sends them, in the order they were queued.  SQLite in WAL mode: a `kill -9`
at any moment leaves either the old or the new state of a message.

Before each attempt the message is marked `uncertain`: from then until Twilio
answers, nobody knows whether it was accepted.  The mark is cleared by a clear
answer (accepted, or an error status); it stays after a timeout, a lost
connection or a stop in the middle, and the sender then asks Twilio before
sending again (edgeguard.alerts.sender).

A damaged file is moved aside and its pending messages carried over; a full
disk keeps the outbox in memory, pending and recent messages included, until
it can be written again (edgeguard.store.sqlite).

With a data key (`[privacy] encrypt`) a message's body (it names the person) is stored sealed
(edgeguard.common.sealing); bodies written plain before read as they are, and `edgeguard privacy migrate`
seals them.  Nothing filters on the body.  A body that does not open is shown as `UNREADABLE` and not sent.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..common.sealing import Sealer, SealError, open_text, seal_text
from ..store.sqlite import PrivateDB, connect_readonly

log = logging.getLogger(__name__)
# Columns added since the first outbox files: added to an older file when it is opened.
ADDED_COLUMNS = {"first_attempt": "REAL", "uncertain": "INTEGER NOT NULL DEFAULT 0", "shown": "TEXT"}
# What a full disk keeps in memory: the pending and last hour's messages (the hourly cap counts them).
CARRY = {
    "messages": "WHERE status = 'pending' OR created >= CAST(strftime('%s', 'now') AS REAL) - 3600",
    "held": "",
}
MEMORY_MESSAGES = 1000
SALVAGE_SCAN = 100_000  # message ids tried one by one in a damaged outbox

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
    finished     REAL,
    first_attempt REAL,
    uncertain    INTEGER NOT NULL DEFAULT 0,
    shown        TEXT
);
CREATE INDEX IF NOT EXISTS messages_pending ON messages(status, id);
CREATE INDEX IF NOT EXISTS messages_recipient ON messages(to_number, created);
CREATE TABLE IF NOT EXISTS held (
    to_number TEXT PRIMARY KEY,
    count     INTEGER NOT NULL,
    since     REAL NOT NULL
);
"""

ERASED_BODY = "(erased)"  # the text of a sent message about an erased person or capture
UNREADABLE = "(unreadable: damaged or sealed with another key)"  # a body that does not open
BODY_ROLE = "outbox/body"  # what a body is sealed for


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
    first_attempt: float | None  # when the first attempt began
    uncertain: bool  # an attempt was made whose outcome is unknown (timeout, lost connection, stop)
    shown: str | None = (
        None  # what listings and logs show instead of the body (a login code's), if not the body
    )

    @property
    def listed(self) -> str:
        """The message as listings and logs show it: never a secret such as a login code."""
        return self.shown if self.shown is not None else self.body


MESSAGE_COLUMNS = (
    "id",
    "created",
    "to_number",
    "body",
    "media_url",
    "event_seq",
    "status",
    "attempts",
    "next_attempt",
    "last_error",
    "sid",
    "finished",
    "first_attempt",
    "uncertain",
    "shown",
)


class Outbox:
    """Thread-safe access to the outbox file; each method is one transaction."""

    def __init__(
        self, path: Path, make_room: Callable[[], bool] | None = None, sealer: Sealer | None = None
    ) -> None:
        self.path = path
        self.sealer = sealer
        self._db = PrivateDB(
            path,
            SCHEMA,
            "outbox",
            carry=CARRY,
            salvage=_salvage_pending,
            upgrade=_add_columns,
            make_room=make_room,
            memory_rows=MEMORY_MESSAGES,
        )
        self.changed = threading.Event()  # set when a message is added: wakes the sender

    @property
    def fault(self) -> str:
        """Why messages are kept in memory for now; "" while they are written to the file."""
        return self._db.fault

    def add(
        self,
        to_number: str,
        body: str,
        media_url: str | None,
        event_seq: int | None,
        now: float | None = None,
        shown: str | None = None,
    ) -> int:
        """Queue a message; `shown` is what listings and logs show instead of a body that is a secret."""
        now = time.time() if now is None else now
        cursor = self._write(
            "INSERT INTO messages (created, to_number, body, media_url, event_seq, next_attempt, shown) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now, to_number, seal_text(self.sealer, body, BODY_ROLE), media_url, event_seq, now, shown),
        )
        self.changed.set()
        return int(cursor.lastrowid)

    def next_pending(self) -> Message | None:
        """The oldest pending message, due or not (order is kept across retries)."""
        rows = self._select("WHERE status = 'pending' ORDER BY id LIMIT 1", ())
        return rows[0] if rows else None

    def mark_attempt(self, message_id: int, now: float) -> None:
        """An attempt begins: its outcome is uncertain until Twilio answers."""
        self._write(
            "UPDATE messages SET uncertain = 1, first_attempt = COALESCE(first_attempt, ?) WHERE id = ?",
            (now, message_id),
        )

    def mark_sent(self, message_id: int, sid: str, now: float) -> None:
        self._finish(message_id, "sent", sid, None, now)

    def mark_failed(self, message_id: int, error: str, now: float) -> None:
        self._finish(message_id, "failed", None, error, now)

    def mark_dry_run(self, message_id: int, now: float) -> None:
        self._finish(message_id, "dry_run", None, "no Twilio credentials: not sent", now)

    def retry_later(self, message_id: int, error: str, next_attempt: float, uncertain: bool = False) -> None:
        """Try again at `next_attempt`; `uncertain` when Twilio may have accepted the message all the same."""
        self._write(
            "UPDATE messages SET attempts = attempts + 1, last_error = ?, next_attempt = ?, uncertain = ? "
            "WHERE id = ?",
            (error, next_attempt, int(uncertain), message_id),
        )

    def _finish(self, message_id: int, status: str, sid: str | None, error: str | None, now: float) -> None:
        self._write(
            "UPDATE messages SET status = ?, sid = ?, last_error = COALESCE(?, last_error), "
            "attempts = attempts + 1, finished = ?, uncertain = 0 WHERE id = ?",
            (status, sid, error, now, message_id),
        )

    def sent_since(self, to_number: str, since: float) -> int:
        """Messages queued for a recipient since a time (what the hourly cap counts)."""
        row = self._db.read(
            lambda db: db.execute(
                "SELECT COUNT(*) FROM messages WHERE to_number = ? AND created >= ?", (to_number, since)
            ).fetchone()
        )
        return int(row[0])

    def hold(self, to_number: str, now: float) -> None:
        """Count a message held back by the cap, to be mentioned in the next one."""
        self._write(
            "INSERT INTO held (to_number, count, since) VALUES (?, 1, ?) "
            "ON CONFLICT(to_number) DO UPDATE SET count = count + 1",
            (to_number, now),
        )

    def take_held(self, to_number: str) -> tuple[int, float] | None:
        """How many were held back for a recipient and since when; clears the count."""

        def take(db: sqlite3.Connection) -> tuple[int, float] | None:
            row = db.execute("SELECT count, since FROM held WHERE to_number = ?", (to_number,)).fetchone()
            if row:
                db.execute("DELETE FROM held WHERE to_number = ?", (to_number,))
            return (int(row[0]), float(row[1])) if row else None

        return self._db.transaction(take)

    def get(self, message_id: int) -> Message | None:
        rows = self._select("WHERE id = ?", (message_id,))
        return rows[0] if rows else None

    def list(self, statuses: list[str] | None = None, limit: int | None = None) -> list[Message]:
        return self._db.read(lambda db: _list(db, statuses, limit, self.sealer))

    def has_event(self, event_seq: int) -> bool:
        """Whether any message was queued for this event."""
        return self._db.read(
            lambda db: (
                db.execute("SELECT 1 FROM messages WHERE event_seq = ? LIMIT 1", (event_seq,)).fetchone()
                is not None
            )
        )

    def count(self, status: str) -> int:
        """How many messages have this status (without reading them)."""
        row = self._db.read(
            lambda db: db.execute("SELECT COUNT(*) FROM messages WHERE status = ?", (status,)).fetchone()
        )
        return int(row[0])

    def latest(self, limit: int) -> list[Message]:
        """The newest messages, newest first."""
        return self._select("ORDER BY id DESC LIMIT ?", (limit,))

    def forget_events(self, seqs: list[int]) -> tuple[int, int]:
        """Erasure of the events `seqs`: their pending messages deleted, the text and image link of those
        already sent blanked; (deleted, blanked)."""

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            # the old texts' bytes overwritten, not left in the file's free space
            db.execute("PRAGMA secure_delete = ON")
            deleted = blanked = 0
            for seq in seqs:
                deleted += db.execute(
                    "DELETE FROM messages WHERE event_seq = ? AND status = 'pending'", (seq,)
                ).rowcount
                blanked += db.execute(
                    "UPDATE messages SET body = ?, media_url = NULL WHERE event_seq = ?",
                    (seal_text(self.sealer, ERASED_BODY, BODY_ROLE), seq),
                ).rowcount
            return deleted, blanked

        return self._db.transaction(work) if seqs else (0, 0)

    def prune(self, before: float) -> int:
        """Delete the messages finished (sent, failed, dry run) before `before` (`[alerts]
        outbox_retention_days`), their bytes overwritten; pending messages stay whatever their age."""

        def work(db: sqlite3.Connection) -> int:
            db.execute("PRAGMA secure_delete = ON")
            return db.execute(
                "DELETE FROM messages WHERE status != 'pending' AND COALESCE(finished, created) < ?",
                (before,),
            ).rowcount

        return self._db.transaction(work)

    def seal_plain(self, batch: int = 200) -> int:
        """Seal up to `batch` bodies still plain (`edgeguard privacy migrate`) in one transaction; how many
        (0: none left)."""
        if self.sealer is None:
            raise SealError("no data key: [privacy] encrypt is off")
        sealer = self.sealer

        def work(db: sqlite3.Connection) -> int:
            rows = db.execute(
                "SELECT id, body FROM messages WHERE typeof(body) = 'text' LIMIT ?", (batch,)
            ).fetchall()
            db.executemany(
                "UPDATE messages SET body = ? WHERE id = ?",
                [(seal_text(sealer, body, BODY_ROLE), message_id) for message_id, body in rows],
            )
            return len(rows)

        return self._db.transaction(work)

    def recover(self) -> bool:
        """Write messages kept in memory to the file if it takes writes again."""
        return self._db.recover()

    def _write(self, sql: str, args: tuple) -> sqlite3.Cursor:
        return self._db.transaction(lambda db: db.execute(sql, args))

    def _select(self, clause: str, args: tuple) -> list[Message]:
        return self._db.read(lambda db: _messages(db, clause, args, self.sealer))

    def close(self) -> None:
        self._db.close()


def read_messages(
    path: Path, statuses: list[str] | None = None, limit: int | None = None, sealer: Sealer | None = None
) -> list[Message]:
    """Messages from the outbox file without changing it (beside a running daemon); DamagedDatabase if it
    is not one."""
    db = connect_readonly(path)
    try:
        return _list(db, statuses, limit, sealer)
    finally:
        db.close()


def plain_bodies_in(path: Path) -> int:
    """How many message bodies of the outbox at `path` are still plain, read without changing it."""
    db = connect_readonly(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM messages WHERE typeof(body) = 'text'").fetchone()[0])
    finally:
        db.close()


def finished_span(path: Path) -> tuple[int, float | None]:
    """How many finished messages (sent, failed, dry run) the outbox keeps and when the oldest finished,
    read without changing the file (for `edgeguard check`)."""
    db = connect_readonly(path)
    try:
        count, oldest = db.execute(
            "SELECT COUNT(*), MIN(COALESCE(finished, created)) FROM messages WHERE status != 'pending'"
        ).fetchone()
    finally:
        db.close()
    return int(count), oldest


def _list(
    db: sqlite3.Connection, statuses: list[str] | None, limit: int | None, sealer: Sealer | None
) -> list[Message]:
    where, args = "", ()
    if statuses:
        where = f"WHERE status IN ({', '.join('?' for _ in statuses)})"
        args = tuple(statuses)
    return _messages(db, f"{where} ORDER BY id" + (f" LIMIT {int(limit)}" if limit else ""), args, sealer)


def _messages(db: sqlite3.Connection, clause: str, args: tuple, sealer: Sealer | None) -> list[Message]:
    cursor = db.execute(f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages {clause}", args)
    body = MESSAGE_COLUMNS.index("body")
    return [
        Message(*row[:body], _body(row[body], sealer), *row[body + 1 : -2], bool(row[-2]), row[-1])
        for row in cursor.fetchall()
    ]


def _body(value: str | bytes, sealer: Sealer | None) -> str:
    """A stored body's text; UNREADABLE (logged) if it does not open."""
    try:
        return open_text(sealer, value, BODY_ROLE) or ""
    except SealError as exc:
        log.warning("an outbox message cannot be read (%s)", exc)
        return UNREADABLE


def _add_columns(db: sqlite3.Connection) -> None:
    present = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    with db:
        for name, declaration in ADDED_COLUMNS.items():
            if name not in present:
                db.execute(f"ALTER TABLE messages ADD COLUMN {name} {declaration}")


def _salvage_pending(old: sqlite3.Connection, new: sqlite3.Connection) -> int:
    """Copy the pending messages that can still be read from a damaged outbox; how many."""
    try:
        columns = [row[1] for row in old.execute("PRAGMA table_info(messages)")]
    except sqlite3.DatabaseError:
        return 0
    wanted = [c for c in MESSAGE_COLUMNS if c in columns]
    select = f"SELECT {', '.join(wanted)} FROM messages WHERE status = 'pending'"
    try:
        rows = old.execute(f"{select} ORDER BY id").fetchall()
    except sqlite3.DatabaseError:  # the table is damaged: read what can be read, row by row
        rows = []
        for message_id in range(1, SALVAGE_SCAN + 1):
            try:
                rows += old.execute(f"{select} AND id = ?", (message_id,)).fetchall()
            except sqlite3.DatabaseError:
                continue
    new.executemany(
        f"INSERT INTO messages ({', '.join(wanted)}) VALUES ({', '.join('?' for _ in wanted)})", rows
    )
    return len(rows)
