"""Wrong names, corrected: `edgeguard feedback EVENT --not-person | --is ID`, and the dashboard's buttons.

"Not this person" on a known_face event keeps the encodings of its face (the
samples that voted for the name, saved in the capture's sidecar by
edgeguard.events.recorder) as negatives of the person it named
(edgeguard.watchlist.negatives): a later face nearer to one of them than to
that person's photos is no longer named as them.  "This is X" adds the
event's capture as a photo of X (edgeguard.review.capture_enrol, as `edgeguard
enroll --from-capture` does) and, on a known_face event that named someone
else, also keeps the negative for the wrongly named person.

The event is read from the event log, its face from the capture: the face
the dashboard shows for the event.  A no_mask event is followed to the event
that decided who its face is (they share the capture).  Anything that cannot
be done is refused with the reason, before anything is written.  The running
daemon notices the new negative or photo and reloads its watchlist.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..config import Config
from ..events.event import DECISIONS, Event, EventType
from ..faces.encode import ENCODING_SIZE
from ..faces.engine import FaceEngine
from ..store.event_log import EventFilter
from ..store.face_captures import Capture, CaptureError, CaptureFolder, CaptureGone, SidecarDamaged
from ..watchlist.details import VALID_ID, read_details
from ..watchlist.enrol import EnrolError
from ..watchlist.negatives import (
    Negative,
    NegativesError,
    add_negative,
    folder_of,
    read_negatives,
    remove_negative,
)
from .capture_enrol import enrol_from_capture


class FeedbackError(Exception):
    """The correction cannot be made; the message names the event and says why.  Nothing was changed."""


class Events(Protocol):
    """What feedback reads of the event log: edgeguard.store.event_log.EventLog or EventReader."""

    def get(self, seq: int) -> Event | None: ...

    def search(self, filters: EventFilter, offset: int = 0, limit: int = 50) -> tuple[list[Event], int]: ...


@dataclass
class FeedbackResult:
    event: Event  # the decision acted on (for a no_mask event, the event that decided who its face is)
    done: list[str] = field(default_factory=list)  # what was done (or found done already), a sentence each
    refused: str = ""  # why the capture could not be added as a photo (the rest was done)
    changed: bool = False  # whether a negative or a photo was added or removed: the watchlist must reload


def not_person(config: Config, events: Events, seq: int, by: str = "command line") -> FeedbackResult:
    """The known_face event `seq` named the wrong person: keep its face as a negative of that person."""
    notes: list[str] = []
    event = _decision(events, seq, notes)
    if event.type != EventType.KNOWN_FACE or not event.person_id:
        raise FeedbackError(
            f"event {event.seq} is an {event.type} event: it names nobody; to say who it is, use --is ID"
        )
    _on_watchlist(config, event.person_id, f"event {event.seq} named Id {event.person_id}, who")
    negative = _negative(config, events, event, by, notes)
    result = FeedbackResult(event, notes)
    _keep(config, event, negative, result)
    return result


def is_person(
    config: Config, engine: FaceEngine, events: Events, seq: int, person_id: str, by: str = "command line"
) -> FeedbackResult:
    """The face of event `seq` is `person_id`: its capture becomes a photo of them; a known_face event
    that named someone else also becomes a negative of that person."""
    notes: list[str] = []
    event = _decision(events, seq, notes)
    _on_watchlist(
        config,
        person_id,
        "Id " + person_id,
        f"; add them first: edgeguard enroll {person_id} --name NAME "
        f"--from-capture {_capture_hint(config, event)}",
    )
    if event.type == EventType.KNOWN_FACE and event.person_id == person_id:
        raise FeedbackError(
            f"event {event.seq} names Id {person_id} already; to add its capture as a further "
            f"photo, use edgeguard enroll {person_id} --from-capture {_capture_hint(config, event)}"
        )
    capture = _capture(config, event).face
    negative = None
    if event.type == EventType.KNOWN_FACE and event.person_id:
        negative = _negative(config, events, event, by, notes)
        try:
            read_negatives(
                folder_of(config), event.person_id
            )  # a damaged file is refused before the photo is added
        except NegativesError as exc:
            raise FeedbackError(f"event {event.seq}: {exc}; nothing was changed") from None
    try:
        photo = enrol_from_capture(config, engine, person_id, capture)
    except EnrolError as exc:
        raise FeedbackError(f"event {event.seq}: {exc}") from None
    result = FeedbackResult(event, notes)
    if photo.added:
        result.changed = True
        result.done.append(
            f"event {event.seq}: its capture is now a photo of Id {person_id} ({photo.added[0].name})"
        )
    else:
        result.refused = (
            f"event {event.seq}: the capture could not be added as a photo of Id {person_id}: "
            f"{photo.refused[0][1]}"
        )
    if negative is not None:
        _keep(config, event, negative, result)
    if remove_negative(folder_of(config), person_id, int(event.seq or 0)):
        result.changed = True
        result.done.append(
            f"event {event.seq}: the earlier correction that it was not Id {person_id} is withdrawn"
        )
    return result


def _decision(events: Events, seq: int, notes: list[str]) -> Event:
    """Event `seq` if it decided who a face is; a no_mask event's deciding event; else FeedbackError."""
    event = events.get(seq)
    if event is None:
        raise FeedbackError(f"there is no event {seq} in the event log")
    if event.type in DECISIONS:
        return event
    if event.type != EventType.NO_MASK:
        raise FeedbackError(
            f"event {seq} is a {event.type} event: only a known_face or unknown_face event "
            "(or a no_mask event, through its face) names a face"
        )
    if not event.capture:
        raise FeedbackError(
            f"event {seq} (no_mask) has no capture, so the event that decided who it is "
            "cannot be found; correct that known_face or unknown_face event instead"
        )
    found, _ = events.search(EventFilter(types=DECISIONS, capture=event.capture), 0, 50)
    earlier = [e for e in found if e.seq is not None and e.seq < seq]
    same_track = [e for e in earlier if e.track == event.track]
    if not (same_track or earlier):
        raise FeedbackError(
            f"event {seq} (no_mask): the event that decided who this face is is no longer in the event log"
        )
    decision = (same_track or earlier)[0]
    notes.append(
        f"event {seq} (no_mask) is the bare face of event {decision.seq} ({decision.type}); "
        f"correcting event {decision.seq}"
    )
    return decision


