"""What the dashboard's views share about the request they serve: the dashboard, the user's role, the
client.

Every change a view makes is appended to the audit log (`audit`)."""

from __future__ import annotations

import logging
import sqlite3
from functools import wraps
from typing import Any

from flask import abort, current_app, g, request

from ..store.audit import AuditError
from .context import Dashboard

log = logging.getLogger(__name__)

SESSION_COOKIE = "edgeguard_session"
PRELOGIN_COOKIE = "edgeguard_login"


def dashboard() -> Dashboard:
    return current_app.extensions["edgeguard"]


def admin_only(view):
    """Only an admin may do this (403 for a viewer)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not g.user.admin:
            abort(403, "only an admin may change this")
        return view(*args, **kwargs)

    return wrapped


def client_address() -> str:
    return request.remote_addr or "unknown"


def audit(action: str, target: str = "", user: str | None = None, **what: Any) -> None:
    """Append what the request changed to the audit log, as the logged-in user (or `user`) from the client's
    address; a write that fails is logged (the change itself is done)."""
    board = dashboard()
    if board.audit is None:
        return
    try:
        board.audit.record(action, user or g.user.name, client_address(), target, what)
    except (sqlite3.Error, AuditError) as exc:
        log.error("audit log: cannot record %s %s: %s", action, target, exc)
