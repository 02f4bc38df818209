"""The hub database's Alembic migrations (run by `edgeguard hub` at start: hub/store.py `migrate`)."""
