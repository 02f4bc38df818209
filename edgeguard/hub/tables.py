"""The hub's one schema (SQLAlchemy Core), for SQLite and PostgreSQL alike; Alembic's migrations
(`migrations/versions/`) make it, and a test checks they match.

`events` holds each event once (its `event_id` is the key, so a message delivered twice, or to two hub
processes, is one row); `devices` what the hub knows of each device: its availability and its last event.
Times are seconds since the epoch (UTC, float) beside the device's own ISO 8601 text.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("device", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("camera", Text, nullable=False),
    Column("location", Text, nullable=False),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("type", String(32), nullable=False),
    Column("time", Float, nullable=False),  # seconds since the epoch
    Column("time_iso", String(40), nullable=False),  # as the device wrote it, with its UTC offset
    Column("person_id", Text),
    Column("person_name", Text),
    Column("category", Text),
    Column("distance", Float),
    Column("match", String(16)),
    Column("count", Integer),
    Column("visitor", Integer),
    Column("capture_url", Text),
    Column("received", Float, nullable=False),  # when the hub stored it
    Index("ix_events_device_seq", "device", "seq"),
    Index("ix_events_time", "time"),
    Index("ix_events_person_time", "person_id", "time"),
    Index("ix_events_received", "received"),
)

devices = Table(
    "devices",
    metadata,
    Column("device", String(64), primary_key=True),
    Column("online", Boolean),  # None: no availability message seen yet
    Column("availability_at", Float),  # when the hub last heard online/offline
    Column("last_event_time", Float),  # the newest event's time at the device
    Column("last_received", Float),  # when the newest event reached the hub
)

# The fleet's watchlist: people edited at the hub, handed to devices as signed bundles.  `revision` grows with
# every edit (the bundle's version is the largest); a removed person stays as a row (`removed`) so the
# version still grows and devices drop them.  `groups` is the comma-separated device groups meant (empty:
# every device).
watchlist_people = Table(
    "watchlist_people",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("groups", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("removed", Boolean, nullable=False),
)

watchlist_photos = Table(
    "watchlist_photos",
    metadata,
    Column("person_id", String(64), ForeignKey("watchlist_people.person_id"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# A device's watchlist token (only its SHA-256 is kept) and the group whose people it is handed.
device_tokens = Table(
    "device_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("device", String(64), nullable=False, unique=True),
    Column("group", String(64), nullable=False),
)

# A small JPEG of an event's capture, fetched from its signed link when the event was stored.
thumbnails = Table(
    "thumbnails",
    metadata,
    Column("event_id", String(36), ForeignKey("events.event_id"), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
