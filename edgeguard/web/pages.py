"""The overview, the detection log (with its captures, review marks and CSV export), the alerts, the users."""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable
from datetime import datetime

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from ..alerts.wording import trial_body
from ..common.phone import mask_number
from ..events.event import EVENT_TYPES
from ..review.capture_enrol import enrol_from_capture
from ..review.feedback import FeedbackError, is_person, not_person
from ..store.audit import verify
from ..store.event_log import EventFilter
from ..store.face_captures import BadCaptureId, CaptureError, CaptureFolder
from ..watchlist.enrol import EnrolError
from .events import event_json
from .request import admin_only, audit, dashboard
from .rows import people_choices
from .shown import cameras_shown, outputs_shown, problem_text, site_text
from .streams import by_location
from .users import ROLES, UserError

log = logging.getLogger(__name__)
bp = Blueprint("pages", __name__)

PAGE = 50
MAX_PAGE = 10**9  # a page number beyond any log: answered as an empty page, not an overflow
CSV_LIMIT = 10_000
AUDIT_PAGE = 100  # audit rows a page shows


@bp.get("/")
def overview() -> str:
    board = dashboard()
    status = board.status()
    events = board.event_log.search(EventFilter(), 0, 10)[0] if board.event_log else []
    pending = board.outbox.count("pending") if board.outbox else 0
    failed = board.outbox.count("failed") if board.outbox else 0
    watchlist = board.watchlist()
    admin = g.user.admin
    return render_template(
        "overview.html",
        locations=by_location(cameras_shown(status.cameras, admin)),
        events=[event_json(e) for e in events],
        pending=pending,
        failed=failed,
        watchlist=watchlist,
        problems=[problem_text(p, board.config, admin) for p in watchlist.problems] if watchlist else [],
        storage=[site_text(fault, board.config, admin) for fault in status.storage],
        outputs=outputs_shown(status.outputs, board.config, admin),
        several_cameras=len(board.config.cameras) > 1,
    )


# ---------------------------------------------------------------- the detection log


def _filters() -> EventFilter:
    args = request.args
    types = tuple(t for t in args.getlist("type") if t in EVENT_TYPES)
    return EventFilter(
        types=types,
        person=args.get("person") or None,
        category=args.get("category") or None,
        camera=args.get("camera") or None,
        location=args.get("location") or None,
        since=_time(args.get("since")),
        until=_time(args.get("until")),
        seq=_event_seq(args.get("event")),
    )


def _event_seq(text: str | None) -> int | None:
    """The event number asked for; 404 for one that cannot exist (SQLite's integers end at 2^63)."""
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        abort(404, "no such event")
    return int(text)


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        abort(400, f"not a date and time: {text!r} (use 2026-11-22T14:00)")


@bp.get("/detection_logs")
def detection_logs() -> str:
    board = dashboard()
    page = min(max(1, request.args.get("page", 1, type=int) or 1), MAX_PAGE)
    events, total = (
        board.event_log.search(_filters(), (page - 1) * PAGE, PAGE) if board.event_log else ([], 0)
    )
    reviewed = board.users.reviewed([e.seq for e in events if e.seq is not None])
    query = request.args.to_dict(flat=False)
    query.pop("page", None)
    cameras = board.config.cameras
    return render_template(
        "logs.html",
        events=[event_json(e) for e in events],
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE)),
        reviewed=reviewed,
        types=EVENT_TYPES,
        args=request.args,
        query=query,
        people=people_choices(),
        review=True,
        cameras=_choices((c.name for c in cameras), request.args.get("camera")),
        locations=_choices((c.location for c in cameras), request.args.get("location")),
        several_cameras=len(cameras) > 1,
    )


def _choices(configured: Iterable[str], chosen: str | None) -> list[str]:
    """A select box's choices: the configured ones in their order, and the one asked for if it is not among
    them (a camera no longer configured still has its events; a name never used just finds none)."""
    choices = list(dict.fromkeys(configured))
    return [*choices, chosen] if chosen and chosen not in choices else choices


