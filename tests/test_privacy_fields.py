"""Tests for the event log's personal fields and the outbox's bodies sealed with the data key: nothing
personal in the files, everything read back and searched as before, plain rows from before still read."""

from __future__ import annotations

import sqlite3

import pytest

from edgeguard.alerts.outbox import UNREADABLE, Outbox, plain_bodies_in, read_messages
from edgeguard.alerts.sender import Sender
from edgeguard.common.sealing import KEY_SIZE, Sealer
from edgeguard.events.event import Event
from edgeguard.store.event_log import EventFilter, EventLog, EventReader, plain_rows_in, read_events

KEY = bytes(range(KEY_SIZE))
NAME = "Alice Example"


def event(n: int, pid: str | None = "7", name: str | None = NAME, category: str | None = "vip") -> Event:
    return Event(
        "known_face" if pid else "unknown_face",
        1_790_000_000.0 + n,
        "gate",
        "Gate",
        person_id=pid,
        name=name,
        category=category,
        capture=f"/site/captures/2026-09-21_12-00-0{n}-000000-face.jpg",
        extra={"match": "strong", "stranger": f"S{n}"},
    )


def file_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_personal_fields_are_sealed_on_disk_and_read_back(tmp_path):
    log = EventLog(tmp_path / "events.db", sealer=Sealer(KEY))
    logged = [log.append(event(n)) for n in range(3)]
    assert log.query() == logged and logged[0].name == NAME and logged[0].extra["stranger"] == "S0"
    log.close()
    raw = sqlite3.connect(tmp_path / "events.db")
    types = raw.execute("SELECT typeof(person_id), typeof(name), typeof(capture), typeof(extra) FROM events")
    assert set(types.fetchall()) == {("blob", "blob", "blob", "blob")}
    raw.close()
    data = file_bytes(tmp_path / "events.db")
    assert NAME.encode() not in data and b"vip" not in data and b"2026-09-21" not in data
    assert read_events(tmp_path / "events.db", sealer=Sealer(KEY)) == logged


def test_searches_filter_on_sealed_and_plain_rows_alike(tmp_path):
    plain = EventLog(tmp_path / "events.db")  # written before encryption was on
    old = plain.append(event(0, "8", "Bob Plain", "staff"))
    plain.close()
    log = EventLog(tmp_path / "events.db", sealer=Sealer(KEY))
    new = [log.append(event(n)) for n in (1, 2)] + [log.append(event(3, None, None, None))]
    assert log.get(old.seq) == old
    assert log.search(EventFilter(person="7"))[1] == 2
    assert [e.seq for e in log.search(EventFilter(person="ice ex"))[0]] == [new[1].seq, new[0].seq]
    assert log.search(EventFilter(person="Plain"))[0] == [old]
    assert log.search(EventFilter(category="staff"))[0] == [old]
    assert log.search(EventFilter(category="vip"), limit=1) == ([new[1]], 2)
    assert log.search(EventFilter(capture=new[2].capture))[0] == [new[2]]
    assert log.of_person("7") == new[:2] and log.of_person("8") == [old]
    assert log.with_capture("2026-09-21_12-00-03-000000") == [new[2]]
    reader = EventReader(tmp_path / "events.db", Sealer(KEY))
    assert reader.search(EventFilter(person="Alice"))[1] == 2 and reader.after(old.seq, 1) == new[:1]
    reader.close()
    assert log.erase([new[0].seq]) == 1
    assert log.get(new[0].seq).name == "erased person" and log.of_person("7") == [new[1]]
    log.close()


def test_a_damaged_field_is_shown_empty_and_the_rest_reads(tmp_path, caplog):
    log = EventLog(tmp_path / "events.db", sealer=Sealer(KEY))
    first, second = log.append(event(1)), log.append(event(2))
    log.close()
    raw = sqlite3.connect(tmp_path / "events.db")
    raw.execute("UPDATE events SET name = substr(name, 1, 30) WHERE seq = ?", (first.seq,))  # truncated
    raw.commit()
    raw.close()
    log = EventLog(tmp_path / "events.db", sealer=Sealer(KEY))
    read = log.query()
    assert read[0].name is None and read[0].person_id == "7" and read[1] == second
    assert f"event {first.seq}: its name cannot be read" in caplog.text
    assert log.search(EventFilter(person="Alice"))[0] == [second]
    log.close()
    other = EventLog(tmp_path / "events.db", sealer=Sealer(bytes(KEY_SIZE)))  # another key: nothing opens
    assert {e.name for e in other.query()} == {None}
    other.close()


def test_seal_plain_seals_old_rows_in_batches(tmp_path):
    plain = EventLog(tmp_path / "events.db")
    before = [plain.append(event(n, str(n), f"Person {n}")) for n in range(5)]
    with pytest.raises(ValueError, match="no data key"):
        plain.seal_plain()
    plain.close()
    log = EventLog(tmp_path / "events.db", sealer=Sealer(KEY))
    assert plain_rows_in(tmp_path / "events.db") == 5
    assert [log.seal_plain(batch=2) for _ in range(4)] == [2, 2, 1, 0]
    assert plain_rows_in(tmp_path / "events.db") == 0 and log.query() == before
    log.close()


def test_outbox_bodies_are_sealed_and_read_back(tmp_path):
    box = Outbox(tmp_path / "outbox.db", sealer=Sealer(KEY))
    first = box.add("+15550000001", f"EdgeGuard ALERT: {NAME}", None, 1)
    box.close()
    assert NAME.encode() not in file_bytes(tmp_path / "outbox.db")
    assert read_messages(tmp_path / "outbox.db", sealer=Sealer(KEY))[0].body == f"EdgeGuard ALERT: {NAME}"
    plain = Outbox(tmp_path / "outbox.db")  # a body written before encryption was on
    second = plain.add("+15550000001", "EdgeGuard ALERT: Bob Plain", None, 2)
    plain.close()
    box = Outbox(tmp_path / "outbox.db", sealer=Sealer(KEY))
    assert (
        box.get(second).body == "EdgeGuard ALERT: Bob Plain" and plain_bodies_in(tmp_path / "outbox.db") == 1
    )
    assert (
        box.seal_plain() == 1
        and plain_bodies_in(tmp_path / "outbox.db") == 0
        and box.get(second).body.endswith("Bob Plain")
    )
    assert box.forget_events([1]) == (1, 0) and box.get(first) is None
    box.close()
    assert b"Bob Plain" not in file_bytes(tmp_path / "outbox.db")


def test_an_outbox_body_that_does_not_open_is_not_sent(tmp_path):
    box = Outbox(tmp_path / "outbox.db", sealer=Sealer(KEY))
    message_id = box.add("+15550000001", f"EdgeGuard ALERT: {NAME}", None, 1)
    box.close()
    other = Outbox(tmp_path / "outbox.db", sealer=Sealer(bytes(KEY_SIZE)))
    message = other.get(message_id)
    assert message.body == UNREADABLE

    class Transport:
        sent: list = []

        def send(self, *args):
            self.sent.append(args)
            return "SM1"

    transport = Transport()
    assert Sender(other, transport).deliver(message) == "failed" and transport.sent == []
    assert other.get(message_id).status == "failed"
    other.close()
