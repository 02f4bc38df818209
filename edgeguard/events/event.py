"""What an event is: its fields, its types, and how it reads as text (logs, `edgeguard events`, texts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..common.event_types import CAMERA_EVENTS, DECISIONS, EVENT_TYPES, EventType

__all__ = ["CAMERA_EVENTS", "DECISIONS", "EVENT_TYPES", "Event", "EventType"]


@dataclass(frozen=True)
class Event:
    type: str  # an EventType; events read back from the event log hold its plain string
    time: float
    camera: str
    location: str
    latitude: float | None = None
    longitude: float | None = None
    person_id: str | None = None
    name: str | None = None
    category: str | None = None
    distance: float | None = None
    capture: str | None = None
    frame: int | None = None
    pos_ms: float | None = None
    track: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None  # set once stored

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["id"] = out.pop("person_id")
        out["time_iso"] = (
            datetime.fromtimestamp(self.time, timezone.utc).astimezone().isoformat(timespec="seconds")
        )
        return out

    def subject(self) -> str:
        """Who or what the event is about: "Ana Lima (Id 7, wanted)", "unknown person", "3 people".

        Never a phone number or a deposit: only the Name, Id and category of the person.
        """
        if self.type == EventType.CROWD:
            return f"{self.extra.get('count', '?')} people"
        if self.type in CAMERA_EVENTS:
            return f"camera {self.camera}"
        if self.type == EventType.RETURN_VISIT:
            return f"stranger {self.extra.get('stranger', '?')}"
        if self.type == EventType.ERASED:
            return (
                f"Id {self.person_id}"
                if self.person_id
                else "capture " + ", ".join(self.extra.get("captures", ()))
            )
        if self.person_id:
            return f"{self.name} (Id {self.person_id}{', ' + self.category if self.category else ''})"
        return "unknown person"

    def summary(self) -> str:
        """One line for logs and listings: type, subject, frame of the footage, capture or revisit."""
        frame = f" frame {self.frame}" if self.pos_ms is not None else ""
        if self.extra.get("revisit"):
            return f"{self.type} {self.subject()}{frame} (visitor {self.extra.get('visitor')} again)"
        if self.type == EventType.LOITERING:
            return f"{self.type} {self.subject()}{frame} in view {self.extra.get('minutes')} min"
        if self.type == EventType.RETURN_VISIT:
            return f"{self.type} {self.subject()}{frame} visit {len(self.extra.get('visits', []))}"
        capture = f" capture {self.capture}" if self.capture else ""
        return f"{self.type} {self.subject()}{frame}{capture}"