def _on_watchlist(config: Config, person_id: str, who: str, hint: str = "") -> None:
    if not VALID_ID.match(person_id):
        raise FeedbackError(f"Id {person_id!r} is not a watchlist Id (letters, digits, _ . - only)")
    people, _ = read_details(config.paths.details_csv)
    folder = config.paths.training_images / person_id
    if person_id not in people and not (folder.is_dir() and not folder.is_symlink()):
        raise FeedbackError(
            f"{who} is not on the watchlist (no row in {config.paths.details_csv}, no folder {folder}/){hint}"
        )


def _capture_hint(config: Config, event: Event) -> str:
    capture = CaptureFolder.of_config(config).of(event.capture)
    return str(capture.face) if capture else "FILE"


def _capture(config: Config, event: Event) -> Capture:
    """The event's capture, in the site's captures folder; FeedbackError if it has none."""
    if not event.capture:
        why = event.extra.get("capture_error")
        if why:
            reason = f"its capture could not be saved ({why})"
        elif event.type == EventType.KNOWN_FACE:
            reason = (
                f"sightings of category {event.category or '(none)'!r} are not captured ([captures] "
                "known_categories; quiet categories never are)"
            )
        else:
            reason = "none was saved"
        raise FeedbackError(f"event {event.seq} has no capture to learn from: {reason}")
    capture = CaptureFolder.of_config(config).of(event.capture)
    if capture is None:
        raise FeedbackError(f"event {event.seq}: {event.capture} is not the face image of a capture")
    try:
        capture.check()
    except CaptureGone:
        raise FeedbackError(
            f"event {event.seq}: its capture {capture.face.name} is gone from {config.paths.captures} "
            "(captures are deleted after [captures] retention_days or beyond max_mb)"
        ) from None
    except CaptureError as exc:
        raise FeedbackError(f"event {event.seq}: its capture cannot be used: {exc}") from None
    return capture


