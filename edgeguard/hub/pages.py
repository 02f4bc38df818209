"""The hub's dashboard pages (a blueprint on the web package's app: the same logins, roles, CSRF checks and
headers): devices with their state and gaps, the event log across devices, the map of sightings, a person's
track and the last known location of each missing or wanted person; the fleet's watchlist (admins edit it,
devices fetch their signed bundle from `/api/watchlist` with their token)."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from ..common.event_types import EVENT_TYPES
from ..common.ratelimit import EveryMinute
from ..config import HubConfig
from ..faces.photos import is_photo_name
from ..watchlist.details import VALID_ID
from ..web.request import admin_only, audit, dashboard
from ..web.slots import SlotsFull
from .store import HubStore
from .thumbnails import is_image
from .track import MAX_SPEED_KMH, legs
from .watchlist import FleetWatchlist

log = logging.getLogger(__name__)

bp = Blueprint(
    "hub",
    __name__,
    template_folder=str(Path(__file__).with_name("templates")),
    static_folder=str(Path(__file__).with_name("static")),
    static_url_path="/hub/static",
)
SIGHTINGS = ("known_face", "unknown_face")
LAST_KNOWN = ("missing", "wanted")  # the categories whose last known location the map lists
MAP_EVENTS = 2000  # the newest sightings on the map at most
REFUSALS_LOGGED = EveryMinute()  # wrong watchlist tokens, logged once a minute per address


@dataclass(frozen=True)
class HubView:
    """What the pages read: the database and the [hub] settings (the tiles)."""

    store: HubStore
    config: HubConfig
    fleet: FleetWatchlist


def view() -> HubView:
    return current_app.extensions["edgeguard.hub"]


@bp.after_request
def _tiles_allowed(response: Response) -> Response:
    """The map's tiles come from the configured tile server: its origin is let into the page's images."""
    origin = tile_origin(view().config.tile_url)
    if origin:
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; img-src 'self' data: {origin}; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    return response


def tile_origin(url: str) -> str:
    """scheme://host of a tile URL template ({s}.tile... becomes *.tile...), "" for none."""
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}.", "sub."))
    host = parts.netloc.replace("sub.", "*.", 1) if "{s}." in url else parts.netloc
    return f"{parts.scheme}://{host}"


@bp.route("/")
def devices() -> str:
    hub = view()
    gaps: dict[str, list[str]] = {}
    for gap in hub.store.gaps():
        gaps.setdefault(gap.device, []).append(
            str(gap.first) if gap.first == gap.last else f"{gap.first}-{gap.last}"
        )
    return render_template("hub_devices.html", devices=hub.store.devices(), gaps=gaps, now=time.time())


@bp.route("/events")
def events() -> str:
    device = request.args.get("device", "").strip() or None
    kind = request.args.get("type", "")
    person = request.args.get("person", "").strip() or None
    hours = request.args.get("hours", "")
    since = time.time() - float(hours) * 3600 if hours.replace(".", "", 1).isdigit() else None
    rows = view().store.events(device, (kind,) if kind in EVENT_TYPES else (), person, since, limit=500)
    names = [d["device"] for d in view().store.devices()]
    return render_template(
        "hub_events.html",
        rows=rows,
        devices=names,
        types=EVENT_TYPES,
        chosen={"device": device or "", "type": kind, "person": person or "", "hours": hours},
    )


