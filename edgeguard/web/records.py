"""The watchlist records: people with their photos and problems; adding, editing and deleting them.

The site folders stay the single truth: every change goes through
edgeguard.watchlist.enrol, the code behind `edgeguard enroll`, and the running
watchlist reloads from the folders as it does for hand edits.  An uploaded
photo is checked exactly like any other (not an image, a bomb, truncated, no
face, two faces, too small) and refused with the reason, with nothing written.
Each person's negatives from feedback ("event 12 was not this person",
edgeguard.watchlist.negatives) are listed with the event they came from; an
admin can remove one.
"""

from __future__ import annotations

import logging
import re
import tempfile
from datetime import datetime
from pathlib import Path

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from ..common.files import open_regular, write_private
from ..common.phone import E164, mask_number
from ..faces.photos import PHOTO_SUFFIXES
from ..store.face_captures import CaptureFolder
from ..watchlist.details import VALID_ID, read_details
from ..watchlist.enrol import (
    EnrolError,
    EnrolResult,
    enrol,
    person_photos,
    remove_person,
    remove_photo,
    update_person,
)
from ..watchlist.negatives import NegativesError, count_negatives, folder_of, read_negatives, remove_negative
from .request import admin_only, audit, dashboard
from .shown import problem_text, site_text

log = logging.getLogger(__name__)
bp = Blueprint("records", __name__)

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


MAX_ID_LENGTH = 64


@bp.url_value_preprocessor
def _id_of_a_record(endpoint: str | None, values: dict | None) -> None:
    """404 for an Id no record can have (a 5000-character one would otherwise reach the file system)."""
    person_id = (values or {}).get("person_id")
    if person_id is not None and (len(person_id) > MAX_ID_LENGTH or not VALID_ID.fullmatch(person_id)):
        abort(404, "no such record")


@bp.get("/view_records")
def view_records() -> str:
    board = dashboard()
    people, _ = read_details(board.config.paths.details_csv)
    watchlist = board.watchlist()
    problems = watchlist.problems if watchlist else []
    negatives = count_negatives(folder_of(board.config))
    rows = []
    placed: set[int] = set()  # the problems shown in a person's row
    for pid in sorted(set(people) | {p.name for p in _folders()}, key=_id_order):
        person = people.get(pid)
        photos = [p.name for p in person_photos(board.config, pid)]
        mine = [
            n
            for n, p in enumerate(problems)
            if f"/{pid}/" in p.where or p.where.endswith(f"/{pid}") or f"Id {pid} " in p.reason
        ]
        placed.update(mine)
        rows.append(
            {
                "id": pid,
                "name": person.name if person else pid,
                "category": person.category if person else "",
                "photos": photos,
                "problems": [problem_text(problems[n], board.config, g.user.admin) for n in mine],
                "negatives": negatives.get(pid, 0),
                "enrolled": bool(watchlist and watchlist.photo_counts.get(pid)),
            }
        )
    other = [problem_text(p, board.config, g.user.admin) for n, p in enumerate(problems) if n not in placed]
    return render_template("records.html", rows=rows, other_problems=other)


@bp.get("/add_record")
@admin_only
def add_record() -> str:
    return render_template("add_record.html", form={})


@bp.post("/add_record")
@admin_only
def add_record_post() -> Response | str:
    form = request.form
    person_id, name = form.get("id", "").strip(), form.get("name", "").strip()
    category, phone = form.get("category", "").strip().lower() or None, form.get("phone", "").strip() or None
    error = _check_fields(person_id, name, phone, new=True)
    if error:
        return render_template("add_record.html", form=form, error=error), 400
    result = _enrol_uploads(person_id, name, category, phone)
    if isinstance(result, str):
        return render_template("add_record.html", form=form, error=result), 400
    if not result.added:
        reasons = "; ".join(f"{p.name}: {why}" for p, why in result.refused)
        return render_template(
            "add_record.html", form=form, error=f"No photo could be used ({reasons})."
        ), 400
    log.info("dashboard: %s added Id %s with %d photo(s)", g.user.name, person_id, len(result.added))
    audit("record added", person_id, photos=len(result.added))
    _flash_result(person_id, result)
    return redirect(url_for("records.record", person_id=person_id))


