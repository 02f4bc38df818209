"""The kinds of event, one list for every stage: the pipeline's decisions, the events rules, the event log,
the alert routes (validated by config.py, which is why this sits in common/), the texts and the dashboard.

`EventType` is a `StrEnum`: a member is the very string that is stored in the
event log, written in JSON and in the config's `[[alerts.route]] events`, and
it compares equal to that string, so events read back from the log (plain
strings) and events made now (members) are alike.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    UNKNOWN_FACE = "unknown_face"  # a face the vote decided is nobody on the watchlist
    KNOWN_FACE = "known_face"  # a face the vote decided is a watchlist person
    CROWD = "crowd"  # more people in view than the camera's max_people, for crowd_min_seconds
    NO_MASK = "no_mask"  # a decided face whose mask vote says bare
    CAMERA_DOWN = "camera_down"  # a camera without frames for camera_down_seconds
    CAMERA_UP = "camera_up"  # its frames came back
    LOITERING = "loitering"  # a face (known or not) in view of one camera longer than its loiter_minutes
    RETURN_VISIT = (
        "return_visit"  # a stranger seen on return_visits separate visits within return_window_days
    )
    ERASED = (
        "erased"  # a person or a capture erased on request (edgeguard forget): outputs drop what they hold
    )

    @property
    def is_decision(self) -> bool:
        """Whether the event decided who a face is (what feedback can correct)."""
        return self in DECISIONS

    @property
    def is_camera(self) -> bool:
        """Whether the event is about a camera rather than about people."""
        return self in CAMERA_EVENTS


# The stored strings, in the order the CLI, the config's help and the dashboard list them.
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
# The events that decided who a face is: the ones feedback corrects, and whose capture a no_mask event shares.
DECISIONS: tuple[EventType, ...] = (EventType.KNOWN_FACE, EventType.UNKNOWN_FACE)
CAMERA_EVENTS: tuple[EventType, ...] = (EventType.CAMERA_DOWN, EventType.CAMERA_UP)
# What an alert route may send: every type but an erasure, which is for outputs that keep data, never a text.
ROUTE_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != EventType.ERASED)
