"""The event bus: every recorded event handed to every output, none of them able to hold up the cameras.

Flow: a camera's events stage writes the event to the event log, then calls
`EventBus.publish`, which only appends the event to each output's queue and
returns.  Each output has a worker thread of its own that hands it the events
in the event log's order; an exception in `handle` is logged (event seq and
type, the output's name) and the worker goes on with the next event, so a
slow or failing output delays neither the frame loop nor another output.

Nothing is dropped silently.  A durable output (`Output.durable`) has a cursor
in the event log (`EventLog.set_cursor`, written by its worker after `handle`
returns): at start it is handed what was logged after its cursor (an alert
whose event was logged just before a power cut still goes out), except events
older than its `replay_seconds`, which are skipped with a log line saying so
(an SMS about a three-day-old event is noise); when its queue is full it stops
queueing and catches up from the event log instead.  On the first start
against an event log the cursor starts at its end (no replay of history).
An output that is not durable (a page that reloads) loses what overflows its
queue, counted in a log line once a minute.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime

from ..common.ratelimit import EveryMinute
from ..events.event import Event
from ..store.event_log import EventLog
from .base import Output, OutputStatus

log = logging.getLogger(__name__)

QUEUE_EVENTS = 1000  # events one output's queue holds before it catches up from the event log (or drops)
CATCH_UP_BATCH = 200  # events read from the event log at a time when catching up
STOP_GRACE = 2.0  # seconds the workers get at a stop to hand over the events in their queues


class EventBus:
    """The outputs, in the order they start (they stop in reverse), and the one `publish` that feeds them."""

    def __init__(
        self,
        event_log: EventLog,
        outputs: Sequence[Output],
        queue_events: int = QUEUE_EVENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        names = [output.name for output in outputs]
        if len(set(names)) != len(names):
            raise ValueError(f"two outputs share a name: {names}")
        self.outputs = tuple(outputs)
        self._workers = [_Worker(output, event_log, queue_events, clock) for output in outputs]
        self._started: list[_Worker] = []

    def start(self) -> None:
        """Start the outputs in order, each with its worker (a durable one first catches up from its
        cursor)."""
        for worker in self._workers:
            worker.start()
            self._started.append(worker)

    def publish(self, event: Event) -> None:
        """Hand a logged event to every output; never waits (called on a camera's thread)."""
        for worker in self._started:
            worker.offer(event)

    def status(self) -> list[OutputStatus]:
        return [worker.status() for worker in self._workers]

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Let the workers hand over what they hold (at least STOP_GRACE seconds), then stop the outputs in
        reverse order, giving them what is left of `drain_seconds` for their own work in hand."""
        now = time.monotonic()
        drain_until = now + drain_seconds
        deadline = now + max(drain_seconds, STOP_GRACE)
        for worker in self._started:
            worker.close(deadline)
        for worker in reversed(self._started):
            worker.join()
        for worker in reversed(self._workers):  # those that did not start too: their resources are let go
            try:
                worker.output.stop(max(0.0, drain_until - time.monotonic()))
            except Exception:
                log.exception("output %s: stopping it failed", worker.output.name)
        self._started = []


class _Worker:
    """One output's queue and thread."""

    def __init__(self, output: Output, event_log: EventLog, size: int, clock: Callable[[], float]) -> None:
        self.output = output
        self._log = event_log
        self._size = size
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[Event] = deque()
        self._behind = False  # durable: events were not queued; the worker reads them from the event log
        self._replay_until = (
            0  # durable: the last event logged before this start (a replay is bounded by age)
        )
        self._closing = False
        self._deadline = math.inf  # monotonic time the worker gives up at a stop
        self._last = 0  # seq of the last event handled (or skipped)
        self._in_hand = False  # an event is being handled
        self._dropped = 0  # not durable: events lost to a full queue
        self._warned = EveryMinute()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.output.name

    def start(self) -> None:
        if self.output.durable and self.output.acknowledges:
            self.output.bind(self._acknowledged)
        self.output.start()
        if self.output.durable:
            self._resume()
        self._thread = threading.Thread(target=self._run, name=f"output-{self.name}", daemon=True)
        self._thread.start()

    def _resume(self) -> None:
        """Where a durable output goes on from: its cursor, or (first start) the end of the event log."""
        cursor = self._log.cursor(self.name)
        if cursor is None:
            self._last = self._log.last_seq()
            self._log.set_cursor(self.name, self._last)
            log.info(
                "output %s: first start on this event log; it gets events after seq %d", self.name, self._last
            )
            return
        self._last = cursor
        self._replay_until = self._log.last_seq()
        self._behind = True

    def offer(self, event: Event) -> None:
        with self._cond:
            if self._closing or self._behind:  # durable: read from the event log later (or at the next start)
                return
            if len(self._queue) < self._size:
                self._queue.append(event)
                self._cond.notify()
                return
            if self.output.durable:
                self._behind = True
                why = f"{self._size} events queued; it catches up from the event log"
            else:
                self._dropped += 1
                why = f"{self._dropped} event(s) not delivered so far (a full queue)"
        if self._warned.due("full"):
            log.warning("output %s is behind: %s", self.name, why)

    def status(self) -> OutputStatus:
        own = self.output.status()
        if self.output.durable:
            waiting = max(0, self._log.last_seq() - self._last)
        else:
            waiting = len(self._queue) + self._in_hand
        return dataclasses.replace(own, backlog=own.backlog + waiting)  # the output's own kind of status

    def close(self, deadline: float) -> None:
        """Take no more events; hand over what is held until `deadline` (monotonic)."""
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify()

    def join(self) -> None:
        if self._thread is None:
            return
        self._thread.join(max(0.0, self._deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning(
                "output %s: still handling an event at the stop; left to finish on its own", self.name
            )
        if self.output.durable:
            left = self._log.last_seq() - self._last
            if left > 0:
                log.warning(
                    "output %s: %d event(s) after seq %d not handled at the stop; it gets them at the next "
                    "start",
                    self.name,
                    left,
                    self._last,
                )
        elif self._queue:
            log.warning("output %s: %d event(s) not delivered at the stop", self.name, len(self._queue))

    # -- the worker thread

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._behind or self._closing)
                if self._closing and (time.monotonic() >= self._deadline):
                    return
                event = self._queue.popleft() if self._queue else None
                catch_up = event is None and self._behind
                if event is None and not catch_up:
                    return  # closing, and nothing left
                if catch_up:
                    self._behind = False  # from now on new events are queued again (and skipped if seen)
            if event is not None:
                self._deliver(event)
            else:
                self._catch_up()

    def _catch_up(self) -> None:
        """Hand the output what the event log holds after its last event (the replay at start: bounded by
        age)."""
        handled: list[int] = []  # seqs logged before the restart (then replayed), or since
        skipped: list[Event] = []
        oldest = self._clock() - self.output.replay_seconds
        while time.monotonic() < self._deadline:
            try:
                batch = self._log.after(self._last, CATCH_UP_BATCH)
            except sqlite3.Error as exc:
                log.error("output %s: cannot read the event log after seq %d: %s", self.name, self._last, exc)
                return
            if not batch:
                break
            for event in batch:
                replay = (event.seq or 0) <= self._replay_until
                if replay and event.time < oldest:
                    skipped.append(event)
                    self._advance(event)
                    continue
                handled.append(event.seq or 0)
                self._deliver(event)
        if skipped:
            log.warning(
                "output %s: %d event(s) logged before the restart (seq %d-%d, %s to %s) are older than %s "
                "and were not handed to it (they stay in the event log)",
                self.name,
                len(skipped),
                skipped[0].seq,
                skipped[-1].seq,
                _when(skipped[0].time),
                _when(skipped[-1].time),
                _span(self.output.replay_seconds),
            )
        replayed = [seq for seq in handled if seq <= self._replay_until]
        if replayed:
            log.info(
                "output %s: replayed %d event(s) from the event log that it had not handled before the "
                "restart (seq %d-%d)",
                self.name,
                len(replayed),
                replayed[0],
                replayed[-1],
            )
        self._replay_until = 0  # the replay is done; later catch-ups follow a full queue
        if len(handled) > len(replayed):
            log.info(
                "output %s: caught up with %d event(s) from the event log",
                self.name,
                len(handled) - len(replayed),
            )

    def _deliver(self, event: Event) -> None:
        if event.seq is not None and event.seq <= self._last:
            return  # already handled: read from the event log while it was also queued
        self._in_hand = True
        try:
            self.output.handle(event)
        except Exception:  # a bug in one output must not stop it, or any other
            log.exception("output %s: handling event %s (%s) failed", self.name, event.seq, event.type)
        self._advance(event)
        self._in_hand = False

    def _advance(self, event: Event) -> None:
        if event.seq is None:
            return
        self._last = event.seq
        if self.output.durable and not self.output.acknowledges:
            self._save_cursor(event.seq)

    def _acknowledged(self, seq: int) -> None:
        """An acknowledging output's word that every event up to `seq` is delivered (any thread)."""
        self._save_cursor(seq)

    def _save_cursor(self, seq: int) -> None:
        try:
            self._log.set_cursor(self.name, seq)
        except sqlite3.Error as exc:
            if self._warned.due("cursor"):
                log.error("output %s: cannot save its place in the event log: %s", self.name, exc)


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S")


def _span(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"