@bp.get("/records/<person_id>")
def record(person_id: str) -> str:
    board = dashboard()
    people, _ = read_details(board.config.paths.details_csv)
    person = people.get(person_id)
    photos = [p.name for p in person_photos(board.config, person_id)]
    if person is None and not photos:
        abort(404, f"no watchlist Id {person_id}")
    phone = person.details.get("phone_number", "") if person else ""
    try:
        negatives, negatives_error = read_negatives(folder_of(board.config), person_id), ""
    except NegativesError as exc:
        negatives, negatives_error = [], site_text(str(exc), board.config, g.user.admin)
    folder = CaptureFolder.of_config(board.config)
    found = {n.event: folder.of(n.capture) for n in negatives}
    return render_template(
        "record.html",
        pid=person_id,
        person=person,
        photos=photos,
        phone=phone if g.user.admin else mask_number(phone) if phone else "",
        negatives=negatives,
        negatives_error=negatives_error,
        shown={event: capture.id for event, capture in found.items() if capture and capture.exists()},
        strangers=_stranger_history(person_id),
        can_erase=board.erase is not None,
    )


def _stranger_history(person_id: str) -> list[dict]:
    """The strangers who were added to the watchlist as this Id: their sightings before it."""
    store = dashboard().strangers
    return [
        {
            "id": s.id,
            "sightings": s.sightings,
            "visits": s.visits,
            "where": ", ".join(s.locations),
            "first": f"{datetime.fromtimestamp(s.first_seen):%Y-%m-%d %H:%M}",
            "last": f"{datetime.fromtimestamp(s.last_seen):%Y-%m-%d %H:%M}",
        }
        for s in (store.list() if store else [])
        if s.person_id == person_id
    ]


@bp.post("/records/<person_id>")
@admin_only
def update_record(person_id: str) -> Response:
    form = request.form
    name, phone = form.get("name", "").strip(), form.get("phone", "").strip()
    error = _check_fields(person_id, name, phone or None, new=False)
    if error:
        flash(error, "error")
    else:
        try:
            update_person(
                dashboard().config, person_id, name, form.get("category", "").strip().lower() or None, phone
            )
        except EnrolError as exc:
            flash(str(exc), "error")
        else:
            log.info("dashboard: %s edited Id %s", g.user.name, person_id)
            audit("record edited", person_id, fields="name, category, phone number")
            flash("Saved.", "ok")
    return redirect(url_for("records.record", person_id=person_id))


@bp.post("/records/<person_id>/photos")
@admin_only
def add_photos(person_id: str) -> Response:
    if not VALID_ID.fullmatch(person_id):
        abort(404)
    result = _enrol_uploads(person_id, None, None, None)
    if isinstance(result, str):
        flash(result, "error")
    else:
        _flash_result(person_id, result)
        if result.added:
            audit("photo added", person_id, photos=[p.name for p in result.added])
    return redirect(url_for("records.record", person_id=person_id))


@bp.post("/records/<person_id>/photos/<name>/delete")
@admin_only
def delete_photo(person_id: str, name: str) -> Response:
    try:
        remove_photo(dashboard().config, person_id, name)
    except EnrolError as exc:
        flash(str(exc), "error")
    else:
        log.info("dashboard: %s deleted a photo of Id %s", g.user.name, person_id)
        audit("photo removed", person_id, photo=name)
        flash(f"Photo {name} deleted.", "ok")
    return redirect(url_for("records.record", person_id=person_id))


@bp.post("/records/<person_id>/negatives/<int:event>/delete")
@admin_only
def delete_negative(person_id: str, event: int) -> Response:
    """Forget one correction: the face of `event` may be named as this person again."""
    board = dashboard()
    try:
        removed = remove_negative(folder_of(board.config), person_id, event)
    except NegativesError as exc:
        flash(str(exc), "error")
        return redirect(url_for("records.record", person_id=person_id))
    if not removed:
        flash(f"Id {person_id} has no negative from event {event}.", "error")
    else:
        log.info("dashboard: %s removed the negative of event %d from Id %s", g.user.name, event, person_id)
        flash(f"The negative from event {event} is removed; the watchlist reloads in a moment.", "ok")
        if board.reload_watchlist is not None:
            board.reload_watchlist()
    return redirect(url_for("records.record", person_id=person_id))


