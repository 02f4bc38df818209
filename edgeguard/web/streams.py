"""Live pictures and live updates: MJPEG of each camera, a still per camera for the overview, and the
server-sent event stream of new events.  A camera is named in the address (`/video_feed/Gate 2`, quoted by
url_for); a name that is not one of the cameras is a 404."""

from __future__ import annotations

import threading
from typing import NoReturn

from flask import Blueprint, Response, abort, g, jsonify, render_template, request, stream_with_context

from .context import CameraStatus
from .request import dashboard
from .rows import event_row
from .shown import cameras_shown
from .slots import SlotsFull

bp = Blueprint("streams", __name__)
BOUNDARY = "edgeguardframe"


def by_location(cameras: list[CameraStatus]) -> list[tuple[str, list[CameraStatus]]]:
    """The cameras under their locations, locations and cameras in the order they come (the configuration's
    order)."""
    groups: dict[str, list[CameraStatus]] = {}
    for camera in cameras:
        groups.setdefault(camera.location, []).append(camera)
    return list(groups.items())


def _known(camera: str) -> None:
    """404 unless `camera` is one of the cameras."""
    if camera not in {c.name for c in dashboard().status().cameras}:
        abort(404, f"no camera {camera}")


@bp.get("/cameras.json")
def cameras() -> Response:
    """Each camera's state, fps and people in view, for the pages to follow without a reload (app.js)."""
    return jsonify(
        [
            {
                "name": c.name,
                "location": c.location,
                "state": c.state,
                "fps": round(c.fps, 1),
                "people": c.people,
            }
            for c in dashboard().status().cameras
        ]
    )


@bp.get("/live_feed")
def live_feed() -> str:
    board = dashboard()
    cameras = cameras_shown(board.status().cameras, g.user.admin)
    return render_template("live.html", locations=by_location(cameras), max_viewers=board.live.max_viewers)


def _refused(full: SlotsFull, site_full: str, user_full: str, retry_after: int) -> NoReturn:
    """No slot for this user: 429 when they hold their share already (they can close one of their pages),
    503 when the site's slots are all taken (by others: try later)."""
    status, text = (429, user_full) if full.per_user else (503, site_full)
    abort(
        Response(
            f"{status} {text.format(full.limit)}\n",
            status,
            mimetype="text/plain",
            headers={"Retry-After": str(retry_after)},
        )
    )


@bp.get("/video_feed/<camera>")
def video_feed(camera: str) -> Response:
    board = dashboard()
    _known(camera)
    user = g.user.name
    try:
        board.live.join(user)
    except SlotsFull as full:
        _refused(
            full,
            "already {} live viewers: try again later",
            "you have {} live views open already, the most one user may have: close one first",
            10,
        )
    stop = threading.Event()

    def parts():
        try:
            for jpeg in board.live.frames(camera, stop):
                yield (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                ).encode()
                yield jpeg + b"\r\n"
        finally:
            stop.set()
            board.live.leave(user)

    response = Response(
        stream_with_context(parts()), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    )
    response.call_on_close(stop.set)
    return response


@bp.get("/snapshot/<camera>.jpg")
def snapshot(camera: str) -> Response:
    _known(camera)
    jpeg = dashboard().live.snapshot(camera)
    if jpeg is None:
        abort(404, "no frame from this camera yet")
    return Response(jpeg, mimetype="image/jpeg")


@bp.get("/events/stream")
def event_stream() -> Response:
    """New events as the rows the page would show after a reload (`?page=logs`: the detection log's, with
    the review cell), rendered for this viewer's role."""
    review = request.args.get("page") == "logs"
    stop = threading.Event()
    try:
        stream = dashboard().events.stream(g.user.name, stop, lambda event: event_row(event, review))
    except SlotsFull as full:
        _refused(
            full,
            "too many live pages open ({} at most): try again later",
            "you have {} live pages open already, the most one user may have: close one first",
            30,
        )
    response = Response(
        stream_with_context(stream),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(stop.set)
    return response
