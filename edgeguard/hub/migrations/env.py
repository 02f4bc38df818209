"""Alembic's environment: the connection is handed over by hub/store.py `migrate` (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from edgeguard.hub.tables import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