@bp.post("/records/<person_id>/delete")
@admin_only
def delete_record(person_id: str) -> Response:
    if request.form.get("confirm") != person_id:
        flash(f"To delete Id {person_id}, type its Id in the box.", "error")
        return redirect(url_for("records.record", person_id=person_id))
    try:
        remove_person(dashboard().config, person_id)
    except EnrolError as exc:
        flash(str(exc), "error")
        return redirect(url_for("records.record", person_id=person_id))
    log.info("dashboard: %s deleted Id %s", g.user.name, person_id)
    audit("record deleted", person_id)
    flash(f"Id {person_id} deleted, with its photos and negatives.", "ok")
    return redirect(url_for("records.view_records"))


@bp.post("/records/<person_id>/erase")
@admin_only
def erase_record(person_id: str) -> Response:
    """Erase the person everywhere, as `edgeguard forget` does (the daemon hands over its erasure)."""
    board = dashboard()
    if board.erase is None:
        abort(404, "erasure is not available here")
    if request.form.get("confirm") != person_id:
        flash(f"To erase Id {person_id} everywhere, type its Id in the box.", "error")
        return redirect(url_for("records.record", person_id=person_id))
    try:
        done = board.erase(person_id)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("records.record", person_id=person_id))
    log.info("dashboard: %s erased Id %s everywhere", g.user.name, person_id)
    audit("erasure", person_id, removed=done)
    flash(f"Id {person_id} erased everywhere: " + "; ".join(done), "ok")
    if board.reload_watchlist is not None:
        board.reload_watchlist()
    return redirect(url_for("records.view_records"))


@bp.get("/records/<person_id>/photos/<name>")
def photo(person_id: str, name: str) -> Response:
    match = [p for p in person_photos(dashboard().config, person_id) if p.name == name]
    if not match:
        abort(404, "no such photo")
    with open_regular(match[0]) as fh:
        data = fh.read()
    return Response(
        data,
        mimetype=CONTENT_TYPES.get(match[0].suffix.lower(), "application/octet-stream"),
        headers={"Cache-Control": "no-store"},  # a face must not stay in the browser after logout
    )


def _enrol_uploads(
    person_id: str, name: str | None, category: str | None, phone: str | None
) -> EnrolResult | str:
    """The uploaded photos, checked and enrolled through the same code as `edgeguard enroll`; or what is
    wrong."""
    uploads = [f for f in request.files.getlist("photos") if f and f.filename]
    if not uploads:
        return "Choose at least one photo."
    board = dashboard()
    with tempfile.TemporaryDirectory(
        prefix="edgeguard-upload-"
    ) as tmp:  # nothing of a refused upload lingers
        paths = []
        for n, upload in enumerate(uploads):
            suffix = Path(upload.filename).suffix.lower()
            if suffix not in PHOTO_SUFFIXES:
                return f"{upload.filename}: not a .jpg, .jpeg, .png or .webp file; nothing was added"
            target = Path(tmp) / f"{_safe_stem(upload.filename)}-{n}{suffix}"
            write_private(target, upload.read())
            paths.append(target)
        try:
            return enrol(board.config, board.engine(), person_id, paths, name, category, phone)
        except EnrolError as exc:
            return str(exc)


def _check_fields(person_id: str, name: str, phone: str | None, new: bool) -> str:
    if not VALID_ID.fullmatch(person_id):
        return "The Id can hold letters, digits and _ . - only (it names the photo folder)."
    if not name:
        return "Give the person's name."
    if len(name) > 200 or any(ord(c) < 32 for c in name):
        return "The name must be one line of at most 200 characters."
    if phone and not re.fullmatch(E164, phone):
        return "The phone number must be in international form like +15551230000."
    people, _ = read_details(dashboard().config.paths.details_csv)
    if new and (person_id in people or person_photos(dashboard().config, person_id)):
        return f"Id {person_id} exists already: add photos on its page."
    return ""


def _flash_result(person_id: str, result: EnrolResult) -> None:
    if result.added:
        flash(f"Id {person_id}: {len(result.added)} photo(s) added; the watchlist reloads in a moment.", "ok")
    for photo_path, reason in result.refused:
        flash(f"{_original(photo_path)}: not added: {reason}", "error")


def _original(path: Path) -> str:
    return path.name.rsplit("-", 1)[0] + path.suffix


def _safe_stem(filename: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(filename).stem)[:60] or "photo"


def _folders() -> list[Path]:
    root = dashboard().config.paths.training_images
    return (
        [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and VALID_ID.fullmatch(p.name)]
        if root.is_dir()
        else []
    )


def _id_order(pid: str) -> tuple:
    return (0, int(pid), "") if pid.isdigit() else (1, 0, pid)
