"""What goes on the broker: the topics of one device and the JSON of an event (`event.schema.json`).

An event's `event_id` is stable (the same event published twice has the same
id, so consumers drop duplicates) and its `seq` counts up per device (so
consumers see gaps).  The id is derived from the device, the seq and the time
of the event: a new event log that starts its seq again gives new ids.  Never
a phone number or a deposit: a person is their Id, Name and category only.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...events.event import Event

SCHEMA_VERSION = 1
ID_SPACE = uuid.UUID("6b1f3f0e-2a52-4a8f-9a7c-0e6d7c1e2b3a")  # the namespace of every event_id
SCHEMA_FILE = Path(__file__).with_name("event.schema.json")


@dataclass(frozen=True)
class Topics:
    """The topics of one device under its prefix."""

    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    def camera(self, camera: str, what: str) -> str:
        """A camera's topic: events, people, crowd, last_known, last_unknown, last_unknown/url, .../image."""
        return f"{self.prefix}/{camera}/{what}"

    def last_seen(self, person_id: str) -> str:
        return f"{self.prefix}/watchlist/{slug(person_id)}/last_seen"


def slug(text: str) -> str:
    """Text as one topic level and as part of a Home Assistant id: [A-Za-z0-9_-] only."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


def event_id(device: str, event: Event) -> str:
    return str(uuid.uuid5(ID_SPACE, f"{device}/{event.seq}/{event.time!r}"))


def iso_time(when: float) -> str:
    """ISO 8601 in the device's time zone, with its offset."""
    return datetime.fromtimestamp(when, timezone.utc).astimezone().isoformat(timespec="milliseconds")


def event_payload(event: Event, device: str, capture_url: str | None = None) -> dict[str, Any]:
    """The JSON of one stored event (it has its seq)."""
    if event.seq is None:
        raise ValueError("only events from the event log (with their seq) are published")
    person = None
    if event.person_id:
        person = {"id": event.person_id, "name": event.name, "category": event.category}
    return {
        "schema": SCHEMA_VERSION,
        "event_id": event_id(device, event),
        "seq": event.seq,
        "device": device,
        "camera": event.camera,
        "location": {"name": event.location, "latitude": event.latitude, "longitude": event.longitude},
        "type": event.type,
        "time": iso_time(event.time),
        "person": person,
        "distance": None if event.distance is None else round(event.distance, 4),
        "match": event.extra.get("match"),
        "mask": False if event.type == "no_mask" else None,
        "count": event.extra.get("count"),
        "visitor": event.extra.get("visitor"),
        "stranger": event.extra.get("stranger"),
        "minutes": event.extra.get("minutes"),
        "visits": [iso_time(v) for v in event.extra["visits"]] if event.extra.get("visits") else None,
        "capture_url": capture_url,
        **(_erased(event, device) if event.type == "erased" else {}),
    }


def _erased(event: Event, device: str) -> dict[str, Any]:
    """What an `erased` event names: the erased captures and the event_ids of the events stripped (their
    personal fields are gone from the device: consumers drop what they keep of them)."""
    erased = [Event("erased", when, "", "", seq=seq) for seq, when in event.extra.get("events", ())]
    return {
        "erased": {
            "captures": list(event.extra.get("captures", ())),
            "event_ids": [event_id(device, e) for e in erased],
        }
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an event (`event.schema.json`), which consumers such as the hub check against."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
