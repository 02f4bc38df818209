"""Tests for edgeguard.outputs.bus: every logged event handed to every output on its own thread, in the event
log's order, with durable outputs resuming from their cursor (a real SQLite event log in tmp_path)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from helpers import wait_for

from edgeguard.config import Config
from edgeguard.events.event import Event
from edgeguard.events.recorder import SiteEvents
from edgeguard.outputs.base import Output, OutputStatus
from edgeguard.outputs.bus import EventBus
from edgeguard.service import doctor
from edgeguard.store.event_log import EventLog, output_positions
from edgeguard.store.face_captures import CaptureStore


class Recording(Output):
    """An output that remembers what it was handed; `gate` (when given) holds each handle until it is set."""

    def __init__(self, name: str, durable: bool = False, gate: threading.Event | None = None) -> None:
        self.name = name
        self.durable = durable
        self.gate = gate
        self.seen: list[int] = []
        self.types: list[str] = []
        self.entered = threading.Event()  # set when it is first handed an event
        self.journal: list[str] | None = None

    def start(self) -> None:
        if self.journal is not None:
            self.journal.append(f"start {self.name}")

    def handle(self, event: Event) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        assert event.seq is not None
        self.seen.append(event.seq)
        self.types.append(event.type)

    def stop(self, drain_seconds: float = 0.0) -> None:
        if self.journal is not None:
            self.journal.append(f"stop {self.name}")


class Failing(Recording):
    def handle(self, event: Event) -> None:
        if event.seq == 2:
            raise RuntimeError("broken output")
        super().handle(event)


@pytest.fixture
def event_log(tmp_path):
    log = EventLog(tmp_path / "events.db")
    yield log
    log.close()


def logged(
    event_log: EventLog, n: int = 1, when: float | None = None, name: str = "Ada Lovelace"
) -> list[Event]:
    """`n` known_face events appended to the log (not published)."""
    return [
        event_log.append(
            Event(
                "known_face",
                time.time() if when is None else when,
                "gate",
                "Front Gate",
                person_id="7",
                name=name,
            )
        )
        for _ in range(n)
    ]


def publish(bus: EventBus, event_log: EventLog, n: int = 1) -> list[Event]:
    events = logged(event_log, n)
    for event in events:
        bus.publish(event)
    return events


def test_a_slow_output_delays_neither_publish_nor_another_output(event_log):
    gate = threading.Event()
    slow, quick = Recording("slow", gate=gate), Recording("quick")
    bus = EventBus(event_log, [slow, quick])
    bus.start()
    try:
        events = logged(event_log, 5)
        began = time.monotonic()
        for event in events:
            bus.publish(event)
        assert time.monotonic() - began < 0.05  # the frame loop never waits for an output
        wait_for(lambda: quick.seen == [e.seq for e in events], 5, lambda: str(quick.seen))
        assert slow.seen == []  # still held by its gate
        assert bus.status()[0] == OutputStatus("slow", "", 5)
    finally:
        gate.set()
        bus.stop(drain_seconds=5)
    assert slow.seen == [e.seq for e in events]


def test_a_failing_output_is_logged_and_goes_on_with_the_next_event(event_log, caplog):
    failing, other = Failing("failing"), Recording("other")
    bus = EventBus(event_log, [failing, other])
    bus.start()
    with caplog.at_level(logging.ERROR, logger="edgeguard.outputs.bus"):
        publish(bus, event_log, 3)
        wait_for(
            lambda: failing.seen == [1, 3] and other.seen == [1, 2, 3],
            5,
            lambda: str((failing.seen, other.seen)),
        )
        bus.stop()
    [record] = [r for r in caplog.records if "failed" in r.getMessage()]
    assert record.getMessage() == "output failing: handling event 2 (known_face) failed"
    assert "Ada" not in caplog.text  # the event's seq and type, no personal data


def test_each_output_gets_the_events_in_the_event_log_order(event_log):
    outputs = [Recording(f"out{n}") for n in range(3)]
    bus = EventBus(event_log, outputs)
    bus.start()
    publish(bus, event_log, 50)
    bus.stop(drain_seconds=5)
    for output in outputs:
        assert output.seen == list(range(1, 51))


def test_site_events_publish_each_logged_event_with_its_seq(event_log, tmp_path):
    output = Recording("out")
    bus = EventBus(event_log, [output])
    site = SiteEvents(Config(), event_log, CaptureStore(tmp_path / "caps", 30, 100), bus)
    bus.start()
    camera = Config().cameras[0]
    event = site.camera_event(camera, "camera_down", time.time(), {"seconds": 30.0})
    bus.stop(drain_seconds=5)
    assert event.seq == 1 and output.seen == [1]
    assert site.recorded == 1 and site.last_event == event


def test_site_events_take_up_what_another_process_logged(event_log, tmp_path):
    """`edgeguard forget` logs its erased event from another process: the running daemon publishes it."""
    output = Recording("out")
    bus = EventBus(event_log, [output])
    logged(event_log, 2)  # before the start: history, not published again
    site = SiteEvents(Config(), event_log, CaptureStore(tmp_path / "caps", 30, 100), bus)
    bus.start()
    site.camera_event(Config().cameras[0], "camera_down", time.time(), {"seconds": 30.0})
    other = EventLog(event_log.path)  # another process's connection
    other.append(Event("erased", time.time(), "", "", person_id="7", extra={"captures": [], "events": []}))
    other.close()
    assert site.take_up_logged_elsewhere() == 1 and site.take_up_logged_elsewhere() == 0
    bus.stop(drain_seconds=5)
    assert output.seen == [3, 4] and output.types[-1] == "erased"
    assert site.recorded == 1  # the status line counts the events this daemon recorded


def test_a_durable_output_gets_after_a_restart_what_it_had_not_handled(tmp_path, caplog):
    path = tmp_path / "events.db"
    event_log = EventLog(path)
    history = logged(event_log, 2)  # before the output's first start: not replayed
    first = Recording("sms", durable=True)
    bus = EventBus(event_log, [first])
    with caplog.at_level(logging.INFO, logger="edgeguard.outputs.bus"):
        bus.start()
        handled = publish(bus, event_log, 1)
        wait_for(lambda: first.seen == [handled[0].seq], 5, lambda: str(first.seen))
        lost = logged(event_log, 2)  # logged, then the process stopped before the output handled them
        bus.stop()
        event_log.close()
    assert first.seen == [3] and [e.seq for e in history] == [1, 2]
    assert "output sms: first start on this event log; it gets events after seq 2" in caplog.text

    caplog.clear()
    event_log = EventLog(path)
    again = Recording("sms", durable=True)
    bus = EventBus(event_log, [again])
    with caplog.at_level(logging.INFO, logger="edgeguard.outputs.bus"):
        bus.start()
        new = publish(bus, event_log, 1)
        wait_for(lambda: len(again.seen) == 3, 5, lambda: str(again.seen))
        bus.stop()
    event_log.close()
    assert again.seen == [lost[0].seq, lost[1].seq, new[0].seq] == [4, 5, 6]
    assert (
        "output sms: replayed 2 event(s) from the event log that it had not handled before the restart "
        "(seq 4-5)" in caplog.text
    )


def test_a_replay_skips_events_too_old_to_act_on_and_says_so(event_log, caplog):
    bus = EventBus(event_log, [Recording("sms", durable=True)])
    bus.start()
    bus.stop()
    logged(event_log, 2, when=time.time() - 3 * 86400)  # a device off for three days
    recent = logged(event_log, 1)
    output = Recording("sms", durable=True)
    bus = EventBus(event_log, [output])
    with caplog.at_level(logging.INFO, logger="edgeguard.outputs.bus"):
        bus.start()
        wait_for(lambda: output.seen, 5, lambda: str(output.seen))
        bus.stop()
    assert output.seen == [recent[0].seq]
    assert "output sms: 2 event(s) logged before the restart (seq 1-2," in caplog.text
    assert "are older than 1 h and were not handed to it (they stay in the event log)" in caplog.text
    assert event_log.cursor("sms") == recent[0].seq


def test_a_full_queue_makes_a_durable_output_catch_up_from_the_event_log_without_loss(event_log, caplog):
    gate = threading.Event()
    durable = Recording("sms", durable=True, gate=gate)
    bus = EventBus(event_log, [durable], queue_events=3)
    bus.start()
    with caplog.at_level(logging.INFO, logger="edgeguard.outputs.bus"):
        events = publish(bus, event_log, 20)
        gate.set()
        wait_for(lambda: len(durable.seen) == 20, 5, lambda: str(durable.seen))
        more = publish(bus, event_log, 2)  # queued again once it caught up
        wait_for(lambda: len(durable.seen) == 22, 5, lambda: str(durable.seen))
        bus.stop()
    assert durable.seen == [e.seq for e in events + more]  # each once, in order
    assert "output sms is behind: 3 events queued; it catches up from the event log" in caplog.text
    assert event_log.cursor("sms") == more[-1].seq


def test_a_full_queue_of_a_passing_output_is_counted_in_the_log(event_log, caplog):
    gate = threading.Event()
    live = Recording("live", gate=gate)
    bus = EventBus(event_log, [live], queue_events=3)
    bus.start()
    with caplog.at_level(logging.WARNING, logger="edgeguard.outputs.bus"):
        publish(bus, event_log, 1)
        assert live.entered.wait(5)
        publish(bus, event_log, 5)  # one being handled, three queued, two dropped
        gate.set()
        bus.stop(drain_seconds=5)
    assert len(live.seen) == 4
    assert "output live is behind: 1 event(s) not delivered so far (a full queue)" in caplog.text


def test_outputs_start_in_order_and_stop_in_reverse(event_log):
    journal: list[str] = []
    outputs = [Recording(name) for name in ("a", "b", "c")]
    for output in outputs:
        output.journal = journal
    bus = EventBus(event_log, outputs)
    bus.start()
    bus.stop()
    assert journal == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


def test_two_outputs_with_one_name_are_refused(event_log):
    with pytest.raises(ValueError, match="two outputs share a name"):
        EventBus(event_log, [Recording("sms"), Recording("sms")])


def test_check_reads_where_the_durable_outputs_are_in_the_event_log(event_log):
    bus = EventBus(event_log, [Recording("sms", durable=True)])
    bus.start()
    bus.stop()
    logged(event_log, 3)  # logged while the output was not running
    assert output_positions(event_log.path) == (3, {"sms": 0})
    assert doctor._outputs(event_log.path) == "; sms has 3 event(s) to go"
