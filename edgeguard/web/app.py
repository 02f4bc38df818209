"""The dashboard's Flask app: one factory, a blueprint per part, and the checks every request goes through.

Every page but the login (and the signed image links of alerts and the frames
of push cameras, which carry their own credentials) needs a logged-in session;
every change needs an admin and the session's CSRF token.  A viewer sees, an admin changes.  Pages are
Jinja templates (autoescaped), styles and scripts are files of the package
(no CDN, no inline script: the Content-Security-Policy forbids it).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from ..common.ratelimit import EveryMinute
from . import auth, image_links, pages, records, search, strangers, streams, upload
from .context import Dashboard
from .request import SESSION_COOKIE, client_address, dashboard
from .security import HEADERS, LoginThrottle, Throttle, same
from .server import WITHHELD_ENVIRON

log = logging.getLogger(__name__)

OPEN_ENDPOINTS = {
    "auth.login",
    "auth.login_post",
    "auth.code",
    "static",
    "links.image",
    "auth.setup",
    "upload.upload_frame",
    "favicon",
}
MAX_UPLOAD = 20 * 1024 * 1024


def create_app(
    dashboard: Dashboard,
    parts: tuple[Blueprint, ...] | None = None,
    home: str = "pages.overview",
    layout: str = "base.html",
    open_endpoints: frozenset[str] = frozenset(),
) -> Flask:
    """The app of `dashboard` with its `parts` (default: the device's) besides the login; `home` the endpoint
        of the first page (after a login, the brand's link), `layout` the template the login and error pages
        extend (its navigation), `open_endpoints` more endpoints outside sessions and CSRF (a machine's, which
    checks its own token).  The fleet hub builds its app here with its own pages, so the logins, roles,
        CSRF checks and headers are the same code."""
    app = Flask(
        __name__,
        static_folder=str(Path(__file__).parent / "static"),
        template_folder=str(Path(__file__).parent / "templates"),
    )
    # Flask's own signed cookie carries only the one-line notices shown after a change (flash messages).
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_UPLOAD,
        TEMPLATES_AUTO_RELOAD=False,
        SECRET_KEY=dashboard.secret,
        SESSION_COOKIE_NAME="edgeguard_notice",
        EDGEGUARD_OPEN_ENDPOINTS=OPEN_ENDPOINTS | open_endpoints,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=dashboard.tls,
    )
    app.url_map.merge_slashes = False  # a link works at exactly /c/<token>, nowhere else
    app.extensions["edgeguard"] = dashboard
    app.extensions["edgeguard.throttle"] = LoginThrottle()
    app.extensions["edgeguard.push_throttle"] = Throttle()  # wrong push tokens, per client address
    app.extensions["edgeguard.push_reported"] = EveryMinute()  # addresses whose wrong tokens were just logged

    app.config["EDGEGUARD_HOME"] = home
    if parts is None:
        parts = (image_links.bp, pages.bp, records.bp, search.bp, strangers.bp, streams.bp, upload.bp)
    for blueprint in (auth.bp, *parts):
        app.register_blueprint(blueprint)
    # Browsers ask for /favicon.ico on their own, before any page names it.
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.ico"))
    app.before_request(_load_session)
    app.after_request(_headers)
    for code in (400, 401, 403, 404, 411, 413, 429, 503):
        app.errorhandler(code)(_error)
    app.jinja_env.globals.update(
        csrf=lambda: g.session.csrf if g.get("session") else "", home=lambda: url_for(home), layout=layout
    )
    app.jinja_env.filters["when"] = _when
    return app


def _load_session():
    if request.routing_exception is not None:
        return None  # a 404 or 405 is answered as such, whoever asks
    withheld = request.environ.get(WITHHELD_ENVIRON)
    if withheld and request.endpoint != "upload.upload_frame":  # that one answers in its own words
        status, _, reason = withheld.partition(" ")
        abort(int(status), reason)
    board = dashboard()
    g.session = board.users.session(request.cookies.get(SESSION_COOKIE))
    g.user = g.session.user if g.session and g.session.state == "ok" else None
    if request.endpoint in current_app.config["EDGEGUARD_OPEN_ENDPOINTS"]:
        return None
    if request.method not in ("GET", "HEAD"):
        # the session first: a body is parsed for the token only once there is a session to compare it with
        if g.session is None or not same(
            request.headers.get("X-CSRF-Token") or request.form.get("csrf"), g.session.csrf
        ):
            log.warning(
                "dashboard: refused %s %s from %s: missing or wrong CSRF token",
                request.method,
                request.path,
                client_address(),
            )
            abort(403, "the form has expired or did not come from this dashboard: reload the page")
    if g.user is None:
        if request.accept_mimetypes.accept_html and request.method == "GET":
            return redirect(url_for("auth.login"))
        abort(403, "log in first")
    return None


def _headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if dashboard().tls:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def _error(exc):
    if getattr(exc, "response", None) is not None:  # a view's own answer (a 503 with its Retry-After)
        return exc.response
    code = getattr(exc, "code", 500)
    description = getattr(exc, "description", "") or ""
    headers = {"Retry-After": "5"} if code == 503 else {}
    machine = request.path.startswith(("/c/", "/video_feed", "/events", "/upload_frame/", "/api/"))
    if request.accept_mimetypes.accept_html and not machine:
        return render_template("error.html", code=code, message=description), code, headers
    return Response(f"{code} {description}\n", code, headers, mimetype="text/plain")


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else ""
