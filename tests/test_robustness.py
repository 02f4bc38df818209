"""Never blind, never silent: the real daemon against full disks, damaged databases, hostile CSV fields,
symlinks, slow copies and a Twilio that answers too late.

In every case the daemon keeps running (or starts), the alert about the wanted person (Lin-Manuel
Miranda, on the Hamilton clip) reaches the fake Twilio exactly once, and the log says what was wrong
in one line.  Full disks are real: a small tmpfs mounted for the test (root only; skipped elsewhere).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import cv2
import helpers  # tests/helpers.py
import numpy as np
import pytest
from conftest import CLIP, PEOPLE, Site, make_site
from daemons import Daemon
from fake_twilio import FakeTwilio  # tests/fake_twilio.py
from helpers import clean_env, wait_for

pytestmark = pytest.mark.slow  # every test here replays the clip in a real daemon

ACCOUNT = "AC" + "2" * 32
TOKEN = "f00dfeed" * 4
FROM = "+15551230000"
GUARD = "+15551230009"
LIN = "Lin-Manuel Miranda"
LIN_ROW = "1,Lin-Manuel Miranda,+15550100001,100,wanted\n"


def env() -> dict[str, str]:
    return clean_env(TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN)


def wanted_site(base: Path, fake: FakeTwilio, extra: str = "", timeout: float = 10.0) -> Site:
    """Lin-Manuel (wanted) on the watchlist; known faces texted to the guard through `fake`."""
    return make_site(
        base,
        (
            f'[twilio]\napi_url = "{fake.url}"\nfrom_number = "{FROM}"\ntimeout = {timeout}\n'
            f'[[alerts.route]]\nto = ["{GUARD}"]\nevents = ["known_face"]\n{extra}'
        ),
        people=[("1", LIN, "lin-manuel-miranda.png", "wanted")],
    )


def run(daemons, site: Site, *args: str, source: Path = CLIP) -> Daemon:
    return daemons(site.config_path, "--source", str(source), *args, env=env())


def lin_texts(fake: FakeTwilio) -> list[str]:
    return [r.form["Body"][0] for r in fake.delivered() if LIN in r.form["Body"][0]]


def finish(daemon: Daemon, timeout: float = 90) -> str:
    """Wait for the daemon to play the clip to its end and exit 0; its log."""
    assert daemon.wait(timeout) == 0, daemon.stderr
    assert "Traceback" not in daemon.stderr, daemon.stderr
    return daemon.stderr


def assert_lin_texted_once(fake: FakeTwilio, log: str) -> None:
    texts = lin_texts(fake)
    assert len(texts) == 1, (texts, log)
    assert texts[0].startswith(f"EdgeGuard ALERT Site: {LIN} (Id 1, wanted)"), texts


def lines_with(log: str, text: str) -> list[str]:
    return [line for line in log.splitlines() if text in line]


@pytest.fixture
def fake():
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MB tmpfs of our own, and a way to fill it up to the last byte."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; the file (delete it to free the space)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for block in (1024 * 1024, 4096, 512):
            try:
                while fh.write(bytes(block)):
                    pass
            except OSError:
                pass
    assert shutil.disk_usage(folder).free < 64 * 1024
    return filler


def clip_after_a_pause(path: Path, seconds: float = 3.0) -> Path:
    """The clip with `seconds` of an empty stage before it (MJPEG, made here from the test clip)."""
    cap = cv2.VideoCapture(str(CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    ok, first = cap.read()
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (first.shape[1], first.shape[0])
    )
    for _ in range(int(seconds * fps)):
        writer.write(np.full_like(first, 40))
    while ok:
        writer.write(first)
        ok, first = cap.read()
    writer.release()
    cap.release()
    return path


def empty_stage(path: Path, frames: int = 15) -> Path:
    """A short video with no faces in it (made here, not test data)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for n in range(frames):
        writer.write(np.full((240, 320, 3), 60 + n, np.uint8))
    writer.release()
    return path


# ---------------------------------------------------------------- full disks


def test_a_disk_that_fills_while_running_loses_no_event_and_no_alert(tmp_path, small_disk, fake, daemons):
    site = wanted_site(small_disk / "site", fake, "[camera]\nrealtime = true\n")
    daemon = run(daemons, site, source=clip_after_a_pause(tmp_path / "paused.avi"))
    daemon.wait_for_line("running: camera", 60)
    filler = fill(small_disk)  # before Lin-Manuel walks on stage
    log = finish(daemon)
    assert_lin_texted_once(fake, log)
    [line] = lines_with(log, "disk full on")
    assert "released the 4 MB reserve" in line
    filler.unlink()
    events = helpers.edgeguard(site.config_path, "events", "--json").stdout
    assert '"type": "known_face"' in events and LIN in events


