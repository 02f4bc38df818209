"""Frames from push cameras: `POST /upload_frame/<camera>` with a JPEG body (what `edgeguard push` sends).

The endpoint is outside the dashboard's sessions and CSRF (app.OPEN_ENDPOINTS):
each push camera has its own bearer token (edgeguard.sources.push), which is
the credential and never appears in a log line.  Cheap refusals come first:
an address with too many wrong tokens waits (429), an unknown camera is 404, a
wrong token 401, a body announced larger than the camera takes 413 before it
is read; then the camera's `PushFeed` checks, decodes and delivers it on this
worker thread.  Every answer is JSON: `{"taken": true, "frame": n}` or
`{"taken": false, "reason": "..."}`.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from ..capture import PushFeed
from ..common.ratelimit import EveryMinute
from .request import client_address, dashboard
from .security import Throttle

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
    if feed is None:
        return _refuse(404, "no push camera of this name")
    if not feed.authorised(request.headers.get("Authorization")):
        return _unauthorised(feed, address, throttle)
    throttle.succeeded(address)
    size = request.content_length
    if size is None:
        return _refuse(411, "Content-Length is needed")
    if size > feed.max_bytes:
        return _refuse(413, f"frame of {size} bytes is over {feed.max_bytes // 1024} KB")
    answer = feed.offer(request.get_data(cache=False))
    if answer.taken:
        return _answer(200, {"taken": True, "frame": answer.frame})
    return _refuse(answer.status, answer.reason, answer.retry_after)


def _unauthorised(feed: PushFeed, address: str, throttle: Throttle) -> Response:
    throttle.failed(address)
    reported: EveryMinute = current_app.extensions["edgeguard.push_reported"]
    if reported.due(address):
        log.warning("push camera %s: refused a frame from %s: missing or wrong token", feed.camera, address)
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
