"""The Search page: a photo of one person, and every recorded event of their face, nearest first
(edgeguard.review.search, as `edgeguard search`), for any logged-in user; an admin can add the person to
the watchlist with that photo.

The uploaded photo is checked as the records pages check theirs (a photo's
suffix, not an image, a bomb, truncated, no face, two faces) and refused with
the reason; it is read from a private temporary folder that is gone when the
answer is sent.  The add-to-watchlist form carries the photo back, shrunk to
at most SHOWN_SIDE pixels and re-encoded as JPEG, and it is enrolled through
edgeguard.watchlist.enrol, checked again like any photo.
"""

from __future__ import annotations

import base64
import binascii
import logging
import tempfile
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from ..common.files import write_private
from ..faces.photos import PHOTO_SUFFIXES, PhotoError, load_photo
from ..review.search import face_to_search, search_events
from ..store.face_captures import CaptureFolder, encode_jpeg
from ..store.face_index import SearchFilter
from ..watchlist.enrol import EnrolError, enrol
from .events import event_json
from .request import admin_only, dashboard

log = logging.getLogger(__name__)
bp = Blueprint("search", __name__)

SHOWN_SIDE = 800  # the photo carried to the add-to-watchlist form: large enough to enrol, small in the page


@bp.get("/search")
def search() -> str:
    return render_template("search.html", **_choices(), form={})


@bp.post("/search")
def search_post() -> tuple[str, int] | str:
    board = dashboard()
    form = request.form
    upload = request.files.get("photo")
    if upload is None or not upload.filename:
        return _refused("Choose a photo of the person.")
    if Path(upload.filename).suffix.lower() not in PHOTO_SUFFIXES:
        return _refused(f"{upload.filename}: not a .jpg, .jpeg, .png or .webp file")
    where = SearchFilter(_since(form.get("since")), form.get("camera") or None, form.get("location") or None)
    with tempfile.TemporaryDirectory(prefix="edgeguard-search-") as tmp:  # nothing of the photo lingers
        path = Path(tmp) / f"photo{Path(upload.filename).suffix.lower()}"
        write_private(path, upload.read())
        try:
            rgb = load_photo(path, board.config.recognition.max_image_pixels)
            encoding = face_to_search(board.engine(), rgb)
        except PhotoError as exc:
            return _refused(f"{upload.filename}: {exc}")
    if board.search is None or board.event_log is None:
        return _refused("There is no event log to search.")
    found = search_events(
        board.search, board.event_log, CaptureFolder.of_config(board.config), encoding, where
    )
    log.info("dashboard: %s searched the past by face: %d event(s) found", g.user.name, len(found))
    rows = [{**event_json(f.event), "search_distance": f.distance, "words": f.words} for f in found]
    return render_template(
        "search.html", **_choices(), form=form, results=rows, photo=_carried(rgb) if g.user.admin else ""
    )


@bp.post("/search/enrol")
@admin_only
def enrol_found() -> Response | tuple[str, int] | str:
    """Add the searched person to the watchlist with the search photo (a new Id, or a photo of an
    existing one)."""
    board = dashboard()
    form = request.form
    person_id = form.get("id", "").strip()
    name = form.get("name", "").strip() or None
    category = form.get("category", "").strip().lower() or None
    try:
        photo = base64.b64decode(form.get("photo", ""), validate=True)
    except (binascii.Error, ValueError):
        abort(400, "the search photo did not come back whole; search again")
    if not photo:
        abort(400, "no photo: search again")
    with tempfile.TemporaryDirectory(prefix="edgeguard-search-") as tmp:
        path = Path(tmp) / "search-photo.jpg"
        write_private(path, photo)
        try:
            result = enrol(board.config, board.engine(), person_id, [path], name, category, None)
        except EnrolError as exc:
            flash(str(exc), "error")
            return redirect(url_for("search.search"))
    if not result.added:
        flash(f"Not added: {result.refused[0][1]}", "error")
        return redirect(url_for("search.search"))
    log.info("dashboard: %s added the searched face as a photo of Id %s", g.user.name, person_id)
    flash(f"The search photo is now a photo of Id {person_id}; the watchlist reloads in a moment.", "ok")
    return redirect(url_for("records.record", person_id=person_id))


def _refused(reason: str) -> tuple[str, int]:
    return render_template("search.html", **_choices(), form=request.form, error=reason), 400


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        abort(400, f"not a date and time: {text!r} (use 2026-11-22T14:00)")


def _choices() -> dict[str, list[str]]:
    cameras = dashboard().config.cameras
    return {
        "cameras": sorted({c.name for c in cameras}),
        "locations": sorted({c.location for c in cameras}),
    }


def _carried(rgb: np.ndarray) -> str:
    """The search photo for the add-to-watchlist form: at most SHOWN_SIDE pixels a side, JPEG, base64."""
    scale = min(1.0, SHOWN_SIDE / max(rgb.shape[:2]))
    if scale < 1.0:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return base64.b64encode(encode_jpeg(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))).decode("ascii")
