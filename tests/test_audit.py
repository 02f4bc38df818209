"""Tests for the audit log (edgeguard.store.audit): the hash chain, a tampered or removed row found by
`edgeguard audit --verify`, no secrets or phone numbers kept, and the changes of the CLI and the dashboard
recorded with user and address; the admin page."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from conftest import PEOPLE, make_site
from helpers import clean_env, edgeguard
from test_web import PASSWORD, Board

from edgeguard.store.audit import AuditError, AuditLog, read_rows, verify


def tamper(path, sql: str, *args) -> None:
    """What someone with the sqlite3 tool could do to the file: drop the guards, then change it."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_only_pruned")
    db.execute(sql, args)
    db.commit()
    db.close()


@pytest.fixture
def audit_log(tmp_path):
    log = AuditLog(tmp_path / "audit.db")
    log.record("login", "alice", "10.0.0.5", "alice")
    log.record("record edited", "alice", "10.0.0.5", "7", {"fields": "name"})
    log.record("erasure", "root", "cli", "7", {"removed": ["photos: 1 removed"]})
    yield log
    log.close()


def test_rows_chain_and_verify(audit_log):
    rows = read_rows(audit_log.path)
    assert [r.action for r in rows] == ["login", "record edited", "erasure"]
    assert rows[0].prev == "0" * 64 and rows[1].prev == rows[0].hash and rows[2].prev == rows[1].hash
    assert verify(audit_log.path) == (3, [])
    assert rows[2].line().endswith("root@cli erasure 7 (removed=['photos: 1 removed'])")


def test_the_application_cannot_change_or_remove_a_row(audit_log):
    db = sqlite3.connect(audit_log.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET user = 'mallory' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 1")
    db.close()


def test_a_tampered_row_is_found(audit_log):
    tamper(audit_log.path, "UPDATE audit SET user = 'mallory' WHERE seq = 2")
    count, problems = verify(audit_log.path)
    assert count == 3 and problems == [
        "row 2: its fields were changed after it was written (record edited 7)"
    ]


def test_a_removed_row_is_found(audit_log):
    tamper(audit_log.path, "DELETE FROM audit WHERE seq = 2")
    _, problems = verify(audit_log.path)
    assert problems and problems[0].startswith("row 3:")


def test_no_secret_or_phone_number_is_kept(audit_log):
    for key in ("password", "code", "phone", "otp_code", "api_token"):
        with pytest.raises(AuditError, match=key):
            audit_log.record("user added", "alice", "10.0.0.5", "bob", {key: "x"})
    row = audit_log.record("record edited", "alice", "10.0.0.5", "7", {"note": "now +15550100077"})
    assert row.what == {"note": "now *********077"}
    with pytest.raises(AuditError, match="unknown audit action"):
        audit_log.record("coffee", "alice", "10.0.0.5")
    assert b"+15550100077" not in audit_log.path.read_bytes()


def test_cli_changes_are_recorded_and_verified(tmp_path):
    site = make_site(tmp_path / "site", people=[("3", "Barack Obama", "obama.jpg")])
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeguard",
            "--config",
            str(site.config_path),
            "user",
            "add",
            "bob",
            "--role",
            "admin",
            "--phone",
            "+15550100077",
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert (
        edgeguard(
            site.config_path, "enroll", "4", str(PEOPLE / "biden.jpg"), "--name", "Joe Biden"
        ).returncode
        == 0
    )
    assert edgeguard(site.config_path, "forget", "3").returncode == 0
    listing = edgeguard(site.config_path, "audit")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert [line.split(" ", 4)[4].split(" (")[0] for line in lines] == [
        "user added bob",
        "photo added 4",
        "erasure 3",
    ]
    assert all("@cli " in line for line in lines)
    config = site.config()
    data = config.paths.audit_db.read_bytes()
    assert b"+15550100077" not in data and PASSWORD.encode() not in data
    assert edgeguard(site.config_path, "audit", "--verify").stdout.endswith("3 rows, the chain is intact\n")
    tamper(config.paths.audit_db, "UPDATE audit SET target = '5' WHERE seq = 2")
    broken = edgeguard(site.config_path, "audit", "--verify")
    assert broken.returncode == 1 and "row 2: its fields were changed" in broken.stderr


def test_dashboard_changes_logins_and_the_admin_page(tmp_path):
    site = make_site(tmp_path / "site", people=[("7", "Tony Blair", "obama.jpg")])
    board = Board(site)
    try:
        board.login("alice", "wrong password!")
        http, _ = board.login()
        http.post(
            f"{board.url}/records/7/delete", data={"csrf": board.csrf(http, "/records/7"), "confirm": "7"}
        )
        viewer, _ = board.login("victor")
        assert viewer.get(f"{board.url}/audit").status_code == 403
        page = http.get(f"{board.url}/audit")
        assert page.status_code == 200 and "the chain is broken" not in page.text.lower()
        rows = read_rows(board.config.paths.audit_db)
        assert [(r.action, r.user, r.address, r.target) for r in rows] == [
            ("failed login", "alice", "127.0.0.1", "alice"),
            ("login", "alice", "127.0.0.1", "alice"),
            ("record deleted", "alice", "127.0.0.1", "7"),
            ("login", "victor", "127.0.0.1", "victor"),
        ]
        assert "record deleted" in page.text and PASSWORD not in page.text
        tamper(board.config.paths.audit_db, "UPDATE audit SET user = 'bob' WHERE seq = 3")
        assert "row 3: its fields were changed" in http.get(f"{board.url}/audit").text
    finally:
        board.stop()
