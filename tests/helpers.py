"""Helpers the tests share: the `edgeguard` command as a subprocess, waiting on a condition, a free port,
the threads alive by name.  (The test data paths and `Site` are in conftest.py; `Daemon` in daemons.py.)"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edgeguard.common.sealing import Sealer, SealError, is_sealed, parse_key

T = TypeVar("T")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without what would point `edgeguard` at another config or at real Twilio
    credentials, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TWILIO_") and k not in ("CREDENTIALS_DIRECTORY", "EDGEGUARD_CONFIG")
    }
    env.update(extra)
    return env


def edgeguard(
    config: Path | None,
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """`python -m edgeguard [--config CONFIG] ARGS` to the end, output captured;
    `env` defaults to clean_env()."""
    command = [
        sys.executable,
        "-m",
        "edgeguard",
        *(["--config", str(config)] if config is not None else []),
        *args,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=clean_env() if env is None else env,
    )


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str | Callable[[], str] = "condition",
    poll: float = 0.02,
) -> T:
    """Poll `condition()` until it returns something true, and return that; fail after `timeout` seconds.

    `what` names the condition in the failure (a callable is asked only then, e.g. for a daemon's stderr).
    An AssertionError raised by `condition` (say, "the daemon exited") fails at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what() if callable(what) else what}: not within {timeout} s")
        time.sleep(poll)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def threads_named(name: str) -> list[threading.Thread]:
    """The live threads called `name`
    (the package names its threads: "watchlist-reload", "sms-sender" ...)."""
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


def db_rows(db: Path, query: str) -> list[dict]:
    """Rows read directly from a SQLite file, read-only (cheap enough to poll), the fields sealed with the
    site's data key (`data.key` beside the file) opened; [] before it exists or has its schema."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            con.row_factory = sqlite3.Row
            rows = [dict(row) for row in con.execute(query)]
        finally:
            con.close()
    except sqlite3.OperationalError:  # created, but the schema is not there yet
        return []
    return [{column: _opened(db.parent, column, value) for column, value in row.items()} for row in rows]


def _opened(folder: Path, column: str, value: object) -> object:
    """A field as the event log or the outbox reads it: opened with the site's key if it is sealed."""
    if not (isinstance(value, bytes) and is_sealed(value)):
        return value
    sealer = Sealer(parse_key((folder / "data.key").read_bytes(), "data.key"))
    for role in (f"events/{column}", f"outbox/{column}"):
        try:
            return sealer.open(value, role).decode()
        except SealError:
            continue
    raise SealError(f"{column}: does not open with {folder / 'data.key'}")
