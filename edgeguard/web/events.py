"""Live updates: each new event pushed to the browsers that have the overview or the detection log open
(server-sent events; the browser reconnects by itself).  An output of the event bus, like the alerter, and not
a durable one (a page that reloads shows what it missed): its worker appends to each client's small queue."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator

from ..events.event import Event
from ..outputs.base import Output

MAX_CLIENTS = 16
QUEUE = 100  # events kept per client between two reads; older ones are dropped (the page reloads them)
HEARTBEAT = 15.0  # seconds between keep-alive comments, so proxies and browsers keep the stream open


class EventHub(Output):
    name = "dashboard"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: list[deque[dict]] = []
        self._closed = False

    def handle(self, event: Event) -> None:
        """Hand the event to every open stream."""
        data = event_json(event)
        with self._cond:
            for queue in self._queues:
                queue.append(data)
            self._cond.notify_all()

    def stream(self, stop: threading.Event) -> Iterator[str] | None:
        """The text of a server-sent event stream, or None when MAX_CLIENTS are connected."""
        with self._cond:
            if len(self._queues) >= MAX_CLIENTS:
                return None
            queue: deque[dict] = deque(maxlen=QUEUE)
            self._queues.append(queue)
        return self._run(queue, stop)

    def _run(self, queue: deque[dict], stop: threading.Event) -> Iterator[str]:
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
                    yield f"event: edgeguard\ndata: {json.dumps(item)}\n\n"
        finally:
            with self._cond:
                self._queues.remove(queue)

    def stop(self, drain_seconds: float = 0.0) -> None:
        self.close()

    def close(self) -> None:
        """End every stream now (the daemon is stopping): their worker threads are free at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def event_json(event: Event) -> dict:
    """What a page shows of an event: never a phone number (events carry none)."""
    out = event.to_json()
    out["summary"] = event.subject()
    out["capture_name"] = out["capture"].rsplit("/", 1)[-1] if out.get("capture") else None
    out.pop("capture", None)
    out.get("extra", {}).pop("frame_image", None)
    return out
