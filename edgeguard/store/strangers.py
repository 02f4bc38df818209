"""The strangers remembered: stable ids, the encodings that recognise them, and every sighting
(`strangers.db`, SQLite, 0600 in the state folder).

Which stranger a face is and what a visit is are decided by the rule in
edgeguard.events.strangers; this store keeps the result across restarts.  Each
sighting keeps the encodings of the samples that voted for it; a stranger is
recognised by the KEPT_ENCODINGS newest of them (kept in memory).  The best
face of a stranger is the capture of their largest face seen.  Corrections
from the dashboard: `merge` (two ids that are one person), `split` (a sighting
that is someone else becomes a new stranger), `enrolled` (added to the
watchlist: the stranger keeps their history and names the Id).  Retention
follows the captures': `expire` deletes sightings (with their encodings) older
than `[captures] retention_days`, and strangers left without any; `forget_gone`
deletes the sightings whose capture was deleted (by retention's size limit, by
hand, or by an erasure), so a face erased from the captures leaves the
strangers too.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.match_rule import MatchThresholds
from ..config import Config
from ..events.strangers import KEPT_ENCODINGS, StrangerSighting, nearest, visit_starts
from .sqlite import PrivateDB, connect_readonly

SCHEMA = """
CREATE TABLE IF NOT EXISTS strangers (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    best_capture TEXT,
    best_size    INTEGER NOT NULL DEFAULT 0,
    person_id    TEXT
);
CREATE TABLE IF NOT EXISTS sightings (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    stranger INTEGER NOT NULL,
    time     REAL NOT NULL,
    camera   TEXT NOT NULL,
    location TEXT NOT NULL,
    capture  TEXT
);
CREATE INDEX IF NOT EXISTS sightings_stranger ON sightings(stranger, time);
CREATE TABLE IF NOT EXISTS faces (
    sighting INTEGER NOT NULL,
    encoding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_sighting ON faces(sighting);
"""


@dataclass(frozen=True)
class Stranger:
    """One stranger as the Strangers page shows them."""

    id: int
    first_seen: float
    last_seen: float
    visits: int
    sightings: int
    locations: tuple[str, ...]
    best_capture: str | None
    person_id: str | None


@dataclass(frozen=True)
class Kept:
    """What `edgeguard check` says is kept."""

    strangers: int
    encodings: int
    oldest: float | None  # the oldest sighting's time


class StrangerStore:
    """The strangers of a site; safe to use from several threads (the cameras' and the dashboard's)."""

    def __init__(self, path: Path, thresholds: MatchThresholds, visit_gap: float) -> None:
        self.thresholds = thresholds
        self.visit_gap = visit_gap
        # On a full disk new rows wait in memory; their ids continue after the file's, so that a sighting's
        # faces still name it when they are written back.
        self._db = PrivateDB(
            path, SCHEMA, "strangers", carry={"strangers": "WHERE 0", "sightings": "WHERE 0"}
        )
        self._lock = threading.Lock()
        self._faces: dict[int, np.ndarray] = {}  # stranger -> its newest encodings
        self._times: dict[int, list[float]] = {}  # stranger -> its sightings' times
        with self._lock:
            self._reload()

    # -- what the events stage asks (edgeguard.events.strangers.StrangerKeeper)

    def sighted(
        self, face: np.ndarray, when: float, camera: str, location: str, capture: str | None, size: int
    ) -> StrangerSighting:
        face = np.asarray(face, np.float32).reshape(-1, 128)
        with self._lock:
            stranger = nearest(face, self._faces, self.thresholds)
            if stranger is None:
                stranger = self._db.transaction(
                    lambda db: db.execute("INSERT INTO strangers (best_size) VALUES (0)").lastrowid
                )
            self._add(stranger, when, camera, location, capture, face, size)
            return self._sighting(stranger, when)

    def seen_again(
        self, stranger: int, when: float, camera: str, location: str, capture: str | None
    ) -> StrangerSighting:
        with self._lock:
            if stranger not in self._times:  # merged or expired meanwhile: nothing to add it to
                return StrangerSighting(stranger, [], False)
            self._add(stranger, when, camera, location, capture, np.empty((0, 128), np.float32), 0)
            return self._sighting(stranger, when)

    # -- what the dashboard and `edgeguard check` ask

    def list(self) -> list[Stranger]:
        """Every stranger, last seen first."""
        with self._lock:
            rows = self._db.read(
                lambda db: db.execute(
                    "SELECT s.id, MIN(g.time), MAX(g.time), COUNT(g.id), GROUP_CONCAT(DISTINCT g.location), "
                    "s.best_capture, s.person_id FROM strangers s JOIN sightings g ON g.stranger = s.id "
                    "GROUP BY s.id ORDER BY MAX(g.time) DESC"
                ).fetchall()
            )
            return [
                Stranger(
                    sid,
                    first,
                    last,
                    len(visit_starts(self._times.get(sid, []), self.visit_gap)),
                    count,
                    tuple(sorted((places or "").split(","))),
                    best,
                    person,
                )
                for sid, first, last, count, places, best, person in rows
            ]

    def sightings(self, stranger: int) -> list[tuple[int, float, str, str, str | None]]:
        """A stranger's sightings as (sighting id, time, camera, location, capture), oldest first."""
        return self._db.read(
            lambda db: db.execute(
                "SELECT id, time, camera, location, capture FROM sightings WHERE stranger = ? ORDER BY time",
                (stranger,),
            ).fetchall()
        )

    def merge(self, source: int, target: int) -> None:
        """`source` and `target` are one person: every sighting of `source` becomes `target`'s."""
        if source == target:
            raise ValueError("a stranger cannot be merged with themselves")
        with self._lock:
            self._known(source, target)

            def move(db: sqlite3.Connection) -> None:
                db.execute("UPDATE sightings SET stranger = ? WHERE stranger = ?", (target, source))
                db.execute(
                    "UPDATE strangers SET best_capture = COALESCE(best_capture, "
                    "(SELECT best_capture FROM strangers WHERE id = ?)) WHERE id = ?",
                    (source, target),
                )
                db.execute("DELETE FROM strangers WHERE id = ?", (source,))

            self._db.transaction(move)
            self._reload()

    def split(self, sighting: int) -> int:
        """The sighting is someone else: it becomes a new stranger (its id)."""
        with self._lock:
            row = self._db.read(
                lambda db: db.execute(
                    "SELECT stranger, capture FROM sightings WHERE id = ?", (sighting,)
                ).fetchone()
            )
            if row is None:
                raise ValueError(f"no sighting {sighting}")

            def move(db: sqlite3.Connection) -> int:
                new = db.execute("INSERT INTO strangers (best_capture) VALUES (?)", (row[1],)).lastrowid
                db.execute("UPDATE sightings SET stranger = ? WHERE id = ?", (new, sighting))
                db.execute(
                    "DELETE FROM strangers WHERE id = ? AND NOT EXISTS "
                    "(SELECT 1 FROM sightings WHERE stranger = ?)",
                    (row[0], row[0]),
                )
                return int(new)

            new = self._db.transaction(move)
            self._reload()
            return new

    def enrolled(self, stranger: int, person_id: str) -> None:
        """The stranger was added to the watchlist as `person_id`; their history stays, naming the Id."""
        with self._lock:
            self._known(stranger)
            self._db.transaction(
                lambda db: db.execute(
                    "UPDATE strangers SET person_id = ? WHERE id = ?", (person_id, stranger)
                )
            )

    def expire(self, before: float) -> int:
        """Delete the sightings (and their encodings) older than `before`, and the strangers left without
        any; how many sightings."""
        with self._lock:

            def delete(db: sqlite3.Connection) -> int:
                db.execute(
                    "DELETE FROM faces WHERE sighting IN (SELECT id FROM sightings WHERE time < ?)", (before,)
                )
                gone = db.execute("DELETE FROM sightings WHERE time < ?", (before,)).rowcount
                db.execute("DELETE FROM strangers WHERE id NOT IN (SELECT stranger FROM sightings)")
                return gone

            gone = self._db.transaction(delete)
            if gone:
                self._reload()
            return gone

    def forget_gone(self, exists: Callable[[str], bool]) -> int:
        """Delete the sightings whose capture no longer `exists` (with their encodings), and the strangers
        left without any; how many sightings."""
        with self._lock:
            rows = self._db.read(
                lambda db: db.execute(
                    "SELECT id, capture FROM sightings WHERE capture IS NOT NULL"
                ).fetchall()
            )
            gone = [(sighting,) for sighting, capture in rows if not exists(capture)]
            if not gone:
                return 0

            def delete(db: sqlite3.Connection) -> None:
                db.executemany("DELETE FROM faces WHERE sighting = ?", gone)
                db.executemany("DELETE FROM sightings WHERE id = ?", gone)
                db.execute("DELETE FROM strangers WHERE id NOT IN (SELECT stranger FROM sightings)")

            self._db.transaction(delete)
            self._reload()
            return len(gone)

    def forget_person(self, person_id: str) -> int:
        """Delete the strangers who were added to the watchlist as `person_id` (their erasure), with their
        sightings and encodings; how many sightings."""
        with self._lock:

            def delete(db: sqlite3.Connection) -> int:
                ids = [
                    (row[0],)
                    for row in db.execute("SELECT id FROM strangers WHERE person_id = ?", (person_id,))
                ]
                db.executemany(
                    "DELETE FROM faces WHERE sighting IN (SELECT id FROM sightings WHERE stranger = ?)", ids
                )
                gone = sum(db.execute("DELETE FROM sightings WHERE stranger = ?", i).rowcount for i in ids)
                db.executemany("DELETE FROM strangers WHERE id = ?", ids)
                return gone

            gone = self._db.transaction(delete)
            self._reload()
            return gone

    def refresh(self) -> None:
        """Read the strangers again from the file (another process erased some)."""
        with self._lock:
            self._reload()

    def kept(self) -> Kept:
        with self._lock:
            return self._db.read(_kept)

    def close(self) -> None:
        self._db.close()

    # -- inside

    def _add(
        self,
        stranger: int,
        when: float,
        camera: str,
        location: str,
        capture: str | None,
        face: np.ndarray,
        size: int,
    ) -> None:
        def write(db: sqlite3.Connection) -> None:
            sighting = db.execute(
                "INSERT INTO sightings (stranger, time, camera, location, capture) VALUES (?, ?, ?, ?, ?)",
                (stranger, when, camera, location, capture),
            ).lastrowid
            db.executemany(
                "INSERT INTO faces (sighting, encoding) VALUES (?, ?)",
                [(sighting, encoding.astype(np.float32).tobytes()) for encoding in face],
            )
            if capture and size:
                db.execute(
                    "UPDATE strangers SET best_capture = ?, best_size = ? WHERE id = ? AND best_size < ?",
                    (capture, size, stranger, size),
                )

        self._db.transaction(write)
        self._times.setdefault(stranger, []).append(when)
        if len(face):
            kept = self._faces.get(stranger, np.empty((0, 128), np.float32))
            self._faces[stranger] = np.concatenate([kept, face])[-KEPT_ENCODINGS:]

    def _sighting(self, stranger: int, when: float) -> StrangerSighting:
        times = self._times[stranger]
        visits = visit_starts(times, self.visit_gap)
        return StrangerSighting(stranger, visits, new_visit=visits[-1] == when and times.count(when) == 1)

    def _known(self, *strangers: int) -> None:
        for stranger in strangers:
            if stranger not in self._times:
                raise ValueError(f"no stranger {stranger}")

    def _reload(self) -> None:
        """The strangers' sighting times and newest encodings, from the file."""
        times: dict[int, list[float]] = {}
        for stranger, when in self._db.read(
            lambda db: db.execute("SELECT stranger, time FROM sightings ORDER BY time").fetchall()
        ):
            times.setdefault(stranger, []).append(when)
        faces: dict[int, list[np.ndarray]] = {}
        rows: Iterable[tuple[int, bytes]] = self._db.read(
            lambda db: db.execute(
                "SELECT g.stranger, f.encoding FROM faces f JOIN sightings g ON g.id = f.sighting "
                "ORDER BY g.time, f.rowid"
            ).fetchall()
        )
        for stranger, blob in rows:
            faces.setdefault(stranger, []).append(np.frombuffer(blob, np.float32))
        self._times = times
        self._faces = {sid: np.stack(kept[-KEPT_ENCODINGS:]) for sid, kept in faces.items()}


def _kept(db: sqlite3.Connection) -> Kept:
    strangers, encodings, oldest = db.execute(
        "SELECT (SELECT COUNT(*) FROM strangers), (SELECT COUNT(*) FROM faces), "
        "(SELECT MIN(time) FROM sightings)"
    ).fetchone()
    return Kept(strangers, encodings, oldest)


def kept_in(path: Path) -> Kept:
    """What a strangers file keeps, read without changing it (for `edgeguard check`); DamagedDatabase if
    it is not a sound database."""
    db = connect_readonly(path)
    try:
        return _kept(db)
    finally:
        db.close()


def open_strangers(config: Config) -> StrangerStore:
    """The site's stranger store, with the configuration's match rule and visit gap."""
    return StrangerStore(
        config.paths.strangers_db, config.match_thresholds, config.events.revisit_minutes * 60
    )
