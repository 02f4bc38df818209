"""Tests for edgeguard.alerts.outbox: the durable SQLite outbox (a real file in tmp_path, no mocks)."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from edgeguard.alerts.outbox import Outbox

GUARD = "+15551230009"
POLICE = "+15551230007"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.db"


@pytest.fixture
def outbox(path: Path):
    box = Outbox(path)
    yield box
    try:
        box.close()
    except Exception:  # already closed by the test
        pass


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# ---------------------------------------------------------------- queue order and transitions


def test_add_and_next_pending_keep_queue_order(outbox):
    ids = [outbox.add(GUARD, f"alert {n}", None, n, now=1000.0 + n) for n in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    head = outbox.next_pending()
    assert head is not None and head.id == ids[0]
    assert (head.to_number, head.body, head.event_seq, head.status, head.attempts) == (
        GUARD,
        "alert 0",
        0,
        "pending",
        0,
    )
    assert head.created == 1000.0 and head.next_attempt == 1000.0  # due at once
    outbox.mark_sent(ids[0], "SM" + "a" * 32, 1001.0)
    assert outbox.next_pending().id == ids[1]
    outbox.mark_failed(ids[1], "Twilio error 21211: bad number", 1002.0)
    assert outbox.next_pending().id == ids[2]
    outbox.mark_dry_run(ids[2], 1003.0)
    assert outbox.next_pending() is None


def test_add_wakes_the_sender(outbox):
    outbox.changed.clear()
    outbox.add(GUARD, "wake up", None, None)
    assert outbox.changed.is_set()


def test_media_url_and_event_seq_are_stored(outbox):
    mid = outbox.add(GUARD, "with image", "https://gate.example.net/c/abc.def", 42)
    message = outbox.get(mid)
    assert message.media_url == "https://gate.example.net/c/abc.def" and message.event_seq == 42
    assert outbox.get(outbox.add(GUARD, "plain", None, None)).media_url is None
    assert outbox.get(9999) is None


def test_mark_sent_records_sid_time_and_attempt(outbox):
    mid = outbox.add(GUARD, "x", None, None, now=10.0)
    outbox.mark_sent(mid, "SM0123", 12.5)
    m = outbox.get(mid)
    assert (m.status, m.sid, m.finished, m.attempts, m.last_error) == ("sent", "SM0123", 12.5, 1, None)


def test_mark_failed_records_the_reason(outbox):
    mid = outbox.add(GUARD, "x", None, None, now=10.0)
    outbox.mark_failed(mid, "Twilio error 21610: the recipient replied STOP", 11.0)
    m = outbox.get(mid)
    assert (m.status, m.sid, m.finished, m.attempts) == ("failed", None, 11.0, 1)
    assert m.last_error == "Twilio error 21610: the recipient replied STOP"


def test_mark_failed_after_retries_counts_every_attempt(outbox):
    mid = outbox.add(GUARD, "x", None, None, now=10.0)
    outbox.retry_later(mid, "Twilio answered HTTP 500", 12.0)
    outbox.retry_later(mid, "Twilio answered HTTP 503", 16.0)
    outbox.mark_failed(mid, "Twilio error 21211: invalid", 20.0)
    m = outbox.get(mid)
    assert (m.status, m.attempts, m.last_error) == ("failed", 3, "Twilio error 21211: invalid")


def test_mark_sent_after_a_retry_keeps_the_last_error_for_the_record(outbox):
    mid = outbox.add(GUARD, "x", None, None, now=10.0)
    outbox.retry_later(mid, "cannot reach Twilio: ConnectionError", 12.0)
    outbox.mark_sent(mid, "SM1", 13.0)
    m = outbox.get(mid)
    assert (m.status, m.attempts, m.sid) == ("sent", 2, "SM1")
    assert m.last_error == "cannot reach Twilio: ConnectionError"


def test_mark_dry_run_says_why_it_was_not_sent(outbox):
    mid = outbox.add(GUARD, "x", None, None, now=10.0)
    outbox.mark_dry_run(mid, 10.5)
    m = outbox.get(mid)
    assert m.status == "dry_run" and m.sid is None and m.finished == 10.5
    assert "no Twilio credentials" in m.last_error


def test_retry_later_keeps_the_head_at_the_head(outbox):
    first = outbox.add(GUARD, "first", None, 1, now=100.0)
    second = outbox.add(GUARD, "second", None, 2, now=101.0)
    outbox.retry_later(first, "Twilio answered HTTP 429", 200.0)
    head = outbox.next_pending()
    # not due until 200, but still the head: the second waits behind it (order is kept)
    assert head.id == first and head.next_attempt == 200.0
    assert head.attempts == 1 and head.last_error == "Twilio answered HTTP 429" and head.status == "pending"
    outbox.retry_later(first, "Twilio answered HTTP 500", 400.0)
    head = outbox.next_pending()
    assert head.id == first and head.attempts == 2 and head.next_attempt == 400.0
    assert outbox.get(second).attempts == 0
    outbox.mark_sent(first, "SM1", 400.0)
    assert outbox.next_pending().id == second


# ---------------------------------------------------------------- the hourly cap's bookkeeping


def test_hold_and_take_held_count_per_recipient(outbox):
    assert outbox.take_held(GUARD) is None
    outbox.hold(GUARD, 1000.0)
    outbox.hold(GUARD, 1100.0)
    outbox.hold(GUARD, 1200.0)
    outbox.hold(POLICE, 1500.0)
    # the count grows, the time is the first one held back
    assert outbox.take_held(GUARD) == (3, 1000.0)
    assert outbox.take_held(GUARD) is None  # taking clears it
    assert outbox.take_held(POLICE) == (1, 1500.0)
    outbox.hold(GUARD, 5000.0)
    assert outbox.take_held(GUARD) == (1, 5000.0)  # a new count starts at the new time


def test_sent_since_counts_what_was_queued_for_one_recipient(outbox):
    for t in (100.0, 200.0, 300.0):
        outbox.add(GUARD, "x", None, None, now=t)
    outbox.add(POLICE, "y", None, None, now=300.0)
    assert outbox.sent_since(GUARD, 0.0) == 3
    assert outbox.sent_since(GUARD, 200.0) == 2
    assert outbox.sent_since(GUARD, 300.5) == 0
    assert outbox.sent_since(POLICE, 0.0) == 1
    assert outbox.sent_since("+15550000000", 0.0) == 0


# ---------------------------------------------------------------- listing


def test_list_filters_by_status_in_queue_order(outbox):
    ids = [outbox.add(GUARD, f"m{n}", None, None, now=float(n)) for n in range(6)]
    outbox.mark_sent(ids[0], "SM0", 10.0)
    outbox.mark_failed(ids[1], "bad", 10.0)
    outbox.mark_dry_run(ids[2], 10.0)
    outbox.mark_failed(ids[4], "bad", 10.0)
    assert [m.id for m in outbox.list()] == ids
    assert [m.id for m in outbox.list(["pending"])] == [ids[3], ids[5]]
    assert [m.id for m in outbox.list(["failed"])] == [ids[1], ids[4]]
    assert [m.id for m in outbox.list(["pending", "failed"])] == [ids[1], ids[3], ids[4], ids[5]]
    assert [m.id for m in outbox.list(["sent"])] == [ids[0]]
    assert [m.id for m in outbox.list(["dry_run"])] == [ids[2]]
    assert [m.id for m in outbox.list(None, limit=2)] == ids[:2]
    assert [m.id for m in outbox.list(["pending"], limit=1)] == [ids[3]]


def test_concurrent_adds_from_threads_are_all_kept(outbox):
    def add_many(n: int) -> None:
        for k in range(25):
            outbox.add(GUARD, f"thread {n} #{k}", None, None)

    threads = [threading.Thread(target=add_many, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    messages = outbox.list()
    assert len(messages) == 100 and len({m.id for m in messages}) == 100
    for n in range(4):  # each thread's messages are in the order it added them
        mine = [m.body for m in messages if m.body.startswith(f"thread {n} ")]
        assert mine == [f"thread {n} #{k}" for k in range(25)]


# ---------------------------------------------------------------- the file


def test_file_is_private_and_in_wal_mode(outbox, path):
    outbox.add(GUARD, "x", None, None)
    assert mode(path) == 0o600
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_no_file_of_a_new_outbox_is_readable_by_others(tmp_path):
    """The outbox holds phone numbers and alert texts.  In WAL mode SQLite keeps the latest
    commits in outbox.db-wal (and an index in outbox.db-shm) next to the database, for as long
    as the daemon runs; those files must be as private as the database itself."""
    old = os.umask(0o022)  # the usual umask of a service or a login shell
    try:
        path = tmp_path / "fresh" / "outbox.db"
        box = Outbox(path)
        box.add(GUARD, "EdgeGuard ALERT Front Gate: unknown person", None, None)
        try:
            wal = path.with_name("outbox.db-wal")
            assert wal.is_file() and GUARD.encode() in wal.read_bytes()  # the number is in there
            modes = {p.name: oct(mode(p)) for p in path.parent.iterdir()}
            assert modes == {name: "0o600" for name in modes}, modes
        finally:
            box.close()
    finally:
        os.umask(old)


def test_reopening_keeps_pending_messages_in_order(path):
    box = Outbox(path)
    ids = [
        box.add(GUARD, f"alert {n}", "https://gate.example.net/c/t.s" if n == 1 else None, n, now=50.0 + n)
        for n in range(4)
    ]
    box.mark_sent(ids[0], "SM0", 60.0)
    box.retry_later(ids[1], "cannot reach Twilio: ConnectionError", 70.0)
    box.hold(POLICE, 65.0)
    box.close()

    again = Outbox(path)  # the daemon after a restart
    try:
        pending = again.list(["pending"])
        assert [m.id for m in pending] == ids[1:]
        assert [m.body for m in pending] == ["alert 1", "alert 2", "alert 3"]
        head = again.next_pending()
        assert head.id == ids[1] and head.attempts == 1 and head.next_attempt == 70.0
        assert head.media_url == "https://gate.example.net/c/t.s"
        assert again.get(ids[0]).status == "sent" and again.get(ids[0]).sid == "SM0"
        assert again.take_held(POLICE) == (1, 65.0)
        new = again.add(GUARD, "after restart", None, None)
        assert new > ids[-1]
    finally:
        again.close()


def test_a_second_connection_sees_commits_at_once(path, outbox):
    """Each call is one committed transaction: another process (e.g. `edgeguard alerts`)
    reading the file sees the message as soon as add() returns."""
    mid = outbox.add(GUARD, "visible", None, None)
    other = Outbox(path)
    try:
        assert [m.id for m in other.list(["pending"])] == [mid]
        other.mark_sent(mid, "SM9", 1.0)
        assert outbox.get(mid).status == "sent"
    finally:
        other.close()


def test_the_alerts_command_says_when_the_outbox_is_empty(tmp_path, capsys):
    from edgeguard.cli import main

    config = tmp_path / "edgeguard.toml"
    config.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n', encoding="utf-8")
    Outbox(tmp_path / "outbox.db").close()
    assert main(["--config", str(config), "alerts"]) == 0
    assert capsys.readouterr().out.startswith("no messages in the outbox")
    assert main(["--config", str(config), "alerts", "--failed"]) == 0
    assert capsys.readouterr().out.startswith("no failed messages in the outbox")
    assert main(["--config", str(config), "alerts", "--json"]) == 0
    assert capsys.readouterr().out == ""  # machines get no prose
