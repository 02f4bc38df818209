"""What the dashboard's views share about the request they serve: the dashboard, the user's role, the
client."""

from __future__ import annotations

from functools import wraps

from flask import abort, current_app, g, request

from .context import Dashboard

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