@bp.route("/events/live")
def live_events() -> Response:
    """New events as the rows of the event log, with its device, type and person filters (server-sent
    events; the hub's LiveRows hands them over)."""
    device, kind = request.args.get("device", "").strip(), request.args.get("type", "")
    person = request.args.get("person", "").strip()

    def wanted(row: dict[str, Any]) -> bool:
        return (
            (not device or row["device"] == device)
            and (kind not in EVENT_TYPES or row["type"] == kind)
            and (not person or row["person_id"] == person)
        )

    stop = threading.Event()
    try:
        stream = dashboard().events.stream(
            g.user.name, stop, lambda row: render_template("hub_event_row.html", e=row), wanted
        )
    except SlotsFull:
        abort(503, "too many live pages open: try again later")
    response = Response(
        stream_with_context(stream),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(stop.set)
    return response


@bp.route("/map")
def sightings_map() -> str:
    hub = view()
    rows = hub.store.events(types=SIGHTINGS, limit=MAP_EVENTS)
    last = hub.store.last_known(LAST_KNOWN)
    return render_template(
        "hub_map.html",
        places=places(rows),
        last_known=last,
        tiles={"url": hub.config.tile_url, "attribution": hub.config.tile_attribution},
    )


@bp.route("/person/<person_id>")
def person(person_id: str) -> str:
    sightings = view().store.track(person_id)
    if not sightings:
        abort(404, "no sighting of this person at the hub")
    track = legs(sightings)
    points = [
        {
            "lat": leg.sighting["latitude"],
            "lon": leg.sighting["longitude"],
            "label": f"{n}. {leg.sighting['location']}",
            "impossible": leg.impossible,
        }
        for n, leg in enumerate(track, 1)
        if leg.sighting["latitude"] is not None
    ]
    return render_template(
        "hub_person.html",
        person=sightings[-1],
        track=track,
        points=points,
        max_speed=MAX_SPEED_KMH,
        inf=math.inf,
        tiles={"url": view().config.tile_url, "attribution": view().config.tile_attribution},
    )


def places(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sightings grouped by place (location name and coordinates): counts and the newest, for the map."""
    grouped: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        if row["latitude"] is None or row["longitude"] is None:
            continue
        key = (row["location"], row["latitude"], row["longitude"])
        place = grouped.setdefault(
            key,
            {
                "name": row["location"],
                "lat": row["latitude"],
                "lon": row["longitude"],
                "known": 0,
                "unknown": 0,
            },
        )
        place["known" if row["type"] == "known_face" else "unknown"] += 1
        place.setdefault("newest", row["time_iso"])
    return list(grouped.values())


@bp.route("/watchlist")
def watchlist() -> str:
    hub = view()
    return render_template(
        "hub_watchlist.html", people=hub.store.watchlist_people(), version=hub.store.watchlist_version()
    )


@bp.post("/watchlist")
@admin_only
def put_person() -> Response:
    """Add or edit a person of the fleet's watchlist (new photos replace theirs; none given keeps them)."""
    form = request.form
    person_id, name = form.get("id", "").strip(), form.get("name", "").strip()
    category = form.get("category", "").strip().lower()
    groups = tuple(g.strip() for g in form.get("groups", "").split(",") if g.strip())
    uploads = [f for f in request.files.getlist("photos") if f.filename]
    if not VALID_ID.match(person_id) or len(person_id) > 64 or not name:
        abort(400, "an Id (letters, digits, _ . - only) and a name are needed")
    if any(not is_photo_name(Path(f.filename)) or "/" in f.filename for f in uploads):
        abort(400, "photos are .jpg, .jpeg, .png or .webp files")
    photos = [(Path(f.filename).name, f.read()) for f in uploads] or None
    unreadable = [name for name, data in photos or [] if not is_image(data)]
    if unreadable:
        abort(400, f"{unreadable[0]} is not an image that can be read")
    revision = view().store.put_person(person_id, name, category, groups, photos)
    view().fleet.changed()
    log.info("hub: %s put Id %s on the fleet's watchlist (version %d)", g.user.name, person_id, revision)
    audit("fleet record put", person_id, photos=len(photos or ()))
    flash(f"Id {person_id} saved; the devices fetch version {revision}.")
    return redirect(url_for("hub.watchlist"))


@bp.post("/watchlist/<person_id>/remove")
@admin_only
def remove_person(person_id: str) -> Response:
    if not view().store.remove_person(person_id):
        abort(404, "no such person on the fleet's watchlist")
    view().fleet.changed()
    log.info("hub: %s removed Id %s from the fleet's watchlist", g.user.name, person_id)
    audit("fleet record removed", person_id)
    flash(f"Id {person_id} removed; the devices drop it.")
    return redirect(url_for("hub.watchlist"))


@bp.route("/api/watchlist")
def watchlist_bundle() -> Response:
    """A device's signed bundle, for its bearer token (outside sessions and CSRF)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    bundle = view().fleet.bundle(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if bundle is None:
        if REFUSALS_LOGGED.due(str(request.remote_addr)):
            log.warning(
                "hub: refused a watchlist request from %s: missing or wrong token", request.remote_addr
            )
        abort(401, "missing or wrong token")
    return Response(bundle, mimetype="application/json")


@bp.route("/thumbnail/<event_id>")
def event_thumbnail(event_id: str) -> Response:
    """The thumbnail of an event's capture, fetched when the event was stored."""
    data = view().store.thumbnail(event_id)
    if data is None:
        abort(404, "no thumbnail of this event")
    return Response(data, mimetype="image/jpeg")
