"""Opening the device's SQLite files (event log, outbox) privately and in WAL mode."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


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
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db
