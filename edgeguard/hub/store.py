"""The hub's database through SQLAlchemy Core: SQLite (one file, WAL) by default, PostgreSQL (psycopg 3) by
`[hub] database_url`.  The one schema is `tables.py`; `migrate` brings a database to it with Alembic.

Every write is idempotent, so several hub processes may share one PostgreSQL: an event is inserted once by
its `event_id` (a second copy does nothing), a device's last event only moves forward.  The hub holds no
state outside the database.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.dialects import postgresql, sqlite

from .tables import device_tokens, devices, events, thumbnails, watchlist_people, watchlist_photos

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x45470026  # PostgreSQL advisory lock: one hub process migrates at a time
WATCHLIST_LOCK = 0x45470027  # PostgreSQL advisory lock: one watchlist edit at a time (revisions unique)


@dataclass(frozen=True)
class Gap:
    device: str
    first: int
    last: int


def open_engine(url: str) -> sa.Engine:
    """An engine for `url`; a SQLite file is made private (0600) and put in WAL mode."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if path and path != ":memory:" and not Path(path).exists():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def migrate(engine: sa.Engine) -> None:
    """Bring the database to the newest schema (Alembic); on PostgreSQL under an advisory lock, so hub
    processes starting together migrate one after the other."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def event_row(event: dict[str, Any], received: float) -> dict[str, Any]:
    """A checked event (the MQTT schema) as a row of `events`."""
    person = event["person"] or {}
    location = event["location"]
    return {
        "event_id": event["event_id"],
        "device": event["device"],
        "seq": event["seq"],
        "camera": event["camera"],
        "location": location["name"],
        "latitude": location["latitude"],
        "longitude": location["longitude"],
        "type": event["type"],
        "time": datetime.fromisoformat(event["time"]).timestamp(),
        "time_iso": event["time"],
        "person_id": person.get("id"),
        "person_name": person.get("name"),
        "category": person.get("category"),
        "distance": event["distance"],
        "match": event["match"],
        "count": event["count"],
        "visitor": event["visitor"],
        "capture_url": event["capture_url"],
        "received": received,
    }


class HubStore:
    """Reads and writes of the hub's database (thread-safe: a connection per call from the pool)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    @classmethod
    def open(cls, url: str) -> HubStore:
        engine = open_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # writes ------------------------------------------------------------------------------------------------

    def add_events(self, rows: list[dict[str, Any]], new_rows: list[dict[str, Any]] | None = None) -> int:
        """Store the events of `rows` (event_row) in one transaction; how many were new (those rows appended
        to `new_rows` when given)."""
        new = 0
        with self.engine.begin() as connection:
            for row in rows:
                statement = self._insert(events).values(row).on_conflict_do_nothing()
                if connection.execute(statement.returning(events.c.event_id)).first() is not None:
                    new += 1
                    self._saw_event(connection, row)
                    if new_rows is not None:
                        new_rows.append(row)
        return new

    def add_thumbnail(self, event_id: str, data: bytes) -> None:
        statement = self._insert(thumbnails).values(event_id=event_id, data=data).on_conflict_do_nothing()
        with self.engine.begin() as connection:
            connection.execute(statement)

    def thumbnail(self, event_id: str) -> bytes | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(thumbnails.c.data).where(thumbnails.c.event_id == event_id)
            ).scalar_one_or_none()

    def _saw_event(self, connection: sa.Connection, row: dict[str, Any]) -> None:
        statement = self._insert(devices).values(
            device=row["device"], last_event_time=row["time"], last_received=row["received"]
        )
        newer = devices.c.last_event_time.is_(None) | (
            statement.excluded.last_event_time > devices.c.last_event_time
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[devices.c.device],
                set_={
                    "last_event_time": sa.case(
                        (newer, statement.excluded.last_event_time), else_=devices.c.last_event_time
                    ),
                    "last_received": sa.case(
                        (newer, statement.excluded.last_received), else_=devices.c.last_received
                    ),
                },
            )
        )

    def set_availability(self, device: str, online: bool, when: float | None = None) -> None:
        when = time.time() if when is None else when
        statement = self._insert(devices).values(device=device, online=online, availability_at=when)
        with self.engine.begin() as connection:
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[devices.c.device], set_={"online": online, "availability_at": when}
                )
            )

    # reads -------------------------------------------------------------------------------------------------

    def devices(self) -> list[dict[str, Any]]:
        """Every device with its availability, last event, event count and lag (seconds from its newest
        event to the hub)."""
        counts = (
            sa.select(events.c.device, sa.func.count().label("events")).group_by(events.c.device).subquery()
        )
        query = (
            sa.select(devices, sa.func.coalesce(counts.c.events, 0).label("events"))
            .outerjoin(counts, counts.c.device == devices.c.device)
            .order_by(devices.c.device)
        )
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query)]
        for row in rows:
            done = row["last_event_time"] is not None and row["last_received"] is not None
            row["lag"] = max(0.0, row["last_received"] - row["last_event_time"]) if done else None
        return rows

    def events(
        self,
        device: str | None = None,
        types: tuple[str, ...] = (),
        person_id: str | None = None,
        since: float | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Events newest first, filtered by device, types, person and time; `thumbnail` whether the hub has
        one of its capture."""
        has = sa.exists().where(thumbnails.c.event_id == events.c.event_id).label("thumbnail")
        query = sa.select(events, has).order_by(events.c.time.desc(), events.c.seq.desc()).limit(limit)
        if device:
            query = query.where(events.c.device == device)
        if types:
            query = query.where(events.c.type.in_(types))
        if person_id:
            query = query.where(events.c.person_id == person_id)
        if since is not None:
            query = query.where(events.c.time >= since)
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]

    def events_received_since(self, since: float, limit: int = 500) -> list[dict[str, Any]]:
        """The events stored at or after `since` (the hub's clock), in the order they were stored."""
        has = sa.exists().where(thumbnails.c.event_id == events.c.event_id).label("thumbnail")
        query = (
            sa.select(events, has)
            .where(events.c.received >= since)
            .order_by(events.c.received, events.c.device, events.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()

    def gaps(self, device: str | None = None) -> list[Gap]:
        """The seqs missing between a device's stored events (after its first stored one)."""
        previous = sa.func.lag(events.c.seq).over(partition_by=events.c.device, order_by=events.c.seq)
        inner = sa.select(events.c.device, events.c.seq, previous.label("previous"))
        if device:
            inner = inner.where(events.c.device == device)
        ordered = inner.subquery()
        query = (
            sa.select(ordered.c.device, ordered.c.previous + 1, ordered.c.seq - 1)
            .where(ordered.c.seq > ordered.c.previous + 1)
            .order_by(ordered.c.device, ordered.c.seq)
        )
        with self.engine.connect() as connection:
            return [Gap(*row) for row in connection.execute(query)]

    def track(self, person_id: str) -> list[dict[str, Any]]:
        """Every sighting of one watchlist person, oldest first."""
        query = (
            sa.select(events)
            .where(events.c.person_id == person_id, events.c.type == "known_face")
            .order_by(events.c.time, events.c.device, events.c.seq)
        )
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]

    def last_known(self, categories: tuple[str, ...]) -> list[dict[str, Any]]:
        """The newest sighting of each person of these categories (e.g. missing, wanted), newest first."""
        newest = (
            sa.func.row_number()
            .over(partition_by=events.c.person_id, order_by=(events.c.time.desc(), events.c.seq.desc()))
            .label("newest")
        )
        ranked = (
            sa.select(events, newest)
            .where(events.c.type == "known_face", events.c.category.in_(categories))
            .subquery()
        )
        query = sa.select(ranked).where(ranked.c.newest == 1).order_by(ranked.c.time.desc())
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]

    # the fleet's watchlist ---------------------------------------------------------------------------------

    def put_person(
        self,
        person_id: str,
        name: str,
        category: str,
        groups: tuple[str, ...],
        photos: list[tuple[str, bytes]] | None = None,
    ) -> int:
        """Add or edit a person of the fleet's watchlist (`photos` None keeps theirs); the new revision."""
        row = {"name": name, "category": category, "groups": ",".join(groups), "removed": False}
        with self.engine.begin() as connection:
            revision = self._next_revision(connection)
            statement = self._insert(watchlist_people).values(person_id=person_id, revision=revision, **row)
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[watchlist_people.c.person_id], set_={**row, "revision": revision}
                )
            )
            if photos is not None:
                connection.execute(watchlist_photos.delete().where(watchlist_photos.c.person_id == person_id))
                for photo_name, data in photos:
                    connection.execute(
                        watchlist_photos.insert().values(person_id=person_id, name=photo_name, data=data)
                    )
        return revision

    def remove_person(self, person_id: str) -> bool:
        """Take a person off the fleet's watchlist (devices drop them next); False if not on it."""
        with self.engine.begin() as connection:
            revision = self._next_revision(connection)
            done = connection.execute(
                watchlist_people.update()
                .where(watchlist_people.c.person_id == person_id, watchlist_people.c.removed.is_(False))
                .values(removed=True, revision=revision)
            ).rowcount
            connection.execute(watchlist_photos.delete().where(watchlist_photos.c.person_id == person_id))
        return bool(done)

    def _next_revision(self, connection: sa.Connection) -> int:
        if self.engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WATCHLIST_LOCK})
        newest = connection.execute(sa.select(sa.func.max(watchlist_people.c.revision))).scalar_one()
        return (newest or 0) + 1

    def watchlist_version(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.max(watchlist_people.c.revision))).scalar_one() or 0

    def watchlist_people(self, group: str | None = None) -> list[dict[str, Any]]:
        """The people of the fleet's watchlist (for `group`: those meant for every group or for it), each with
        `photos` as (name, bytes) pairs, by Id."""
        with self.engine.connect() as connection:
            people = [
                dict(r._mapping)
                for r in connection.execute(
                    sa.select(watchlist_people)
                    .where(watchlist_people.c.removed.is_(False))
                    .order_by(watchlist_people.c.person_id)
                )
            ]
            photos: dict[str, list[tuple[str, bytes]]] = {}
            for photo in connection.execute(sa.select(watchlist_photos).order_by(watchlist_photos.c.name)):
                photos.setdefault(photo.person_id, []).append((photo.name, photo.data))
        chosen = []
        for person in people:
            groups = [g for g in person["groups"].split(",") if g]
            if group is None or not groups or group in groups:
                chosen.append(
                    {**person, "id": person["person_id"], "photos": photos.get(person["person_id"], [])}
                )
        return chosen

    def add_device_token(self, device: str, group: str) -> str:
        """A new watchlist token for `device` in `group` (its earlier token stops working); only its digest
        is stored."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as connection:
            connection.execute(device_tokens.delete().where(device_tokens.c.device == device))
            connection.execute(
                device_tokens.insert().values(token_sha256=_digest(token), device=device, group=group)
            )
        return token

    def token_device(self, token: str) -> tuple[str, str] | None:
        """(device, group) of a watchlist token, None if it is no token of the hub's."""
        query = sa.select(device_tokens.c.device, device_tokens.c.group).where(
            device_tokens.c.token_sha256 == _digest(token)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return (row.device, row.group) if row is not None else None

    def token_devices(self) -> list[str]:
        with self.engine.connect() as connection:
            return [r.device for r in connection.execute(sa.select(device_tokens.c.device))]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
