"""Log lines: a time in a terminal or a file, none under journald (it stamps lines itself)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from edgeguard.service.logs import to_journal

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING edgeguard\.x: hello$")
SCRIPT = (
    "import logging; from edgeguard.service.logs import setup_logging; setup_logging(); "
    "logging.getLogger('edgeguard.x').warning('hello')"
)


def _stderr(env: dict[str, str], stderr_path) -> str:
    with open(stderr_path, "w") as err:
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, stderr=err, check=True, timeout=60)
    return stderr_path.read_text()


def test_lines_in_a_file_carry_the_time(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    assert LINE.match(_stderr(env, tmp_path / "err.txt").strip())


def test_under_journald_the_journal_stamps_the_line(tmp_path):
    path = tmp_path / "err.txt"
    path.touch()
    info = path.stat()
    env = dict(os.environ, JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}")
    assert _stderr(env, path).strip() == "WARNING edgeguard.x: hello"


def test_another_journal_stream_is_not_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    with open(tmp_path / "f", "w") as fh:
        assert not to_journal(fh)
