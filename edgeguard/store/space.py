"""Room on the disk for what matters most: events and alerts before pictures.

An SD card fills up (a log, a neighbour's files, captures beyond their limit).
The event log's folder (on the disk the event log is written to, so that
deleting the reserve frees room there) keeps a reserve file of RESERVE_BYTES;
when a write to the event log or the outbox fails, `make_room()` deletes it, so that SQLite has
room at once, and deletes the oldest captures (never the newest) until
PRUNE_TARGET bytes are free.  Only if that still does not help do the event
log and the outbox carry on in memory (edgeguard.store.sqlite).  Once the disk
has room again, `keep_reserve()` (called now and then) makes the reserve anew.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .face_captures import CaptureStore

log = logging.getLogger(__name__)

RESERVE_NAME = ".edgeguard-reserve"
RESERVE_BYTES = 4 * 1024 * 1024  # months of events and messages at a few hundred bytes each
PRUNE_TARGET = 16 * 1024 * 1024  # free space old captures are deleted for, once the disk is full
_CHUNK = 256 * 1024


class DiskSpace:
    def __init__(
        self, folder: Path, captures: CaptureStore | None, reserve_bytes: int = RESERVE_BYTES
    ) -> None:
        self.reserve = folder / RESERVE_NAME
        self.reserve_bytes = reserve_bytes
        self.captures = captures
        self.short = False  # make_room() was needed and the reserve is not back yet

    def free_bytes(self) -> int:
        try:
            return shutil.disk_usage(self.reserve.parent).free
        except OSError:
            return 0

    def keep_reserve(self) -> None:
        """Make the reserve file if it is missing and the disk has room for it and as much again."""
        if self.reserve.exists() or self.free_bytes() < 2 * self.reserve_bytes:
            return
        tmp = self.reserve.with_name(self.reserve.name + ".tmp")
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                for _ in range(self.reserve_bytes // _CHUNK):
                    fh.write(bytes(_CHUNK))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.reserve)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.debug("space reserve %s not made: %s", self.reserve, exc)
            return
        if self.short:
            log.warning(
                "disk: room again on %s; the %d MB reserve is back",
                self.reserve.parent,
                self.reserve_bytes // (1024 * 1024),
            )
            self.short = False

    def make_room(self) -> bool:
        """Free space for the event log and outbox: the reserve first, then old captures; True if any was
        freed."""
        released = False
        try:
            self.reserve.unlink()
            released = True
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.debug("space reserve %s not released: %s", self.reserve, exc)
        pruned = self.captures.prune_for_space(PRUNE_TARGET) if self.captures is not None else 0
        if (released or pruned) and not self.short:
            log.error(
                "disk full on %s: released the %d MB reserve for the event log and outbox and deleted %d "
                "old capture(s); free space there so that captures can be saved again",
                self.reserve.parent,
                self.reserve_bytes // (1024 * 1024) if released else 0,
                pruned,
            )
        self.short = self.short or released or bool(pruned)
        return released or bool(pruned)
