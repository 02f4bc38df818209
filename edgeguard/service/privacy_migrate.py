"""`edgeguard privacy migrate`: an existing plain site sealed in place with the data key.

What it seals: the captures (face crops, frames, sidecars), the encoding cache, the event log's personal
fields and the outbox's message bodies; watchlist photos in `TrainingImage/` stay plain files.  Every step is
one atomic change that is skipped once done (a file is replaced whole by its sealed copy; the rows are
sealed a batch per transaction), so a migration stopped at any moment, even by `kill -9`, is finished by
running it again, and nothing is read twice or lost.  At the end each database is rewritten (`VACUUM` with
`secure_delete`, the write-ahead log truncated) so that no plain copy of a field stays in its free pages.
Run it with the daemon stopped: the rewrite needs the databases to itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from ..alerts.outbox import Outbox, plain_bodies_in
from ..common.files import open_regular, read_regular, write_private
from ..common.sealing import MAGIC, Sealer, is_sealed
from ..config import Config
from ..store.event_log import EventLog, plain_rows_in
from ..store.face_captures import BadCaptureId, file_role, parse_name
from ..watchlist.cache import CACHE_FILE
from ..watchlist.cache import ROLE as CACHE_ROLE

PROGRESS_EVERY = 100  # files sealed between two progress lines


class MigrateError(ValueError):
    """The migration cannot run (encryption off); nothing was changed."""


def migrate(config: Config, say: Callable[[str], None]) -> list[str]:
    """Seal everything of the site still plain (see the module docstring); `say` hears progress lines; what
    was done, line by line."""
    sealer = config.sealer
    if sealer is None:
        raise MigrateError("[privacy] encrypt is off: turn it on (and restart nothing yet), then migrate")
    done = [_seal_captures(config.paths.captures, sealer, say)]
    done.append(_seal_cache(config.paths.encodings_cache, sealer))
    paths = config.paths
    if paths.events_db.exists():
        done.append(_seal_rows("event log", paths.events_db, EventLog(paths.events_db, sealer=sealer), say))
    if paths.outbox_db.exists():
        done.append(_seal_rows("outbox", paths.outbox_db, Outbox(paths.outbox_db, sealer=sealer), say))
    return done


def plain_left(config: Config) -> dict[str, int]:
    """What is still plain (for `edgeguard check`), read without changing anything: capture files, the
    encoding cache (1 or 0), events with a personal field plain, message bodies; DamagedDatabase or
    sqlite3.Error if a database cannot be read."""
    paths = config.paths
    cache = paths.encodings_cache / CACHE_FILE
    return {
        "capture files": sum(not _sealed_file(p) for p in _capture_files(paths.captures)),
        "encoding cache": int(cache.is_file() and not _sealed_file(cache)),
        "events": plain_rows_in(paths.events_db) if paths.events_db.exists() else 0,
        "messages": plain_bodies_in(paths.outbox_db) if paths.outbox_db.exists() else 0,
    }


def _sealed_file(path: Path) -> bool:
    with open_regular(path) as fh:
        return is_sealed(fh.read(len(MAGIC)))


def _capture_files(folder: Path) -> Iterator[Path]:
    """The capture files of `folder` (regular files with a capture's name; temporary files left out)."""
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        try:
            parse_name(path.name)
        except BadCaptureId:
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def _seal_file(path: Path, role: str, sealer: Sealer) -> bool:
    """Replace a plain file by its sealed copy in one rename; False if it was sealed already."""
    data = read_regular(path)
    if is_sealed(data):
        return False
    write_private(path, sealer.seal(data, role))
    return True


def _seal_captures(folder: Path, sealer: Sealer, say: Callable[[str], None]) -> str:
    files = list(_capture_files(folder))
    sealed = 0
    for n, path in enumerate(files, 1):
        sealed += _seal_file(path, file_role(path.name), sealer)
        if n % PROGRESS_EVERY == 0:
            say(f"captures: {n}/{len(files)} files done")
    return f"captures: {sealed} of {len(files)} files sealed in {folder} (the others were already)"


def _seal_cache(folder: Path, sealer: Sealer) -> str:
    path = folder / CACHE_FILE
    if not path.is_file():
        return f"encoding cache: none at {path}"
    return (
        f"encoding cache: {'sealed' if _seal_file(path, CACHE_ROLE, sealer) else 'already sealed'} ({path})"
    )


def _seal_rows(what: str, path: Path, store: EventLog | Outbox, say: Callable[[str], None]) -> str:
    """Seal the plain rows of a database a batch per transaction, then rewrite it without free pages."""
    sealed = 0
    try:
        while batch := store.seal_plain():
            sealed += batch
            say(f"{what}: {sealed} rows sealed")
    finally:
        store.close()
    _compact(path)
    return f"{what}: {sealed} rows sealed, {path} rewritten without the plain copies"


def _compact(path: Path) -> None:
    """Rewrite the database so that no page keeps an old, plain copy of a row."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA secure_delete = ON")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
