"""The signed, expiring image links of alerts (edgeguard.alerts.link_signer), served by the dashboard.

Same rules as ever: a token that is expired, tampered with or names anything
but a plain file name is 403; a good token whose file is gone, is not a
regular file, is a symlink or is not a capture's face or frame image is 404
(edgeguard.store.face_captures reads it).  The token is the
credential: no login, and it never appears in a log line.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request

from ..alerts.link_signer import LinkError
from ..store.face_captures import BadCaptureId, CaptureError, CaptureFolder
from .request import dashboard

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)


@bp.route("/c/<token>", methods=["GET", "HEAD"], provide_automatic_options=False)
def image(token: str) -> Response:
    board = dashboard()
    if board.signer is None:
        return _refuse(404, "image links are off (no public_url)")
    try:
        name, expires = board.signer.check(token)
    except LinkError as exc:
        return _refuse(403, str(exc))
    try:
        data = CaptureFolder.of_config(board.config).image_named(name)
    except BadCaptureId:
        return _refuse(404, f"{name} is not a capture's image")
    except CaptureError as exc:
        return _refuse(404, f"{name} cannot be opened ({exc})")
    response = Response(b"" if request.method == "HEAD" else data, 200, mimetype="image/jpeg")
    response.headers["Content-Length"] = str(len(data))
    response.headers["Cache-Control"] = f"private, max-age={board.signer.seconds_left(expires)}"
    log.debug("image link: %s 200 %s (%d bytes)", request.method, name, len(data))
    return response


def _refuse(code: int, reason: str) -> Response:
    log.info("image link: refused %s with %d: %s", request.method, code, reason)
    return Response(
        f"{code} {'Forbidden' if code == 403 else 'Not Found'}\n",
        code,
        mimetype="text/plain",
        headers={"Cache-Control": "no-store"},
    )
