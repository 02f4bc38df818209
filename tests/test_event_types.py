"""Tests for edgeguard.common.event_types: the one list of event types, its stored strings and its groups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeguard.common.event_types import CAMERA_EVENTS, DECISIONS, EVENT_TYPES, EventType
from edgeguard.config import DEFAULT_ROUTE_EVENTS, load_config
from edgeguard.configfile.reading import ConfigError
from edgeguard.events import event as event_module
from edgeguard.events.event import Event
from edgeguard.store.event_log import EventFilter, EventLog

STORED = (
    "unknown_face",
    "known_face",
    "crowd",
    "no_mask",
    "camera_down",
    "camera_up",
    "loitering",
    "return_visit",
    "erased",
)


def test_the_stored_strings_are_the_ones_the_event_log_has_always_held():
    assert EVENT_TYPES == STORED
    assert all(type(t) is str for t in EVENT_TYPES)  # plain strings for the CLI's and the config's choices


@pytest.mark.parametrize("text", STORED)
def test_every_stored_string_round_trips(text):
    member = EventType(text)
    assert member == text and member.value == text
    assert str(member) == text and f"{member}" == text
    assert json.dumps({"type": member}) == json.dumps({"type": text})


@pytest.mark.parametrize("member", list(EventType))
def test_every_type_round_trips_through_the_event_log(tmp_path: Path, member: EventType):
    log = EventLog(tmp_path / "events.db")
    try:
        log.append(Event(type=member, time=1_790_000_000.0, camera="gate", location="Front Gate"))
        [stored], total = log.search(EventFilter(types=(member,)), 0, 10)
    finally:
        log.close()
    assert total == 1 and stored.type == member and stored.type == member.value
    assert stored.to_json()["type"] == member.value


def test_decisions_are_the_face_decisions_only():
    assert set(DECISIONS) == {EventType.KNOWN_FACE, EventType.UNKNOWN_FACE}
    assert [t for t in EventType if t.is_decision] == [EventType.UNKNOWN_FACE, EventType.KNOWN_FACE]
    assert "known_face" in DECISIONS and "no_mask" not in DECISIONS  # plain strings from the log compare too


def test_camera_events_are_down_and_up():
    assert set(CAMERA_EVENTS) == {EventType.CAMERA_DOWN, EventType.CAMERA_UP}
    assert [t for t in EventType if t.is_camera] == [EventType.CAMERA_DOWN, EventType.CAMERA_UP]


def test_the_events_stage_re_exports_the_one_list():
    assert event_module.EventType is EventType
    assert event_module.EVENT_TYPES is EVENT_TYPES and event_module.DECISIONS is DECISIONS


def test_routes_accept_every_type_and_refuse_others(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("EDGEGUARD_CONFIG", raising=False)
    path = tmp_path / "c.toml"
    routable = tuple(
        t for t in STORED if t != "erased"
    )  # an erasure is for outputs that keep data, not texts
    types = ", ".join(f'"{t}"' for t in routable)
    path.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n[[alerts.route]]\nevents = [{types}]\n')
    assert load_config(path).alerts.route[0].events == routable
    path.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n[[alerts.route]]\nevents = ["erased"]\n')
    with pytest.raises(ConfigError):
        load_config(path)
    assert DEFAULT_ROUTE_EVENTS == ("unknown_face", "known_face", "crowd")
    path.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n[[alerts.route]]\nevents = ["known_faces"]\n')
    with pytest.raises(ConfigError, match="must be one of 'unknown_face', 'known_face', 'crowd'"):
        load_config(path)