@bp.get("/detection_logs.csv")
def detection_logs_csv() -> Response:
    board = dashboard()
    events, _ = board.event_log.search(_filters(), 0, CSV_LIMIT) if board.event_log else ([], 0)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["seq", "time", "type", "camera", "location", "id", "name", "category", "distance", "capture"]
    )
    for e in events:
        writer.writerow(
            [
                _cell(v)
                for v in (
                    e.seq,
                    e.to_json()["time_iso"],
                    e.type,
                    e.camera,
                    e.location,
                    e.person_id,
                    e.name,
                    e.category,
                    e.distance,
                    _face_name(e.capture),
                )
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename=edgeguard-events-{time.strftime('%Y%m%d')}.csv"
        },
    )


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (a Name could be "=HYPERLINK(...)")."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _face_name(capture: str | None) -> str:
    """The file name of an event's face image, as the CSV has always shown it."""
    found = captures().of(capture)
    return found.face.name if found else ""


@bp.post("/detection_logs/<int:seq>/reviewed")
@admin_only
def mark_reviewed(seq: int) -> Response:
    board = dashboard()
    if board.event_log is None or board.event_log.get(seq) is None:
        abort(404, f"no event {seq}")
    board.users.mark_reviewed(seq, g.user.name)
    log.info("dashboard: %s marked event %d reviewed", g.user.name, seq)
    return redirect(request.referrer or url_for("pages.detection_logs"))


@bp.post("/detection_logs/<int:seq>/enrol")
@admin_only
def enrol_capture(seq: int) -> Response:
    """Turn an event's capture into a watchlist photo: of an existing Id, or of a new person."""
    board = dashboard()
    event = board.event_log.get(seq) if board.event_log else None
    capture = captures().of(event.capture) if event else None
    if capture is None:
        abort(404, f"event {seq} has no capture")
    person_id = request.form.get("id", "").strip()
    name = request.form.get("name", "").strip() or None
    category = request.form.get("category", "").strip().lower() or None
    try:
        result = enrol_from_capture(
            board.config,
            board.engine(),
            person_id,
            capture.face,
            name,
            category,
        )
    except EnrolError as exc:
        flash(str(exc), "error")
        return redirect(url_for("pages.detection_logs"))
    if result.added:
        board.users.mark_reviewed(seq, g.user.name)
        log.info("dashboard: %s enrolled the capture of event %d as Id %s", g.user.name, seq, person_id)
        audit("capture enrolled", person_id, event=seq, capture=capture.id)
        flash(f"The capture is now a photo of Id {person_id}; the watchlist reloads in a moment.", "ok")
    else:
        flash(f"Not added: {result.refused[0][1]}", "error")
    return redirect(url_for("pages.detection_logs"))


@bp.post("/detection_logs/<int:seq>/feedback")
@admin_only
def feedback(seq: int) -> Response:
    """Correct a wrong name: "Not <name>" (action not_person) or "This is..." (action is, with an Id)."""
    board = dashboard()
    if board.event_log is None:
        abort(404, "no event log")
    action = request.form.get("action", "")
    try:
        if action == "not_person":
            result = not_person(board.config, board.event_log, seq, by=g.user.name)
        elif action == "is":
            person_id = request.form.get("id", "").strip()
            if not person_id:
                raise FeedbackError("choose who this is")
            result = is_person(board.config, board.engine(), board.event_log, seq, person_id, by=g.user.name)
        else:
            abort(400, "a correction is not_person or is")
    except FeedbackError as exc:
        flash(f"Not corrected: {exc}.", "error")
        return redirect(url_for("pages.detection_logs"))
    for line in result.done:
        flash(line[:1].upper() + line[1:] + ".", "ok")
    if result.refused:
        flash(result.refused[:1].upper() + result.refused[1:] + ".", "error")
    board.users.mark_reviewed(seq, g.user.name)
    if result.changed and board.reload_watchlist is not None:
        board.reload_watchlist()
    log.info(
        "dashboard: %s corrected event %d (%s)",
        g.user.name,
        seq,
        "not the person it named"
        if action == "not_person"
        else f"is Id {request.form.get('id', '').strip()}",
    )
    return redirect(url_for("pages.detection_logs"))


