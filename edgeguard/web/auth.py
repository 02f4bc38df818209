"""Logging in and out: the password (throttled), then, where `[web] otp` asks for it, a code by SMS."""

from __future__ import annotations

import logging
import secrets
import threading
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from ..common.text import printable
from .request import PRELOGIN_COOKIE, SESSION_COOKIE, audit, client_address, dashboard
from .security import form_token, same
from .users import User

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

CODE_EVERY = 60.0  # seconds between two codes for the same user
CODES_PER_HOUR = 5
_codes_lock = threading.Lock()


@bp.get("/login")
def login() -> Response:
    if dashboard().users.count() == 0:
        return make_response(render_template("setup.html"), 200)
    return _login_page("", 200)


@bp.post("/login")
def login_post() -> Response:
    board = dashboard()
    throttle = _throttle()
    name = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    address = client_address()
    if not same(request.form.get("csrf"), form_token(board.secret, request.cookies.get(PRELOGIN_COOKIE, ""))):
        abort(403, "the login form has expired: reload the page")
    wait = throttle.attempt(address, name)  # counted as failed from here until it succeeds
    if wait > 0:
        log.warning(
            "dashboard: login for %s from %s refused: too many failures, %d s to wait",
            printable(name),
            address,
            wait,
        )
        response = _login_page(f"Too many failed logins. Try again in {int(wait) + 1} seconds.", 429)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = board.users.check_password(name, password) if name and password else None
    if user is None:
        log.warning("dashboard: failed login for %s from %s", printable(name) or "(no name)", address)
        audit("failed login", printable(name), user=printable(name) or "(no name)")
        return _login_page("Wrong user name or password.", 401)
    throttle.succeeded(address, name)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        board.users.end_session(old)  # the id is never reused across a login
    needs_code = _needs_code(user)
    if needs_code and not _may_send_code(user):
        response = _login_page(
            "A login code was sent to your phone a moment ago. Wait a minute, then log in again.", 429
        )
        response.headers["Retry-After"] = str(int(CODE_EVERY))
        return response
    token = board.users.start_session(user, awaiting_otp=needs_code)
    if needs_code:
        session = board.users.session(token)
        assert session is not None
        _send_code(user, board.users.new_otp(session))
        response = redirect(url_for("auth.code"))
    else:
        log.info("dashboard: %s logged in from %s", user.name, address)
        audit("login", user.name, user=user.name)
        response = redirect(url_for(current_app.config["EDGEGUARD_HOME"]))
    _set_session_cookie(response, token)
    return response


@bp.route("/login/code", methods=["GET", "POST"])
def code() -> Response:
    board = dashboard()
    session = g.session
    if session is None or session.state != "otp":
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return make_response(render_template("code.html", error=""), 200)
    if not same(request.form.get("csrf"), session.csrf):
        abort(403, "the form has expired: reload the page")
    result = board.users.check_otp(session, request.form.get("code", ""))
    if result == "ok":
        log.info("dashboard: %s logged in from %s (with a code)", session.user.name, client_address())
        audit("login", session.user.name, user=session.user.name, second_factor=True)
        return redirect(url_for(current_app.config["EDGEGUARD_HOME"]))
    if result == "expired":
        log.warning(
            "dashboard: code for %s from %s expired or tried too often", session.user.name, client_address()
        )
        response = redirect(url_for("auth.login"))
        response.delete_cookie(SESSION_COOKIE)
        return response
    log.warning("dashboard: wrong code for %s from %s", session.user.name, client_address())
    audit("failed login", session.user.name, user=session.user.name, reason="wrong second-factor")
    return make_response(render_template("code.html", error="Wrong code."), 401)


@bp.post("/logout")
def logout() -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        dashboard().users.end_session(token)
    response = redirect(url_for("auth.login"))
    response.delete_cookie(SESSION_COOKIE)
    return response


@bp.get("/setup")
def setup() -> Response:
    return make_response(render_template("setup.html"), 200)


def _login_page(error: str, status: int) -> Response:
    board = dashboard()
    prelogin = request.cookies.get(PRELOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = make_response(
        render_template("login.html", error=error, login_csrf=form_token(board.secret, prelogin)), status
    )
    response.set_cookie(
        PRELOGIN_COOKIE, prelogin, httponly=True, samesite="Lax", secure=board.tls, max_age=3600
    )
    return response


def _set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=dashboard().tls, path="/"
    )


def _needs_code(user: User) -> bool:
    mode = dashboard().config.web.otp
    return bool(user.phone) and (mode == "all" or (mode == "admin" and user.admin))


def _may_send_code(user: User) -> bool:
    """At most one code per CODE_EVERY and CODES_PER_HOUR an hour to a user's phone (and counts this one)."""
    sent: dict[str, list[float]] = current_app.extensions.setdefault("edgeguard.codes", {})
    now = time.time()
    with _codes_lock:
        recent = [t for t in sent.get(user.name, []) if now - t < 3600]
        allowed = not (recent and now - recent[-1] < CODE_EVERY) and len(recent) < CODES_PER_HOUR
        sent[user.name] = recent + ([now] if allowed else [])
    return allowed


def _send_code(user: User, code: str) -> None:
    """Queue the code for the user's phone: straight into the outbox, no alert rule holds it back.

    Listings and logs show "login code sent to user X", never the code: no admin reads another's 2nd factor.
    """
    outbox = dashboard().outbox
    if outbox is not None and user.phone:
        body = f"EdgeGuard login code: {code} (valid 5 minutes). Never share it."
        outbox.add(user.phone, body, None, None, shown=f"login code sent to user {user.name}")


def _throttle():
    return current_app.extensions["edgeguard.throttle"]
