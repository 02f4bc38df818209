"""Live updates: each new event pushed to the browsers that have the overview or the detection log open
(server-sent events; the browser reconnects by itself).  An output of the event bus, like the alerter, and not
a durable one (a page that reloads shows what it missed): its worker appends to each client's small queue;
each stream renders what it sends on its own worker (web/streams.py: the event's row, for that stream's
viewer)."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterator

from ..events.event import Event
from ..outputs.base import Output
from ..store.face_captures import capture_id
from .slots import Slots

MAX_CLIENTS = 16
# Streams one user may hold: a few tabs of the overview and the detection log; four users can always have one.
STREAMS_PER_USER = 4
QUEUE = 100  # events kept per client between two reads; older ones are dropped (the page reloads them)
LINE_END = re.compile(r"\r\n|\r|\n")
HEARTBEAT = 15.0  # seconds between keep-alive comments, so proxies and browsers keep the stream open


class EventHub(Output):
    name = "dashboard"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: list[deque[dict]] = []
        self._slots = Slots(MAX_CLIENTS, STREAMS_PER_USER)
        self._closed = False

    def handle(self, event: Event) -> None:
        """Hand the event to every open stream."""
        self.publish(event_json(event))

    def publish(self, data: dict) -> None:
        """Hand what a page shows of an event to every open stream (the hub's rows come this way)."""
        with self._cond:
            for queue in self._queues:
                queue.append(data)
            self._cond.notify_all()

    def watching(self) -> bool:
        """Whether any stream is open."""
        with self._cond:
            return bool(self._queues)

    def stream(
        self,
        user: str,
        stop: threading.Event,
        render: Callable[[dict], str],
        wanted: Callable[[dict], bool] = lambda item: True,
    ) -> Iterator[str]:
        """The text of a server-sent event stream for `user`, each event (`event_json`) that is `wanted` as
        `render` makes it; SlotsFull when MAX_CLIENTS are connected or the user holds STREAMS_PER_USER
        already."""
        self._slots.take(user)
        queue: deque[dict] = deque(maxlen=QUEUE)
        with self._cond:
            self._queues.append(queue)
        return self._run(user, queue, stop, render, wanted)

    def _run(
        self,
        user: str,
        queue: deque[dict],
        stop: threading.Event,
        render: Callable[[dict], str],
        wanted: Callable[[dict], bool],
    ) -> Iterator[str]:
        try:
            yield "retry: 1000\n\n"
            while not (stop.is_set() or self._closed):
                with self._cond:
                    self._cond.wait_for(
                        lambda: bool(queue) or stop.is_set() or self._closed, timeout=HEARTBEAT
                    )
                    items = list(queue)
                    queue.clear()
                if not items:
                    yield ": keep-alive\n\n"
                for item in items:
                    if wanted(item):
                        yield server_sent("row", render(item))
        finally:
            with self._cond:
                # by identity: deques compare by content, and list.remove would take another stream's
                # (equally empty) queue, leaving this one to fail later
                self._queues = [q for q in self._queues if q is not queue]
            self._slots.give_back(user)

    def stop(self, drain_seconds: float = 0.0) -> None:
        self.close()

    def close(self) -> None:
        """End every stream now (the daemon is stopping): their worker threads are free at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def server_sent(name: str, text: str) -> str:
    """One server-sent event: its name and its text, every line of it a data line (the browser joins them
    with newlines; only CR and LF end a line in the protocol, so other line separators stay as they are)."""
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in LINE_END.split(text)) + "\n"


def event_json(event: Event) -> dict:
    """What a page shows of an event: never a phone number (events carry none), nor a path."""
    out = event.to_json()
    out["subject"] = event.subject()
    out["capture_id"] = capture_id(out.pop("capture", None))
    out.get("extra", {}).pop("frame_image", None)
    return out
