"""The first schema: events (one row per event_id) and devices.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("camera", sa.Text, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("latitude", sa.Float),
        sa.Column("longitude", sa.Float),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("time_iso", sa.String(40), nullable=False),
        sa.Column("person_id", sa.Text),
        sa.Column("person_name", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("distance", sa.Float),
        sa.Column("match", sa.String(16)),
        sa.Column("count", sa.Integer),
        sa.Column("visitor", sa.Integer),
        sa.Column("capture_url", sa.Text),
        sa.Column("received", sa.Float, nullable=False),
    )
    op.create_index("ix_events_device_seq", "events", ["device", "seq"])
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_person_time", "events", ["person_id", "time"])
    op.create_table(
        "devices",
        sa.Column("device", sa.String(64), primary_key=True),
        sa.Column("online", sa.Boolean),
        sa.Column("availability_at", sa.Float),
        sa.Column("last_event_time", sa.Float),
        sa.Column("last_received", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("devices")
    op.drop_table("events")
