"""`edgeguard events --follow --mqtt`: the events of every device on a broker, each once.

Delivery is at least once, so a consumer drops an event whose `event_id` it has seen; it reports a gap when
a device's `seq` jumps (not with `--group`: then each consumer of the shared subscription sees only its
share).  With a group the subscription is `$share/<group>/<filter>`: the broker hands each event to one of
the group's consumers, so several of them divide a fleet's events between them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ...config import MqttConfig
from .client import Connection

log = logging.getLogger(__name__)

REMEMBERED = 100_000  # event ids kept for de-duplication
DEFAULT_FILTER = "edgeguard/+/events"


class Deduplicator:
    """Which events were seen (by event_id, the newest REMEMBERED), and each device's highest seq."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.last_seq: dict[str, int] = {}

    def first_time(self, event: dict[str, Any]) -> bool:
        key = event["event_id"]
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        return True

    def gap(self, event: dict[str, Any]) -> tuple[int, int] | None:
        """The seqs (first, last) missing before this event of its device, if any."""
        device, seq = event["device"], event["seq"]
        last = self.last_seq.get(device)
        self.last_seq[device] = max(seq, last or 0)
        if last is not None and seq > last + 1:
            return last + 1, seq - 1
        return None


def subscription(topic_filter: str, group: str | None) -> str:
    return f"$share/{group}/{topic_filter}" if group else topic_filter


def follow(
    config: MqttConfig,
    emit: Callable[[dict[str, Any]], None],
    stop: threading.Event,
    topic_filter: str = DEFAULT_FILTER,
    group: str | None = None,
    gap: Callable[[str, int, int], None] | None = None,
) -> None:
    """Print (`emit`) each event once until `stop`; `gap(device, first, last)` for missing seqs."""
    seen = Deduplicator()
    lock = threading.Lock()
    topic = subscription(topic_filter, group)

    def on_message(_client: Any, _userdata: Any, message: Any) -> None:
        try:
            event = json.loads(message.payload)
            fresh = isinstance(event, dict) and "event_id" in event
        except ValueError:
            fresh = False
        if not fresh:
            log.warning("mqtt: not an EdgeGuard event on %s; skipped", message.topic)
            return
        with lock:
            if not seen.first_time(event):
                return
            missing = None if group else seen.gap(event)
        if missing and gap is not None:
            gap(event["device"], *missing)
        emit(event)

    client_id = f"edgeguard-events-{socket.gethostname()[:20]}-{os.getpid()}"
    connection = Connection(config, client_id, persistent=False)
    connection.on_connected = lambda: connection.client.subscribe(topic, qos=1)
    connection.client.on_message = on_message
    connection.start()
    try:
        stop.wait()
    finally:
        connection.stop()


def event_line(event: dict[str, Any]) -> str:
    """One line for people: device, seq, time, camera, type and who."""
    person = event.get("person") or {}
    who = person.get("name") or (f"{event['count']} people" if event.get("count") else "")
    line = f"{event['device']} {event['seq']:>5} {event['time']} {event['camera']} {event['type']} {who}"
    return line.rstrip()