def test_a_daemon_started_on_a_full_disk_runs_and_writes_its_events_once_there_is_room(
    small_disk, fake, daemons
):
    site = wanted_site(small_disk / "site", fake)
    filler = fill(small_disk)
    daemon = run(daemons, site)
    wait_for(lambda: lin_texts(fake), 60, lambda: f"Lin-Manuel's text:\n{daemon.stderr}")
    filler.unlink()  # room again: what was kept in memory is written at the next try, or at exit
    log = finish(daemon)
    assert_lin_texted_once(fake, log)
    assert len(lines_with(log, "event log: cannot write events.db")) == 1
    assert len(lines_with(log, "outbox: cannot write outbox.db")) == 1
    assert lines_with(log, "event log: writing to") and lines_with(log, "outbox: writing to")
    events = helpers.edgeguard(site.config_path, "events", "--json").stdout
    assert '"type": "known_face"' in events
    sent = helpers.edgeguard(site.config_path, "alerts", "--json").stdout
    assert '"status": "sent"' in sent


# ---------------------------------------------------------------- damaged databases


def test_databases_full_of_random_bytes_are_named_moved_aside_and_replaced(tmp_path, fake, daemons):
    site = wanted_site(tmp_path / "site", fake)
    for name in ("events.db", "outbox.db"):
        (site.base / name).write_bytes(os.urandom(8192))
    for command in ("events", "alerts"):
        result = helpers.edgeguard(site.config_path, command)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"{site.base / (command if command == 'events' else 'outbox')}" in result.stderr
        assert "is damaged" in result.stderr
    log = finish(run(daemons, site))
    assert_lin_texted_once(fake, log)
    for name, what in (("events.db", "event log"), ("outbox.db", "outbox")):
        [line] = lines_with(log, f"{what}: {site.base / name} was damaged")
        assert "moved aside to" in line
        assert len(list(site.base.glob(f"{name}.damaged-*"))) == 1
    assert helpers.edgeguard(site.config_path, "events").returncode == 0


def test_pending_messages_of_a_damaged_outbox_are_carried_over(tmp_path, fake, daemons):
    site = wanted_site(tmp_path / "site", fake)
    outbox = site.base / "outbox.db"
    db = sqlite3.connect(outbox)
    from edgeguard.alerts.outbox import SCHEMA

    db.executescript(SCHEMA)
    with db:
        for n in range(3):
            db.execute(
                "INSERT INTO messages (created, to_number, body, next_attempt) VALUES (?, ?, ?, 0)",
                (time.time(), GUARD, f"left from before {n}"),
            )
    page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages_recipient'").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with open(outbox, "r+b") as fh:  # one index page overwritten: quick_check fails, the table still reads
        fh.seek((page - 1) * size)
        fh.write(os.urandom(size))
    log = finish(run(daemons, site))
    [line] = lines_with(log, "was damaged")
    assert "3 row(s) read from it were carried over" in line, line
    bodies = [r.form["Body"][0] for r in fake.delivered()]
    assert bodies[:3] == [f"left from before {n}" for n in range(3)], bodies
    assert_lin_texted_once(fake, log)


# ---------------------------------------------------------------- hostile Details.csv


def test_a_5_mb_field_in_details_csv_is_reported_with_its_line(tmp_path, fake, daemons):
    site = wanted_site(tmp_path / "site", fake)
    site.details.write_text(
        Site.HEADER + "2,Alex," + "9" * 5_000_000 + ",100,vip\n" + LIN_ROW, encoding="utf-8"
    )
    log = finish(run(daemons, site))
    assert_lin_texted_once(fake, log)
    [line] = lines_with(log, f"{site.details} line 2:")
    assert "more than 16,384: line ignored" in line


def test_an_unterminated_quote_is_reported_where_it_starts_and_later_rows_still_count(
    tmp_path, fake, daemons
):
    site = wanted_site(tmp_path / "site", fake)
    site.details.write_text(
        Site.HEADER + '2,"Alex Lacamoire,+15550100002,100,vip\n' + LIN_ROW, encoding="utf-8"
    )
    log = finish(run(daemons, site))
    assert_lin_texted_once(fake, log)  # the row after the bad quote is read, with its category
    [line] = lines_with(log, f"{site.details} line 2:")
    assert "a quote opens a field here and does not close" in line


