"""The device's SQLite files (event log, outbox): private, in WAL mode, and never the reason the camera stops.

Opening.  The database, -wal and -shm files are 0600.  A file that is not a
database, or fails `PRAGMA quick_check` (power lost on an SD card mid-write),
is moved aside with a time stamp (`events.db.damaged-20261201-213000`, with its
-wal and -shm), named in one log line, and replaced by a new one; `salvage`
carries over what can still be read of it (the outbox's pending messages).

Writing.  A write that fails because the disk is full or failing first asks
for room (`make_room`: the space reserve released, old captures pruned, see
edgeguard.store.space) and tries once more.  If it still fails, the database
carries on in memory: the rows it names in `carry` (the outbox's pending and
recent messages) are copied there, the failure is logged once, and every
later write goes to memory, at most `memory_rows` rows (the oldest go first,
counted in the log).  `recover()`, called now and then by the daemon, writes
the memory rows back once the file takes writes again: rows carried over
replace their originals, new rows are appended in order.

SQLite's own errors tell the two apart: OperationalError (disk full, I/O
error, read-only, cannot open) is a storage fault; any other DatabaseError
("file is not a database", "malformed") means the file is damaged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
SIDE_FILES = ("-wal", "-shm")


class DamagedDatabase(Exception):
    """A database file that cannot be read as one; str() names the file and what is wrong."""


def connect_private(path: Path, schema: str) -> sqlite3.Connection:
    """A WAL-mode SQLite connection, with `schema` applied, whose database, -wal and -shm files are 0600.

    SQLite gives the -wal and -shm files the database file's mode, so the
    database is created 0600 before SQLite first opens it.  WAL with
    synchronous=NORMAL keeps each commit cheap on an SD card and leaves a
    consistent database if the process is killed mid-write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    path.chmod(0o600)
    db = sqlite3.connect(path, check_same_thread=False, timeout=10)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection for a command beside the daemon; DamagedDatabase if the file is not one."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=10)
    try:
        problem = _quick_check(db)
    except BaseException:
        db.close()
        raise
    if problem:
        db.close()
        raise DamagedDatabase(
            f"{path} is damaged ({problem}); the daemon moves it aside and starts a new one "
            "when it next starts"
        )
    return db


