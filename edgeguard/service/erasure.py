"""Erasure on request (`edgeguard forget`): a watchlist person, or one unknown visitor's capture, removed from
everything the device keeps, with a line for each thing removed.

A person: their photos, their negatives and their Details row (`watchlist/enrol.py`), their entries in the
encoding cache, their captures (those their events name and those whose sidecar names them), the personal
fields of their events (the events stay, as "erased person", so counts stay true) and the messages about
those events (pending ones deleted, sent ones blanked).  A capture: its files, the same for its events.
An Id or capture the device does not know is an `ErasureError` and nothing is changed.  The running daemon
reloads its watchlist from the folders as after any removal.

Last, an `erased` event goes into the event log (the Id or the capture ids, and the seq and time of the
events erased: nothing personal beyond the Id), which is how the erasure reaches every output: the event bus
hands it to them at once when the daemon runs (it takes up events other processes log), else at its next
start (durable outputs replay the event log from their cursor).  The MQTT output clears the person's
retained state and Home Assistant entities and tells consumers; the SMS output ignores it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..alerts.outbox import Outbox
from ..config import Config
from ..events.event import Event, EventType
from ..store.event_log import EventLog
from ..store.face_captures import BadCaptureId, Capture, CaptureFolder, parse_name
from ..store.strangers import open_strangers
from ..watchlist.details import VALID_ID, read_details
from ..watchlist.enrol import EnrolError, drop_unused_encodings, person_photos, remove_person


class ErasureError(ValueError):
    """Nothing to erase (an unknown Id or capture) or a bad request; nothing was changed."""


def forget_person(config: Config, person_id: str) -> list[str]:
    """Erase the watchlist person `person_id` everywhere (see the module docstring); what was removed."""
    if not VALID_ID.match(person_id):
        raise ErasureError(f"{person_id!r} is not a watchlist Id")
    row = _has_row(config, person_id)
    photos = person_photos(config, person_id)
    events = _events(config, lambda log: log.of_person(person_id))
    folder = CaptureFolder.of_config(config)
    captures = {c.id: c for c in folder.of_person(person_id)}
    captures.update({c.id: c for c in (folder.of(e.capture) for e in events) if c is not None})
    if not (row or photos or events or captures):
        raise ErasureError(
            f"no person with Id {person_id} (no row, photo, event or capture): nothing changed"
        )
    done = []
    try:
        remove_person(config, person_id)
    except EnrolError as exc:
        raise ErasureError(str(exc)) from None
    done.append(f"photos: {len(photos)} removed from {config.paths.training_images / person_id}")
    if row:
        done.append(f"Details row of Id {person_id} removed from {config.paths.details_csv}")
    done.append(f"encoding cache: {drop_unused_encodings(config)} entries removed")
    done += _erase(config, folder, list(captures.values()), events)
    if config.paths.strangers_db.exists():
        strangers = open_strangers(config)
        try:
            gone = strangers.forget_person(person_id)
        finally:
            strangers.close()
        done.append(f"strangers: {gone} sighting(s) of the stranger they were before enrolment removed")
    done.append(_tell_outputs(config, person_id, list(captures), events))
    return done


def forget_capture(config: Config, name: str | Path) -> list[str]:
    """Erase one capture (named by any of its files or its id) and its events' personal fields."""
    folder = CaptureFolder.of_config(config)
    try:
        capture = folder.get(_capture_id(Path(name).name))
    except BadCaptureId as exc:
        raise ErasureError(str(exc)) from None
    events = _events(config, lambda log: log.with_capture(capture.id))
    if not capture.exists() and not events:
        raise ErasureError(f"no capture {capture.id} in {folder.folder}: nothing changed")
    done = _erase(config, folder, [capture], events)
    done.append(_tell_outputs(config, None, [capture.id], events))
    return done


def _capture_id(name: str) -> str:
    try:
        return parse_name(name)[0]
    except BadCaptureId:
        return name  # an id as it is (checked by CaptureFolder.get)


def _has_row(config: Config, person_id: str) -> bool:
    try:
        people, _ = read_details(config.paths.details_csv)
    except FileNotFoundError:
        return False
    return person_id in people


def _events(config: Config, find: Callable[[EventLog], list[Event]]) -> list[Event]:
    """The events `find(log)` returns, or none without an event log (a device that never ran)."""
    if not config.paths.events_db.exists():
        return []
    log = EventLog(config.paths.events_db, sealer=config.sealer)
    try:
        return find(log)
    finally:
        log.close()


def _erase(config: Config, folder: CaptureFolder, captures: list[Capture], events: list[Event]) -> list[str]:
    """Delete the captures, strip the events, drop or blank their messages; what was done, line by line."""
    seqs = [e.seq for e in events if e.seq is not None]
    files = [name for capture in captures for name in folder.delete(capture)]
    done = [f"captures: {len(captures)} ({len(files)} files) removed from {folder.folder}"]
    if config.paths.strangers_db.exists():
        strangers = open_strangers(config)
        try:
            gone = strangers.forget_gone(folder.kept)
        finally:
            strangers.close()
        done.append(f"strangers: {gone} sighting(s) of the erased captures removed, with their encodings")
    if seqs:
        log = EventLog(config.paths.events_db, sealer=config.sealer)
        try:
            done.append(f"events: {log.erase(seqs)} kept as erased (who, capture and details removed)")
        finally:
            log.close()
    if seqs and config.paths.outbox_db.exists():
        outbox = Outbox(config.paths.outbox_db, sealer=config.sealer)
        try:
            deleted, blanked = outbox.forget_events(seqs)
        finally:
            outbox.close()
        done.append(f"messages: {deleted} pending deleted, {blanked} texts blanked")
    return done


def _tell_outputs(config: Config, person_id: str | None, captures: list[str], events: list[Event]) -> str:
    """Log the `erased` event that hands the erasure to every output (see the module docstring)."""
    erased = Event(
        type=EventType.ERASED,
        time=time.time(),
        camera="",
        location="",
        person_id=person_id,
        extra={"captures": sorted(captures), "events": [[e.seq, e.time] for e in events]},
    )
    log = EventLog(config.paths.events_db, sealer=config.sealer)
    try:
        seq = log.append(erased).seq
    finally:
        log.close()
    return f"outputs: erased event {seq} logged (MQTT clears the retained state and Home Assistant entities)"