def _negative(config: Config, events: Events, event: Event, by: str, notes: list[str]) -> Negative:
    """The event's face as a negative: the encodings in its capture's sidecar."""
    capture = _capture(config, event)
    face, sidecar = capture.face, capture.sidecar
    try:
        meta = capture.sidecar_data()
    except CaptureGone:
        raise FeedbackError(
            f"event {event.seq}: its capture {face.name} has no sidecar {sidecar.name}"
        ) from None
    except SidecarDamaged as exc:
        raise FeedbackError(
            f"event {event.seq}: the sidecar {sidecar} of its capture is damaged ({exc})"
        ) from None
    except CaptureError as exc:
        raise FeedbackError(f"event {event.seq}: the sidecar {sidecar} of its capture: {exc}") from None
    if "encodings" not in meta:
        raise FeedbackError(
            f"event {event.seq}: its capture {face.name} was saved without the face's encodings "
            "(by an EdgeGuard from before feedback); it cannot be used as a negative"
        )
    try:
        encodings = np.array(meta["encodings"], dtype=np.float64)
    except (TypeError, ValueError):
        encodings = np.zeros((0, 0))
    if (
        encodings.ndim != 2
        or encodings.shape[1:] != (ENCODING_SIZE,)
        or not len(encodings)
        or not np.isfinite(encodings).all()
    ):
        raise FeedbackError(
            f"event {event.seq}: the sidecar {sidecar} of its capture is damaged "
            f"(its encodings are not lists of {ENCODING_SIZE} numbers)"
        )
    person = meta.get("person") if isinstance(meta.get("person"), dict) else {}
    if person.get("id") != event.person_id:
        shows = f"a sighting of Id {person.get('id')}" if person.get("id") else "an unknown face"
        raise FeedbackError(
            f"event {event.seq}: its capture {face.name} shows {shows}, not Id {event.person_id}"
        )
    first, _ = events.search(EventFilter(capture=event.capture, types=DECISIONS), 0, 50)
    maker = min((e.seq for e in first if e.seq is not None), default=event.seq)
    if maker != event.seq:
        notes.append(
            f"event {event.seq} shows the capture made at event {maker} (the same sighting): "
            "the face in that capture is the one learned from"
        )
    return Negative(int(event.seq or 0), event.time, time.time(), by, face.name, encodings.astype(np.float32))


def _keep(config: Config, event: Event, negative: Negative, result: FeedbackResult) -> None:
    """Store the negative of the wrongly named person, and say what was done."""
    assert event.person_id is not None
    who = f"{event.name} (Id {event.person_id})"
    folder = folder_of(config)
    try:
        known = read_negatives(folder, event.person_id)
        twin = next((n for n in known if n.capture == negative.capture and n.event != negative.event), None)
        if twin is not None:
            result.done.append(
                f"event {event.seq}: the face of its capture is a negative for {who} already "
                f"(from event {twin.event})"
            )
            return
        if not add_negative(folder, event.person_id, negative):
            result.done.append(f"event {event.seq}: its face is a negative for {who} already")
            return
    except NegativesError as exc:
        raise FeedbackError(f"event {event.seq}: {exc}; nothing was changed") from None
    result.changed = True
    result.done.append(
        f"event {event.seq}: {len(negative.encodings)} sample(s) of its face kept as a negative for "
        f"{who}: a face nearer to these than to the photos of Id {event.person_id} is no longer "
        f"named {event.name}"
    )
