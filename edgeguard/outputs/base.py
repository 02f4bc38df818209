"""What an output of events is: something the event bus (edgeguard.outputs.bus) hands each recorded event.

An output declares a `name` (for log lines, cursors and status), whether it is
`durable` (it must see every event, across restarts: the SMS alerter; a page
that reloads does not need to: the dashboard's live updates) and, if durable,
how far back a replay after a restart still makes sense (`replay_seconds`).
The bus calls `start()` once, then `handle(event)` for each event in the event
log's order on the output's own worker thread, `status()` from any thread, and
`stop(drain_seconds)` once at the end (also when the output did not start, so that
it lets go of what it opened when it was built).

A durable output whose delivery is confirmed later than `handle` returns (a
broker's acknowledgement) says it `acknowledges`: the bus then binds it a
callback (`bind`) and moves its cursor only when the output calls it, so what
was sent but never acknowledged is handed to it again after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..events.event import Event


@dataclass(frozen=True)
class OutputStatus:
    """How an output is doing, for `edgeguard check`, systemd's STATUS= and the dashboard."""

    name: str
    fault: str = ""  # why it cannot do its work now; "" while it can
    backlog: int = 0  # what waits for it: events not handled yet, plus what it holds itself (unsent texts)
    state: str = ""  # what it is doing, where that says more than "ok" ("connected to host:port"); no secrets

    @property
    def shown(self) -> str:
        """What the dashboard says of it: the fault, else its state, else "ok"."""
        return self.fault or self.state or "ok"

    @property
    def ok(self) -> bool:
        return not self.fault

    def text(self) -> str:
        waiting = f", {self.backlog} waiting" if self.backlog else ""
        return f"{self.name}: {self.fault or 'ok'}{waiting}"


class Output:
    """The base of every output: override `handle`, and whichever of the others the output needs."""

    name = "output"
    durable = False  # True: a cursor in the event log; what it has not handled is handed to it again
    replay_seconds = 3600.0  # durable only: events older than this at a replay are skipped (and said so)
    acknowledges = False  # durable only: the cursor moves when the output confirms delivery (`bind`)

    def bind(self, delivered: Callable[[int], None]) -> None:
        """For an output that `acknowledges`: the bus's callback, `delivered(seq)` once every event up to
        `seq` is safely delivered (called from any thread, in seq order)."""

    def start(self) -> None:
        """Get ready to handle events (threads, connections); called once, before the first event."""

    def handle(self, event: Event) -> None:
        """Act on one event; called on the output's own worker thread, in the event log's order."""
        raise NotImplementedError

    def status(self) -> OutputStatus:
        return OutputStatus(self.name)

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop; with `drain_seconds`, first give work in hand that long to finish."""