class PrivateDB:
    """One SQLite file of the daemon, with the damaged-file and full-disk handling described above."""

    def __init__(
        self,
        path: Path,
        schema: str,
        what: str,
        *,
        carry: dict[str, str] | None = None,
        salvage: Callable[[sqlite3.Connection, sqlite3.Connection], int] | None = None,
        upgrade: Callable[[sqlite3.Connection], None] | None = None,
        make_room: Callable[[], bool] | None = None,
        memory_rows: int = 10_000,
    ) -> None:
        self.path = path
        self.what = what  # "the event log", "the outbox": for log lines
        self._schema = schema
        self._carry = carry or {}
        self._salvage = salvage
        self._upgrade = upgrade or (lambda db: None)
        self._make_room = make_room or (lambda: False)
        self._memory_rows = memory_rows
        self._lock = threading.RLock()
        self._file: sqlite3.Connection | None = None
        self._memory: sqlite3.Connection | None = None
        self._carried: dict[str, int] = {}  # table -> the largest row id copied over from the file
        self.fault = ""  # why writes go to memory; "" while the file takes them
        try:
            self._file = self._open_file()
        except (sqlite3.OperationalError, OSError) as exc:
            self._to_memory(exc)

    # -- public

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one transaction, on the file if it takes writes, else in memory."""
        with self._lock:
            if self._memory is None:
                assert self._file is not None
                try:
                    return self._run(self._file, work)
                except (sqlite3.OperationalError, OSError) as exc:
                    failure: BaseException = exc
                if self._make_room():
                    try:
                        return self._run(self._file, work)
                    except (sqlite3.OperationalError, OSError) as exc:
                        failure = exc
                self._to_memory(failure)
            assert self._memory is not None
            result = self._run(self._memory, work)
            self._trim()
            return result

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            db = self._memory if self._memory is not None else self._file
            assert db is not None
            return work(db)

    def recover(self) -> bool:
        """Write the rows kept in memory back to the file, if it takes writes again; True when it did."""
        with self._lock:
            if self._memory is None:
                return False
            try:
                if self._file is None:
                    self._file = self._open_file()
                written = self._run(self._file, self._write_back)
            except (sqlite3.OperationalError, OSError) as exc:
                log.debug("%s: %s still cannot be written: %s", self.what, self.path, exc)
                return False
            self._memory.close()
            self._memory, self._carried, self.fault = None, {}, ""
            log.warning(
                "%s: writing to %s again; %d row(s) kept in memory were written to it",
                self.what,
                self.path,
                written,
            )
            return True

    def close(self) -> None:
        """Close the file; rows still in memory are written back if the file takes them, else said lost."""
        with self._lock:
            if self._memory is not None and not self.recover():
                log.error(
                    "%s: %d row(s) kept in memory are lost at exit: %s could not be written (%s)",
                    self.what,
                    self._memory_count(),
                    self.path,
                    self.fault,
                )
                self._memory.close()
            if self._file is not None:
                self._file.close()

    # -- opening

    def _open_file(self) -> sqlite3.Connection:
        db = None
        try:
            db = connect_private(self.path, self._schema)
            problem = _quick_check(db)
            if not problem:
                self._upgrade(db)
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError as exc:  # connect_private closed its connection
            problem = str(exc)
        if db is not None and not problem:
            return db
        if db is not None:
            db.close()
        aside = self._move_aside()
        fresh = connect_private(self.path, self._schema)
        saved = self._salvage_from(aside, fresh)
        kept = f"; {saved} row(s) read from it were carried over" if self._salvage else ""
        log.error(
            "%s: %s was damaged (%s): moved aside to %s and a new one started%s",
            self.what,
            self.path,
            problem,
            aside.name,
            kept,
        )
        return fresh

    def _move_aside(self) -> Path:
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(self.path, aside)
        for suffix in SIDE_FILES:
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return aside

    def _salvage_from(self, aside: Path, fresh: sqlite3.Connection) -> int:
        if self._salvage is None:
            return 0
        try:
            old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
        except sqlite3.Error:
            return 0
        try:
            with fresh:
                return self._salvage(old, fresh)
        except sqlite3.Error as exc:
            log.warning("%s: nothing could be read from the damaged %s (%s)", self.what, aside.name, exc)
            return 0
        finally:
            old.close()

    # -- memory

    def _to_memory(self, exc: BaseException) -> None:
        self.fault = f"cannot write {self.path.name}: {exc}"
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        memory.executescript(self._schema)
        carried = 0
        for table, where in self._carry.items():
            carried += self._copy_in(memory, table, where)
        self._memory = memory
        log.error(
            "%s: %s; keeping new rows in memory (at most %d, %d carried over) and writing them "
            "to the file when it takes writes again",
            self.what,
            self.fault,
            self._memory_rows,
            carried,
        )

    def _copy_in(self, memory: sqlite3.Connection, table: str, where: str) -> int:
        """Copy a table's needed rows from the file into memory, and continue its row ids after the file's."""
        if self._file is None:
            self._carried[table] = 0
            return 0
        try:
            rows = self._file.execute(f"SELECT * FROM {table} {where}").fetchall()
            top = self._file.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0]
        except sqlite3.Error:
            self._carried[table] = 0
            return 0
        with memory:
            if rows:
                marks = ", ".join("?" for _ in rows[0])
                memory.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            memory.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (top, table))
            memory.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE changes() = 0", (table, top)
            )
        self._carried[table] = max((r[0] for r in rows), default=0)
        return len(rows)

    def _write_back(self, db: sqlite3.Connection) -> int:
        assert self._memory is not None
        written = 0
        for table in self._tables():
            info = list(self._memory.execute(f"PRAGMA table_info({table})"))
            names = [column[1] for column in info]
            keyed = info[0][2].upper() == "INTEGER" and info[0][5] == 1  # its first column is the row id
            carried = self._carried.get(table, 0)
            marks = ", ".join("?" for _ in names)
            for row in self._memory.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall():
                if not keyed or 0 < row[0] <= carried:
                    # a row read from the file (replaced), or a table keyed by something else (the outbox's
                    # held counts; strangers' faces, which name their sighting)
                    db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({marks})", row)
                else:  # new while in memory: its id kept (rows that name it stay right), else a new one
                    try:
                        db.execute(f"INSERT INTO {table} VALUES ({marks})", row)
                    except sqlite3.IntegrityError:
                        db.execute(
                            f"INSERT INTO {table} ({', '.join(names[1:])}) "
                            f"VALUES ({', '.join('?' for _ in row[1:])})",
                            row[1:],
                        )
                written += 1
        return written

    def _trim(self) -> None:
        assert self._memory is not None
        for table in self._tables():
            excess = self._memory.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] - self._memory_rows
            if excess > 0:
                with self._memory:
                    self._memory.execute(
                        f"DELETE FROM {table} WHERE rowid IN "
                        f"(SELECT rowid FROM {table} ORDER BY rowid LIMIT ?)",
                        (excess,),
                    )
                log.error(
                    "%s: %d oldest row(s) of %s dropped: more than %d kept in memory "
                    "while %s cannot be written",
                    self.what,
                    excess,
                    table,
                    self._memory_rows,
                    self.path,
                )

    def _tables(self) -> list[str]:
        assert self._memory is not None
        return [
            r[0]
            for r in self._memory.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]

    def _memory_count(self) -> int:
        assert self._memory is not None
        return sum(self._memory.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in self._tables())

    @staticmethod
    def _run(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        with db:
            return work(db)


def _quick_check(db: sqlite3.Connection) -> str:
    """ "" for a sound database, else what SQLite says is wrong with it."""
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.OperationalError:  # the disk, not the data: the caller decides
        raise
    except sqlite3.DatabaseError as exc:
        return str(exc)
    result = "; ".join(str(r[0]) for r in rows[:3])
    return "" if result == "ok" else result
