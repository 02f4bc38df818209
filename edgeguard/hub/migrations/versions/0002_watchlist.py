"""The fleet's watchlist: its people and photos, the devices' watchlist tokens.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist_people",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("removed", sa.Boolean, nullable=False),
    )
    op.create_table(
        "watchlist_photos",
        sa.Column("person_id", sa.String(64), sa.ForeignKey("watchlist_people.person_id"), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "device_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("device", sa.String(64), nullable=False, unique=True),
        sa.Column("group", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_tokens")
    op.drop_table("watchlist_photos")
    op.drop_table("watchlist_people")
