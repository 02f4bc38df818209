"""Home Assistant's MQTT device discovery: one retained message at
`<discovery_prefix>/device/<device_id>/config` with the device (`dev`), the origin (`o`), the
availability topic and every entity under `cmps`.

Per camera: a binary sensor "person in view" and a sensor "people in view" (when the daemon reports people
in view), a binary sensor "crowd", an event entity with the alerts, and an image entity with the last unknown
face (its signed link on `url_topic` when links are made, its bytes on `image_topic` only when
`[mqtt] face_images` allows them).  Per watchlist person of `[mqtt] person_categories`: a "last seen"
timestamp sensor with the location and camera as attributes.  A component that was announced before and is
gone now (a camera or person removed) is announced once more with only its platform, which is how Home
Assistant removes one component of a device (device-based discovery needs Home Assistant 2024.11 or later).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import edgeguard

from ...config import CameraConfig
from ...watchlist.details import Person
from .schema import Topics, slug

VERSION = edgeguard.__version__
# The event entity's types: the alerts (camera_up is listed too, so that Home Assistant takes every event).
EVENT_TYPES = ["unknown_face", "known_face", "no_mask", "crowd", "camera_down", "camera_up"]
PERSON_OFF_DELAY = 30  # seconds: "person in view" turns off unless the count is published again (every 10 s)
# The event entity's payload: Home Assistant wants the type under event_type; the rest become attributes.
EVENT_TEMPLATE = (
    "{{ {'event_type': value_json.type, 'time': value_json.time, 'location': value_json.location.name, "
    "'person': value_json.person.name if value_json.person else none, "
    "'capture_url': value_json.capture_url} | tojson }}"
)


@dataclass(frozen=True)
class Announcement:
    """What the device offers Home Assistant; `image`: "url" (signed links), "image" (bytes) or ""."""

    device_id: str
    topics: Topics
    cameras: tuple[CameraConfig, ...]
    people_in_view: bool
    image: str
    people: tuple[Person, ...] = ()


def config_topic(discovery_prefix: str, device_id: str) -> str:
    return f"{discovery_prefix}/device/{device_id}/config"


def device_config(what: Announcement, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The discovery payload; components of `previous` (an earlier payload's cmps) that are gone now are
    listed with only their platform, so that Home Assistant removes them."""
    components: dict[str, Any] = {}
    for camera in what.cameras:
        components.update(_camera(what, camera))
    for person in what.people:
        components.update(_person(what, person))
    for key, old in (previous or {}).items():
        if key not in components and isinstance(old, dict) and len(old) > 1 and "p" in old:
            components[key] = {"p": old["p"]}
    return {
        "dev": {
            "ids": [f"edgeguard_{what.device_id}"],
            "name": f"EdgeGuard {what.device_id}",
            "mf": "EdgeGuard",
            "mdl": "face alert daemon",
            "sw": VERSION,
        },
        "o": {"name": "EdgeGuard", "sw": VERSION},
        "availability_topic": what.topics.availability,
        "qos": 1,
        "cmps": components,
    }


def chosen_people(people: Iterable[Person], categories: Iterable[str]) -> tuple[Person, ...]:
    wanted = set(categories)
    return tuple(sorted((p for p in people if p.category in wanted), key=lambda p: p.id))


def _camera(what: Announcement, camera: CameraConfig) -> dict[str, Any]:
    topics, key = what.topics, slug(camera.name)
    uid = f"edgeguard_{what.device_id}_{key}"
    out: dict[str, Any] = {}
    if what.people_in_view:
        people = topics.camera(camera.name, "people")
        out[f"{key}_person"] = {
            "p": "binary_sensor",
            "name": f"{camera.name} person in view",
            "device_class": "occupancy",
            "state_topic": people,
            "value_template": "{{ 'ON' if value | int(0) > 0 else 'OFF' }}",
            "off_delay": PERSON_OFF_DELAY,
            "unique_id": f"{uid}_person",
        }
        out[f"{key}_people"] = {
            "p": "sensor",
            "name": f"{camera.name} people in view",
            "state_topic": people,
            "state_class": "measurement",
            "unit_of_measurement": "people",
            "unique_id": f"{uid}_people",
        }
    out[f"{key}_crowd"] = {
        "p": "binary_sensor",
        "name": f"{camera.name} crowd",
        "state_topic": topics.camera(camera.name, "crowd"),
        "unique_id": f"{uid}_crowd",
    }
    out[f"{key}_alert"] = {
        "p": "event",
        "name": f"{camera.name} alert",
        "state_topic": topics.camera(camera.name, "events"),
        "event_types": EVENT_TYPES,
        "value_template": EVENT_TEMPLATE,
        "unique_id": f"{uid}_alert",
    }
    image = {"p": "image", "name": f"{camera.name} last unknown face", "unique_id": f"{uid}_last_unknown"}
    if what.image == "url":
        out[f"{key}_last_unknown"] = {**image, "url_topic": topics.camera(camera.name, "last_unknown/url")}
    elif what.image == "image":
        out[f"{key}_last_unknown"] = {
            **image,
            "image_topic": topics.camera(camera.name, "last_unknown/image"),
            "content_type": "image/jpeg",
        }
    return out


def _person(what: Announcement, person: Person) -> dict[str, Any]:
    key = f"person_{slug(person.id)}"
    topic = what.topics.last_seen(person.id)
    return {
        f"{key}_last_seen": {
            "p": "sensor",
            "name": f"{person.name} last seen",
            "device_class": "timestamp",
            "state_topic": topic,
            "value_template": "{{ value_json.time }}",
            "json_attributes_topic": topic,
            "unique_id": f"edgeguard_{what.device_id}_{key}_last_seen",
        }
    }
