"""What the hub takes from the broker: each device's events (a shared subscription, so hub processes share
them) and availability, checked, then stored by a writer thread in batches.

A message is acknowledged to the broker (manual PUBACK) only once its event is in the database, so a hub
that dies or whose database is away loses nothing: the broker delivers it again, and the event_id key keeps
it once.  Bad input (not JSON, another schema version, a missing or wrong field, a device publishing under
another device's topic, a payload over `[hub] max_event_kb`) is logged in one line (at most once a minute
per device and reason) and skipped; the rest flows.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from ..common.ratelimit import EveryMinute
from ..outputs.mqtt.schema import SCHEMA_VERSION, json_schema
from .store import HubStore, event_row

log = logging.getLogger(__name__)

EVENTS_FILTER = "edgeguard/+/events"
AVAILABILITY_FILTER = "edgeguard/+/availability"
BATCH = 500  # messages stored in one transaction at most
RETRY_MIN, RETRY_MAX = 0.5, 30.0  # seconds between attempts while the database fails


class BadEvent(ValueError):
    """Why a message is not an event the hub stores."""


class EventCheck:
    """One message against the event JSON Schema and its topic."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._validator = Draft202012Validator(
            json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
        )

    def event(self, topic: str, payload: bytes) -> dict[str, Any]:
        if len(payload) > self.max_bytes:
            raise BadEvent(f"{len(payload)} bytes, more than [hub] max_event_kb ({self.max_bytes // 1024})")
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise BadEvent(f"not JSON ({exc.__class__.__name__})") from None
        if not isinstance(event, dict):
            raise BadEvent("not a JSON object")
        if event.get("schema") != SCHEMA_VERSION:
            raise BadEvent(f"schema version {str(event.get('schema'))[:20]}; this hub reads {SCHEMA_VERSION}")
        error = best_match(self._validator.iter_errors(event))
        if error is not None:
            raise BadEvent(f"{error.json_path}: {error.message[:160]}")
        if event["device"] != topic_device(topic):
            raise BadEvent(f"device {event['device']!r} in a message under another device's topic")
        return event


def topic_device(topic: str) -> str:
    """The device level of edgeguard/<device>/..."""
    parts = topic.split("/")
    return parts[1] if len(parts) > 2 else ""


@dataclass
class Counts:
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def text(self) -> str:
        return f"{self.stored} events stored, {self.duplicates} duplicates, {self.skipped} skipped"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received: float


class Ingest:
    """The writer thread: messages in (from paho's thread, never waiting), rows out, then `ack(mid, qos)`;
    `stored` is given the rows new in the database (it must not wait)."""

    def __init__(
        self,
        store: HubStore,
        check: EventCheck,
        ack: Callable[[int, int], None],
        clock: Callable[[], float] = time.time,
        stored: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
    ) -> None:
        self.store = store
        self.stored = stored  # told of the newly stored events' rows (the thumbnails)
        self.check = check
        self.ack = ack
        self.clock = clock
        self.counts = Counts()
        self._queue: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._logged = EveryMinute()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Store what has arrived, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._stopping.set()

    def on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        """paho's on_message: hand the message over."""
        self._queue.put(Message(message.topic, message.payload, message.mid, message.qos, self.clock()))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            while first is not None and len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    first = None
                else:
                    batch.append(more)
            if batch:
                self._store(batch)
            if first is None:
                return

    def _store(self, batch: list[Message]) -> None:
        """Store a batch, retrying while the database fails (nothing is acknowledged until stored)."""
        delay = RETRY_MIN
        while True:
            try:
                self.handle(batch)
                break
            except Exception as exc:  # the database is away or failing: keep the batch, try again
                if self._logged.due(f"db {type(exc).__name__}"):
                    log.error("hub: cannot store %d messages (%s); retrying", len(batch), _short(exc))
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, RETRY_MAX)
        for message in batch:
            if message.qos:
                self.ack(message.mid, message.qos)

    def handle(self, batch: list[Message]) -> None:
        """Availability to the devices table, checked events to the events table (bad ones logged)."""
        rows = []
        for message in batch:
            if message.topic.endswith("/availability"):
                self._availability(message)
                continue
            try:
                event = self.check.event(message.topic, message.payload)
            except BadEvent as exc:
                self._skip(message, str(exc))
                continue
            rows.append(event_row(event, message.received))
        new_rows: list[dict[str, Any]] = []
        new = self.store.add_events(rows, new_rows) if rows else 0
        self.stored(new_rows)
        with self.counts.lock:
            self.counts.stored += new
            self.counts.duplicates += len(rows) - new

    def _availability(self, message: Message) -> None:
        state = message.payload.decode("utf-8", "replace")
        device = topic_device(message.topic)
        if state not in ("online", "offline") or not device:
            self._skip(message, "availability is neither online nor offline")
            return
        self.store.set_availability(device, state == "online", message.received)

    def _skip(self, message: Message, reason: str) -> None:
        with self.counts.lock:
            self.counts.skipped += 1
        device = topic_device(message.topic)[:64]
        if self._logged.due(f"{device} {reason.split(' ')[0]}"):
            log.warning("hub: skipped a message on %s: %s", message.topic[:200], reason)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
