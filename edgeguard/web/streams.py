"""Live pictures and live updates: MJPEG of each camera, a still per camera for the overview, and the
server-sent event stream of new events."""

from __future__ import annotations

import threading

from flask import Blueprint, Response, abort, render_template, stream_with_context

from .request import dashboard

bp = Blueprint("streams", __name__)
BOUNDARY = "edgeguardframe"


@bp.get("/live_feed")
def live_feed() -> str:
    board = dashboard()
    return render_template("live.html", cameras=board.status().cameras, max_viewers=board.live.max_viewers)


@bp.get("/video_feed/<camera>")
def video_feed(camera: str) -> Response:
    board = dashboard()
    if camera not in {c.name for c in board.status().cameras}:
        abort(404, f"no camera {camera}")
    if not board.live.join():
        abort(Response(f"503 already {board.live.max_viewers} live viewers: try again later\n", 503,
                       mimetype="text/plain", headers={"Retry-After": "10"}))
    stop = threading.Event()

    def parts():
        try:
            for jpeg in board.live.frames(camera, stop):
                yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode()
                yield jpeg + b"\r\n"
        finally:
            stop.set()
            board.live.leave()

    response = Response(stream_with_context(parts()), mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}")
    response.call_on_close(stop.set)
    return response


@bp.get("/snapshot/<camera>.jpg")
def snapshot(camera: str) -> Response:
    jpeg = dashboard().live.snapshot(camera)
    if jpeg is None:
        abort(404, "no frame from this camera yet")
    return Response(jpeg, mimetype="image/jpeg")


@bp.get("/events/stream")
def event_stream() -> Response:
    stop = threading.Event()
    stream = dashboard().events.stream(stop)
    if stream is None:
        abort(Response("503 too many live pages open\n", 503, mimetype="text/plain", headers={"Retry-After": "30"}))
    response = Response(stream_with_context(stream), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    response.call_on_close(stop.set)
    return response