@bp.get("/captures/<capture_id>/<any(face, frame):image>.jpg")
def capture_image(capture_id: str, image: str) -> Response:
    """A capture's face or frame image, for a logged-in user."""
    try:
        data = captures().get(capture_id).read(image)  # type: ignore[arg-type]
    except BadCaptureId:
        abort(404, "not a capture")
    except CaptureError:
        abort(404, "no such capture (retention may have deleted it)")
    return Response(data, mimetype="image/jpeg", headers={"Cache-Control": "no-store"})


def captures() -> CaptureFolder:
    """The site's captures, read by id (edgeguard.store.face_captures)."""
    return CaptureFolder.of_config(dashboard().config)


# ---------------------------------------------------------------- alerts


@bp.get("/alerts")
@admin_only
def alerts() -> str:
    board = dashboard()
    messages = board.outbox.latest(200) if board.outbox else []
    return render_template(
        "alerts.html",
        messages=messages,
        mask=mask_number,
        numbers=sorted({n for r in board.config.alerts.route for n in r.to}),
    )


@bp.post("/alerts/test")
@admin_only
def test_alert() -> Response:
    board = dashboard()
    number = request.form.get("to", "")
    if board.outbox is None or number not in {n for r in board.config.alerts.route for n in r.to}:
        abort(400, "a test message goes to a number of the alert routes")
    board.outbox.add(number, trial_body(board.config.location.name, time.strftime("%H:%M:%S")), None, None)
    log.info("dashboard: %s sent a test message to %s", g.user.name, mask_number(number))
    flash(f"Test message queued for {mask_number(number)}.", "ok")
    return redirect(url_for("pages.alerts"))


# ---------------------------------------------------------------- users


@bp.get("/audit")
@admin_only
def audit_log() -> str:
    """The audit log, newest first, a page of AUDIT_PAGE rows at a time, with the chain's state."""
    board = dashboard()
    page = min(max(0, request.args.get("page", 0, type=int)), MAX_PAGE)
    rows = board.audit.rows(AUDIT_PAGE, page * AUDIT_PAGE) if board.audit else []
    count, problems = verify(board.config.paths.audit_db) if board.audit else (0, [])
    return render_template(
        "audit.html", rows=rows, page=page, count=count, problems=problems, size=AUDIT_PAGE
    )


@bp.get("/users")
@admin_only
def users() -> str:
    return render_template("users.html", users=dashboard().users.list(), roles=ROLES, mask=mask_number)


@bp.post("/users")
@admin_only
def add_user() -> Response:
    form = request.form
    try:
        dashboard().users.add(
            form.get("username", "").strip(),
            form.get("password", ""),
            form.get("role", "viewer"),
            form.get("phone", "").strip() or None,
        )
    except UserError as exc:
        flash(str(exc), "error")
    else:
        log.info("dashboard: %s added user %s", g.user.name, form.get("username"))
        audit("user added", form.get("username", "").strip(), role=form.get("role", "viewer"))
        flash(f"User {form.get('username')} added.", "ok")
    return redirect(url_for("pages.users"))


@bp.post("/users/<name>/delete")
@admin_only
def remove_user(name: str) -> Response:
    if name == g.user.name:
        flash("You cannot remove yourself.", "error")
    elif dashboard().users.remove(name):
        log.info("dashboard: %s removed user %s", g.user.name, name)
        audit("user removed", name)
        flash(f"User {name} removed.", "ok")
    return redirect(url_for("pages.users"))