def test_a_name_with_a_newline_and_an_escape_forges_no_log_line_and_no_text_line(tmp_path, fake, daemons):
    site = wanted_site(tmp_path / "site", fake)
    forged = "ERROR edgeguard.service.daemon: the camera is unplugged"
    site.details.write_text(
        Site.HEADER + f'1,"{LIN}\n{forged}\x1b[31m",+15550100001,100,wanted\n', encoding="utf-8"
    )
    log = finish(run(daemons, site))
    assert not any(line.startswith(forged) for line in log.splitlines()), log
    assert "\x1b" not in log
    [text] = lin_texts(fake)
    assert "\n" not in text and "\x1b" not in text and "\r" not in text
    assert text.startswith(f"EdgeGuard ALERT Site: {LIN}?x0a")  # visible, not hidden; "\" is not GSM-7


# ---------------------------------------------------------------- symlinks


def test_symlinks_in_training_image_are_refused_not_followed(tmp_path, fake, daemons):
    site = wanted_site(tmp_path / "site", fake)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(PEOPLE / "obama.jpg", elsewhere / "obama.jpg")
    (site.training / "1" / "passwd.jpg").symlink_to("/etc/passwd")
    (site.training / "1" / "obama.jpg").symlink_to(elsewhere / "obama.jpg")
    (site.training / "3").symlink_to(elsewhere, target_is_directory=True)
    log = finish(run(daemons, site))
    assert_lin_texted_once(fake, log)
    for link in ("1/passwd.jpg", "1/obama.jpg", "3"):
        [line] = lines_with(log, f"{site.training / link}:")
        assert "a symbolic link, not followed" in line
    assert lines_with(log, "watchlist: 1 people enrolled from 1 photos")
    check = helpers.edgeguard(site.config_path, "enroll", "--check")
    assert "1 people enrolled from 1 photos" in check.stdout


def test_check_flags_world_readable_biometric_data(tmp_path, fake):
    site = wanted_site(tmp_path / "site", fake)
    site.training.chmod(0o755)
    site.details.chmod(0o644)
    out = helpers.edgeguard(site.config_path, "check", "--source", str(CLIP)).stdout
    assert f"[WARN] privacy of training photos: {site.training} is open to other users" in out
    assert f"[WARN] privacy of Details.csv: {site.details} is open to other users" in out


# ---------------------------------------------------------------- slow copies


def test_a_photo_copied_slowly_gives_one_reload_and_no_complaint(tmp_path, fake, daemons):
    site = wanted_site(
        tmp_path / "site", fake, "[camera]\nloop = true\nrealtime = true\n[watchlist]\ndebounce = 0.5\n"
    )
    daemon = run(daemons, site)
    daemon.wait_for_line("running: camera", 60)
    site.add_row("4", "Joe Biden")
    daemon.wait_for_line("watchlist reloaded", 30)  # the row alone: one reload, before the photo comes
    data = (PEOPLE / "biden.jpg").read_bytes()
    (site.training / "4").mkdir()
    with open(
        site.training / "4" / "biden.jpg", "wb"
    ) as fh:  # four chunks, 1.5 s apart: longer than the debounce
        for n in range(4):
            fh.write(data[n * len(data) // 4 : (n + 1) * len(data) // 4])
            fh.flush()
            time.sleep(1.5)
    wait_for(lambda: len(lines_with(daemon.stderr, "watchlist reloaded")) >= 2, 30, lambda: daemon.stderr)
    wait_for(lambda: lin_texts(fake), 60, lambda: daemon.stderr)
    daemon.stop()
    log = daemon.stderr
    assert lines_with(log, "watchlist reloaded: 2 people, 2 photos"), log
    assert len(lines_with(log, "watchlist reloaded")) == 2, log  # the row, then the photo once complete
    assert not lines_with(log, "biden.jpg"), log  # never seen half-written
    assert len(lin_texts(fake)) == 1


# ---------------------------------------------------------------- a Twilio that answers too late


def test_a_message_twilio_accepted_but_answered_too_late_is_not_sent_again(tmp_path, fake, daemons):
    fake.script = [("hang", 4)]
    site = wanted_site(tmp_path / "site", fake, timeout=1.0)
    log = finish(run(daemons, site))
    assert_lin_texted_once(fake, log)
    assert len(fake.received) == 1 and len(fake.lookups) == 1
    assert lines_with(log, "Twilio had accepted it already")


def test_a_message_in_flight_at_kill_9_is_not_sent_again_after_the_restart(tmp_path, fake, daemons):
    fake.script = [("hang", 30)]
    site = wanted_site(tmp_path / "site", fake)
    first = run(daemons, site, "--realtime")
    wait_for(lambda: lin_texts(fake), 60, lambda: first.stderr)  # Twilio has it; its answer hangs
    first.stop(signal.SIGKILL)
    log = finish(
        run(daemons, site, source=empty_stage(tmp_path / "empty.avi"))
    )  # nobody to alert about again
    assert_lin_texted_once(fake, first.stderr + log)
    assert len(fake.received) == 1 and len(fake.lookups) == 1
    assert lines_with(log, "Twilio had accepted it already")
