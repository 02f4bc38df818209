"""The README's quick start as a newcomer runs it: its blocks as they are, in a fresh clone of the checkout.

Block 1 (the install) is not repeated: the clone's `.venv` is this test run's virtual environment (the
README's test command made it with the same `pip install -e`).  The other blocks run in bash with PHOTO and
VIDEO from the test data and the dashboard's port swapped for a free one; block 5 (`edgeguard run`) runs in
the background while the dashboard is checked.  Then `git status` must be clean: running, enrolling and
logging in from a checkout write nothing git would pick up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import CLIP, PEOPLE
from helpers import clean_env, free_port, wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "a quick start password"
NAME = "Alice Example"


def quick_start_blocks(readme: str) -> list[str]:
    """The sh blocks between the quick-start markers, in order."""
    section = readme.split("<!-- quick-start -->", 1)[1].split("<!-- /quick-start -->", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    folder = tmp_path_factory.mktemp("quick") / "edgeguard"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder)], check=True, timeout=120)
    (folder / ".venv").symlink_to(Path(sys.prefix))
    return folder


def bash(
    block: str, cwd: Path, env: dict[str, str], stdin: str = "", check: bool = True
) -> subprocess.CompletedProcess:
    """The block in bash; with `check`, each command must succeed (else the block's last one counts)."""
    return subprocess.run(
        ["bash", "-euo" if check else "-uo", "pipefail", "-c", block],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def login(url: str) -> requests.Session:
    http = requests.Session()
    page = http.get(f"{url}/login", timeout=10).text
    token = re.search(r'action="/login">\s*<input type="hidden" name="csrf" value="([^"]+)"', page).group(1)
    answer = http.post(
        f"{url}/login",
        data={"csrf": token, "username": "alice", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return http


def test_the_quick_start_reaches_a_named_face_and_leaves_the_checkout_clean(clone):
    install, enroll, camera, user, run, alerts = quick_start_blocks((clone / "README.md").read_text())
    assert "pip install -e ." in install
    port = free_port()
    env = clean_env(PHOTO=str(PEOPLE / "lin-manuel-miranda.png"), VIDEO=str(CLIP))

    done = bash(enroll, clone, env)
    assert done.returncode == 0, done.stderr
    done = bash(camera.replace("8780", str(port)), clone, env)
    assert done.returncode == 0, done.stderr
    done = bash(user, clone, env, stdin=f"{PASSWORD}\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "user alice added (admin)" in done.stdout
    assert "0 failed" in done.stdout, done.stdout  # edgeguard check: warnings at most

    daemon = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", run],
        cwd=clone,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), 60, "the dashboard to answer")
        http = login(url)
        wait_for(lambda: named_row(http.get(f"{url}/detection_logs", timeout=10).text), 90, f"{NAME} named")
        assert named_row(http.get(f"{url}/", timeout=10).text)  # the overview's latest events

        def queued() -> bool:
            listed = bash(".venv/bin/edgeguard alerts --json", clone, env).stdout.splitlines()
            return any(NAME in json.loads(line)["body"] for line in listed)

        wait_for(queued, 30, "the sighting's alert in the outbox")
        done = bash(alerts, clone, env, check=False)
        assert done.returncode == 1, done.stderr  # test-alert: not sent (a dry run), and says why
        assert NAME in done.stdout and "dry_run" in done.stdout, done.stdout
        assert "dry run" in done.stdout, done.stdout  # test-alert's report
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=30)

    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == "", status.stdout


def named_row(page: str) -> bool:
    """Whether the page's event table has a known_face row naming NAME (not just NAME in a people list)."""
    rows = re.findall(r'<tr data-seq="\d+" class="event known_face">.*?</tr>', page, re.S)
    return any(NAME in row for row in rows)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/login", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
