"""Thumbnails of the events' captures; events by the time they were stored (live updates).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thumbnails",
        sa.Column("event_id", sa.String(36), sa.ForeignKey("events.event_id"), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_events_received", "events", ["received"])


def downgrade() -> None:
    op.drop_index("ix_events_received", "events")
    op.drop_table("thumbnails")
