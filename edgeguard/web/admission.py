"""Which requests may send a body, and how large, judged from the request line and headers alone.

The server (edgeguard.web.server) asks before it reads a byte of a body, so
that nobody without a session or a push camera's token can make the daemon
hold a large body: a push frame needs the camera's token and may be as large
as the camera takes; a photo upload needs an admin's session (a photo to
search with, any session); any other form
needs a session; a login form, the one body sent without a session, is small
and shares the server's pool for untrusted bodies.  A refusal here is
answered by the app from the headers (app.py), as it would have answered
after reading the body, and the connection is closed.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_cookie

from .context import Dashboard
from .request import SESSION_COOKIE
from .server import BodyJudge, BodyLimit

FORM_BYTES = 64 * 1024  # a form without files: a record's fields, a review, a user
LOGIN_BYTES = 8 * 1024  # the login form, and the form of the code that follows it
PHOTO_UPLOAD_BYTES = 20 * 1024 * 1024  # photos uploaded to a record (admins only)
PHOTO_UPLOADS = {"records.add_record_post", "records.add_photos", "search.enrol_found"}
SEARCH_UPLOADS = {"search.search_post"}  # a photo to search the past with (any logged-in user)
BEFORE_SESSION = {"auth.login_post"}
NO_BODY = BodyLimit(0, trusted=False, status=400, reason="this request takes no body")


def body_judge(app: Flask, board: Dashboard, photo_uploads: frozenset[str] = frozenset()) -> BodyJudge:
    """The judge of bodies for `app`'s routes (its URL map) and `board`'s sessions and push cameras;
    `photo_uploads` more endpoints taking an admin's photos (the hub's)."""
    uploads = PHOTO_UPLOADS | photo_uploads
    routes = app.url_map.bind("localhost")

    def judge(method: str, path: str, headers: Mapping[str, str]) -> BodyLimit:
        try:
            endpoint, args = routes.match(path, method)
        except HTTPException:  # no such address, a wrong method, a redirect: answered without a body
            return NO_BODY
        if endpoint == "upload.upload_frame":
            feed = board.push.get(args["camera"])
            if feed is None or not feed.authorised(headers.get("AUTHORIZATION")):
                return BodyLimit(0, trusted=False, status=401, reason="missing or wrong token")
            return BodyLimit(
                feed.max_bytes, trusted=True, reason=f"a frame is at most {feed.max_bytes} bytes"
            )
        if method in ("GET", "HEAD"):
            return NO_BODY
        if endpoint in BEFORE_SESSION:
            return BodyLimit(LOGIN_BYTES, trusted=False, reason="a login form is small")
        session = board.users.session(parse_cookie(headers.get("COOKIE", "")).get(SESSION_COOKIE))
        if session is None:
            return BodyLimit(0, trusted=False, status=403, reason="log in first")
        if session.state != "ok":
            return BodyLimit(LOGIN_BYTES, trusted=True, reason="a login code is small")
        if endpoint in SEARCH_UPLOADS:
            return BodyLimit(PHOTO_UPLOAD_BYTES, trusted=True, reason="a photo of at most 20 MB")
        if endpoint in uploads:
            if not session.user.admin:
                return BodyLimit(0, trusted=True, status=403, reason="only an admin may change this")
            return BodyLimit(PHOTO_UPLOAD_BYTES, trusted=True, reason="photos of at most 20 MB at once")
        return BodyLimit(FORM_BYTES, trusted=True, reason="a form is at most 64 KB")

    return judge
