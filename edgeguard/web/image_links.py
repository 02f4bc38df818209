"""The signed, expiring image links of alerts (edgeguard.alerts.link_signer), served by the dashboard's server.

Same rules as ever: a token that is expired, tampered with or names anything
but a plain file name is 403; a good token whose file is gone, is not a
regular file, is a symlink or is not an image is 404.  The token is the
credential: no login, and it never appears in a log line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Blueprint, Response, request

from ..alerts.link_signer import LinkError
from ..common.files import open_regular
from .request import dashboard

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
CHUNK = 64 * 1024


@bp.route("/c/<token>", methods=["GET", "HEAD"], provide_automatic_options=False)
def image(token: str) -> Response:
    board = dashboard()
    if board.signer is None:
        return _refuse(404, "image links are off (no public_url)")
    try:
        name, expires = board.signer.check(token)
    except LinkError as exc:
        return _refuse(403, str(exc))
    content_type = CONTENT_TYPES.get(Path(name).suffix.lower())
    if content_type is None:
        return _refuse(404, f"{name} is not an image")
    try:
        fh = open_regular(board.config.paths.captures / name)
    except OSError as exc:
        return _refuse(404, f"{name} cannot be opened ({exc.strerror})")
    size = os.fstat(fh.fileno()).st_size
    body = b"" if request.method == "HEAD" else _read(fh)
    fh.close()
    response = Response(body, 200, mimetype=content_type)
    response.headers["Content-Length"] = str(size)
    response.headers["Cache-Control"] = f"private, max-age={board.signer.seconds_left(expires)}"
    log.debug("image link: %s 200 %s (%d bytes)", request.method, name, size)
    return response


def _read(fh) -> bytes:
    return b"".join(iter(lambda: fh.read(CHUNK), b""))


def _refuse(code: int, reason: str) -> Response:
    log.info("image link: refused %s with %d: %s", request.method, code, reason)
    return Response(
        f"{code} {'Forbidden' if code == 403 else 'Not Found'}\n",
        code,
        mimetype="text/plain",
        headers={"Cache-Control": "no-store"},
    )
