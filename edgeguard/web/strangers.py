"""The Strangers page: the strangers remembered (edgeguard.store.strangers) with their best face, first and
last seen, visits and where; each stranger's sightings.  An admin corrects the grouping (merge two ids
that are one person, split off a sighting that is someone else) and adds a stranger to the watchlist with
their best face (edgeguard.review.capture_enrol, as "add to watchlist" on the detection log): the
stranger keeps their history, naming the Id."""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from ..review.capture_enrol import enrol_from_capture
from ..store.face_captures import CaptureFolder, capture_id
from ..store.strangers import StrangerStore
from ..watchlist.enrol import EnrolError
from .request import admin_only, dashboard

log = logging.getLogger(__name__)
bp = Blueprint("strangers", __name__)


def _store() -> StrangerStore:
    store = dashboard().strangers
    if store is None:
        abort(404, "strangers are not kept by this dashboard")
    return store


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


@bp.get("/strangers")
def strangers() -> str:
    rows = [
        {
            "id": s.id,
            "first": _when(s.first_seen),
            "last": _when(s.last_seen),
            "visits": s.visits,
            "sightings": s.sightings,
            "where": ", ".join(s.locations),
            "face": capture_id(s.best_capture),
            "person": s.person_id,
        }
        for s in _store().list()
    ]
    return render_template("strangers.html", rows=rows)


@bp.get("/strangers/<int:stranger>")
def stranger(stranger: int) -> str:
    sightings = [
        {"id": sid, "time": _when(when), "camera": camera, "location": where, "face": capture_id(capture)}
        for sid, when, camera, where, capture in _store().sightings(stranger)
    ]
    if not sightings:
        abort(404, f"no stranger {stranger}")
    return render_template("stranger.html", stranger=stranger, sightings=sightings)


@bp.post("/strangers/<int:stranger>/merge")
@admin_only
def merge(stranger: int) -> Response:
    """`stranger` is the same person as the one named in the form: their sightings join that one's."""
    target = request.form.get("into", "").strip()
    try:
        _store().merge(stranger, int(target))
    except ValueError as exc:
        flash(f"Not merged: {exc if target.isdigit() else 'give the number of a stranger'}", "error")
        return redirect(url_for("strangers.strangers"))
    log.info("dashboard: %s merged stranger %d into %s", g.user.name, stranger, target)
    flash(f"Stranger {stranger} is now stranger {target}.", "ok")
    return redirect(url_for("strangers.stranger", stranger=int(target)))


@bp.post("/strangers/sightings/<int:sighting>/split")
@admin_only
def split(sighting: int) -> Response:
    try:
        new = _store().split(sighting)
    except ValueError as exc:
        abort(404, str(exc))
    log.info("dashboard: %s split sighting %d off as stranger %d", g.user.name, sighting, new)
    flash(f"That sighting is now stranger {new}.", "ok")
    return redirect(url_for("strangers.stranger", stranger=new))


@bp.post("/strangers/<int:stranger>/enrol")
@admin_only
def enrol(stranger: int) -> Response:
    """Add the stranger to the watchlist with their best face; their history stays, naming the Id."""
    board, store = dashboard(), _store()
    found = [s for s in store.list() if s.id == stranger]
    capture = CaptureFolder.of_config(board.config).of(found[0].best_capture) if found else None
    if capture is None or not capture.exists():
        abort(404, f"stranger {stranger} has no face kept")
    person_id = request.form.get("id", "").strip()
    try:
        result = enrol_from_capture(
            board.config,
            board.engine(),
            person_id,
            capture.face,
            request.form.get("name", "").strip() or None,
            request.form.get("category", "").strip().lower() or None,
        )
    except EnrolError as exc:
        flash(str(exc), "error")
        return redirect(url_for("strangers.strangers"))
    if not result.added:
        flash(f"Not added: {result.refused[0][1]}", "error")
        return redirect(url_for("strangers.strangers"))
    store.enrolled(stranger, person_id)
    log.info("dashboard: %s added stranger %d to the watchlist as Id %s", g.user.name, stranger, person_id)
    flash(f"Stranger {stranger} is now Id {person_id}; the watchlist reloads in a moment.", "ok")
    if board.reload_watchlist is not None:
        board.reload_watchlist()
    return redirect(url_for("strangers.strangers"))
