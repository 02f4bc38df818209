"""Frames from push cameras: `POST /upload_frame/<camera>` with a JPEG body (what `edgeguard push` sends).

The endpoint is outside the dashboard's sessions and CSRF (app.OPEN_ENDPOINTS):
each push camera has its own bearer token (edgeguard.sources.push), which is
the credential and never appears in a log line.  Cheap refusals come first,
from the headers, before the body is read (the server asks admission.py
first): an address with too many wrong tokens waits (429), a wrong token and
a camera that does not exist are both 401 (alike: names cannot be probed
without a token), a body announced larger than the camera takes 413; then
the camera's `PushFeed` checks, decodes and delivers it on this worker thread.
Every answer is JSON: `{"taken": true, "frame": n}` or `{"taken": false, "reason": "..."}`.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from ..common.ratelimit import EveryMinute
from ..common.text import printable
from .request import client_address, dashboard
from .security import Throttle
from .server import WITHHELD_ENVIRON

log = logging.getLogger(__name__)
bp = Blueprint("upload", __name__)


@bp.post("/upload_frame/<camera>", provide_automatic_options=False)
def upload_frame(camera: str) -> Response:
    address = client_address()
    throttle: Throttle = current_app.extensions["edgeguard.push_throttle"]
    wait = throttle.wait(address)
    if wait > 0:
        return _refuse(429, "too many wrong tokens from this address", retry_after=int(wait) + 1)
    feed = dashboard().push.get(camera)
    if feed is None or not feed.authorised(request.headers.get("Authorization")):
        return _unauthorised(camera, address, throttle)
    throttle.succeeded(address)
    size = request.content_length
    if size is None:
        return _refuse(411, "Content-Length is needed")
    if size > feed.max_bytes:
        return _refuse(413, f"frame of {size} bytes is over {feed.max_bytes // 1024} KB")
    withheld = request.environ.get(WITHHELD_ENVIRON)
    if withheld:  # the server did not read the body (e.g. a chunked one)
        status, _, reason = withheld.partition(" ")
        return _refuse(int(status), reason)
    answer = feed.offer(request.get_data(cache=False))
    if answer.taken:
        return _answer(200, {"taken": True, "frame": answer.frame})
    return _refuse(answer.status, answer.reason, answer.retry_after)


def _unauthorised(camera: str, address: str, throttle: Throttle) -> Response:
    throttle.failed(address)
    reported: EveryMinute = current_app.extensions["edgeguard.push_reported"]
    if reported.due(address):
        log.warning(
            "push camera %s: refused a frame from %s: missing or wrong token, or no such camera",
            printable(camera),
            address,
        )
    response = _refuse(401, "missing or wrong token")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _refuse(status: int, reason: str, retry_after: int = 0) -> Response:
    response = _answer(status, {"taken": False, "reason": reason})
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _answer(status: int, body: dict) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response
