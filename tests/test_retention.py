"""Tests for the retention of records: events, the outbox's finished messages and audit rows deleted past
their limits (the audit chain kept verifiable by an anchor), enforced by service/retention.py and shown by
`edgeguard check`."""

from __future__ import annotations

import sqlite3
import time

import pytest

from edgeguard.alerts.outbox import Outbox
from edgeguard.events.event import Event
from edgeguard.service.doctor import check_retention
from edgeguard.service.retention import DAY, prune_records
from edgeguard.store.audit import AuditLog, read_rows, verify
from edgeguard.store.event_log import EventLog

NOW = 1_800_000_000.0


def event(when: float) -> Event:
    return Event("unknown_face", when, "gate", "Gate")


def test_old_events_are_deleted_and_the_numbering_goes_on(tmp_path):
    log = EventLog(tmp_path / "events.db")
    old, new = log.append(event(NOW - 10 * DAY)), log.append(event(NOW - DAY))
    assert log.prune(NOW - 5 * DAY) == 1
    assert log.query() == [new] and log.append(event(NOW)).seq == new.seq + 1 and old.seq < new.seq
    log.close()


def test_finished_messages_are_deleted_and_pending_ones_stay(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    pending = box.add("+15550000001", "old but pending", None, 1, now=NOW - 10 * DAY)
    sent = box.add("+15550000001", "old and sent", None, 2, now=NOW - 10 * DAY)
    box.mark_sent(sent, "SM1", NOW - 10 * DAY)
    recent = box.add("+15550000001", "recent", None, 3, now=NOW - DAY)
    box.mark_sent(recent, "SM2", NOW - DAY)
    assert box.prune(NOW - 5 * DAY) == 1
    assert [m.id for m in box.list()] == [pending, recent]
    box.close()


@pytest.fixture
def audit_log(tmp_path):
    log = AuditLog(tmp_path / "audit.db")
    rows = []
    for n in range(4):
        rows.append(log.record("login", "alice", "10.0.0.5", f"alice{n}"))
        time.sleep(0.01)
    yield log, rows
    log.close()


def test_old_audit_rows_go_after_an_anchor_and_the_chain_verifies(audit_log):
    log, rows = audit_log
    assert log.prune(rows[2].time) == 2
    assert [r.target for r in read_rows(log.path)] == ["alice2", "alice3"]
    assert verify(log.path) == (2, [])
    log.record("login", "bob", "10.0.0.6", "bob")
    assert verify(log.path) == (3, []) and log.prune(rows[0].time) == 0


def test_a_row_removed_behind_the_anchor_is_still_found(audit_log):
    log, rows = audit_log
    log.prune(rows[2].time)
    db = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 3")  # newer than the anchor: refused
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit_anchor")
    db.execute("DROP TRIGGER audit_only_pruned")  # what someone with the sqlite3 tool could do
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    db.close()
    _, problems = verify(log.path)
    assert problems and problems[0].startswith("row 4:")


def test_prune_records_follows_the_configured_limits_and_check_shows_them(site):
    site.write_config(
        "[events]\nretention_days = 30\n[alerts]\noutbox_retention_days = 10\n"
        "[privacy]\naudit_retention_days = 60\n"
    )
    config = site.config()
    now = time.time()
    log, box, audit = (
        EventLog(config.paths.events_db),
        Outbox(config.paths.outbox_db),
        AuditLog(config.paths.audit_db),
    )
    try:
        log.append(event(now - 40 * DAY))
        kept = log.append(event(now - 20 * DAY))
        sent = box.add("+15550000001", "text", None, 1, now=now - 20 * DAY)
        box.mark_sent(sent, "SM1", now - 20 * DAY)
        audit.record("login", "alice", "10.0.0.5", "alice")
        prune_records(config, log, box, now=now + 61 * DAY)  # the audit row is 61 days old by then
        assert log.query() == [] and box.list() == []
        assert read_rows(config.paths.audit_db) == [] and verify(config.paths.audit_db) == (0, [])
        log.append(kept)
        prune_records(config, log, box, now=now)
        assert len(log.query()) == 1
    finally:
        log.close()
        box.close()
        audit.close()
    lines = {f.what: f.detail for f in check_retention(config)}
    assert lines["retention of events"].startswith(
        f"kept 30 days ([events] retention_days): 1 kept in {config.paths.events_db}"
    )
    assert "; the oldest is kept until " in lines["retention of events"]
    assert lines["retention of outbox"].startswith("kept 10 days ([alerts] outbox_retention_days): 0 kept")
    assert lines["retention of audit"].startswith("kept 60 days ([privacy] audit_retention_days): 0 kept")
