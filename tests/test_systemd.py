"""The daemon under systemd's eyes: a real process, a real NOTIFY_SOCKET owned by the test,
the real unit file checked by systemd-analyze, and install.sh into a throwaway root."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CLIP, Site, make_site
from daemons import Daemon
from helpers import clean_env
from streams import MjpegServer, jpeg_frames

from edgeguard.store.audit import read_rows

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "edgeguard.service"


class NotifySocket:
    """The datagram socket systemd would own: collects every message the daemon sends."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.messages: list[tuple[float, str]] = []

    def collect(self, until: float) -> None:
        while time.monotonic() < until:
            self.sock.settimeout(max(0.01, until - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(self, text: str, timeout: float) -> bool:
        return self.collect_until(lambda: any(text in m for _, m in self.messages), timeout)

    def collect_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Collect messages until `condition()` holds (True) or `timeout` seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            self.collect(min(deadline, time.monotonic() + 0.1))
        return True

    def count(self, text: str, since: float = 0.0) -> int:
        return sum(1 for t, m in self.messages if text in m and t >= since)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def daemon_site(tmp_path: Path) -> Site:
    return make_site(
        tmp_path / "site", people=[("1", "Lin-Manuel Miranda", "lin-manuel-miranda.png", "staff")]
    )


def start(site: Site, notify: NotifySocket, *args: str, watchdog_usec: int = 1_000_000) -> Daemon:
    env = clean_env(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC=str(watchdog_usec))
    env.pop("WATCHDOG_PID", None)
    return Daemon(site.config_path, *args, env=env)


@pytest.mark.slow  # a daemon on a looping clip; asserts on how often it pings and how long stopping took
def test_ready_watchdog_and_sigterm_with_a_looping_video(daemon_site: Site, tmp_path: Path) -> None:
    daemon_site.write_config("[camera]\nloop = true\nrealtime = true\n")
    notify = NotifySocket(tmp_path)
    daemon = start(daemon_site, notify, "--source", str(CLIP))
    try:
        assert notify.wait_for("READY=1", 60), notify.messages
        ready = next(m for _, m in notify.messages if "READY=1" in m)
        assert "STATUS=" in ready and "1 people enrolled" in ready
        started = time.monotonic()
        notify.collect(time.monotonic() + 3.0)
        assert notify.count("WATCHDOG=1", since=started) >= 4  # every half of WATCHDOG_USEC while frames flow
        daemon.proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert daemon.wait(timeout=15) == 0, daemon.stderr
        assert time.monotonic() - stopped < 10  # generous: well within systemd's stop timeout
        notify.collect(time.monotonic() + 0.2)  # the daemon has exited: all it sent is in the socket
        assert notify.count("STOPPING=1") == 1
    finally:
        daemon.kill()
        notify.close()


@pytest.mark.slow  # a daemon on a live stream through a stall
def test_watchdog_stops_while_the_stream_stalls_and_resumes_after(daemon_site: Site, tmp_path: Path) -> None:
    server = MjpegServer(jpeg_frames(CLIP, 60), fps=20).start()
    daemon_site.write_config("[camera]\nread_timeout = 1.0\n")
    notify = NotifySocket(tmp_path)
    daemon = start(daemon_site, notify, "--source", server.url)
    try:
        assert notify.wait_for("READY=1", 60), notify.messages
        notify.collect(time.monotonic() + 1.5)
        server.pause()
        # The daemon says it had no frame for read_timeout: the frames on the way have been processed.
        assert notify.collect_until(lambda: "no frame for 1 s" in daemon.stderr, 20), daemon.stderr
        stalled = daemon.started + daemon.line_time("no frame for 1 s")
        # It goes on through the stall: after its backoff (1 s) it connects again, still getting nothing.
        assert notify.collect_until(lambda: server.requests >= 2, 20), daemon.stderr
        assert notify.count("WATCHDOG=1", since=stalled) == 0  # no frames: no pings, systemd would restart us
        server.resume()
        resumed = time.monotonic()
        notify.collect_until(lambda: notify.count("WATCHDOG=1", since=resumed) >= 1, 20)
        assert notify.count("WATCHDOG=1", since=resumed) >= 1  # the camera came back: pings again
        assert daemon.proc.poll() is None  # the daemon itself kept running through the stall
    finally:
        try:
            daemon.stop(timeout=10)
        finally:
            daemon.kill()
            server.stop()
            notify.close()


@pytest.mark.slow  # a daemon started twice over, on a looping clip
def test_sighup_reloads_a_valid_config_and_keeps_running_on_an_invalid_one(
    daemon_site: Site, tmp_path: Path
) -> None:
    daemon_site.write_config('[camera]\nloop = true\nrealtime = true\n[location]\nname = "Gate A"\n')
    notify = NotifySocket(tmp_path)
    daemon = start(daemon_site, notify, "--source", str(CLIP))
    try:
        assert notify.wait_for("READY=1", 60)
        daemon_site.write_config('[camera]\nloop = true\nrealtime = true\n[location]\nname = "Gate B"\n')
        daemon.proc.send_signal(signal.SIGHUP)
        assert notify.wait_for("RELOADING=1", 20)
        reloaded = time.monotonic()
        notify.collect_until(lambda: notify.count("READY=1", since=reloaded) > 0, 60)
        assert notify.count("READY=1", since=reloaded) == 1  # ready again with the new configuration
        daemon_site.write_config("[camera]\nloop = true\nbogus_key = 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        # the daemon has read the invalid file and said so: only now can it tell whether it stays up
        assert notify.collect_until(lambda: "keeping the running one" in daemon.stderr, 20), daemon.stderr
        assert daemon.proc.poll() is None  # an invalid config does not take the camera down
        broken = time.monotonic()
        notify.collect_until(lambda: notify.count("WATCHDOG=1", since=broken) >= 1, 10)
        assert notify.count("WATCHDOG=1", since=broken) >= 1
        assert daemon.stop(signal.SIGTERM, timeout=10) == 0
        err = daemon.stderr
        assert "running: camera camera" in err and "at Gate B" in err
        assert "bogus_key" in err and "keeping the running one" in err
        reloads = [r for r in read_rows(daemon_site.base / "audit.db") if r.action == "config reload"]
        assert len(reloads) == 1 and reloads[0].address == "signal"  # the invalid file changed nothing
        assert reloads[0].target == str(daemon_site.config_path)
    finally:
        daemon.kill()
        notify.close()


def test_a_bad_config_exits_78_with_one_line(daemon_site: Site, tmp_path: Path) -> None:
    daemon_site.write_config('[camera]\nfps = "fast"\n')
    notify = NotifySocket(tmp_path)
    daemon = start(daemon_site, notify)
    code = daemon.wait(timeout=30)
    err = daemon.stderr
    notify.close()
    assert code == 78
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and str(daemon_site.config_path) in lines[0] and "[camera] fps" in lines[0]


def test_unit_names_78_as_a_status_not_to_restart_on() -> None:
    text = UNIT.read_text()
    assert re.search(r"^RestartPreventExitStatus=78$", text, re.M)
    assert re.search(r"^Type=notify$", text, re.M) and re.search(r"^WatchdogSec=", text, re.M)
    assert re.search(r"^LoadCredential=twilio_auth_token:", text, re.M)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_exposure_is_at_most_2() -> None:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True, text=True
    )
    level = re.search(r"Overall exposure level for edgeguard.service: ([\d.]+)", out.stdout + out.stderr)
    assert level, out.stdout + out.stderr
    assert float(level.group(1)) <= 2.0


@pytest.mark.slow  # builds a virtualenv in the throwaway root
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_install_into_a_throwaway_root_gives_a_unit_that_verifies(tmp_path: Path) -> None:
    root = tmp_path / "root"
    out = subprocess.run(
        ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    unit = root / "etc/systemd/system/edgeguard.service"
    program = root / "opt/edgeguard/venv/bin/edgeguard"
    assert unit.read_text() == UNIT.read_text()
    assert subprocess.run([str(program), "--version"], capture_output=True, text=True).stdout.startswith(
        "edgeguard"
    )
    state = root / "var/lib/edgeguard"
    for folder in ("TrainingImage", "Details", "Unknown_Face_Captures", "TrainingImageLabel"):
        assert (state / folder).stat().st_mode & 0o777 == 0o700
    creds = root / "etc/edgeguard/credentials"
    assert creds.stat().st_mode & 0o007 == 0
    assert (creds / "twilio_auth_token").stat().st_mode & 0o777 == 0o640
    config = root / "etc/edgeguard/edgeguard.toml"
    assert config.stat().st_mode & 0o007 == 0 and 'base_dir = "/var/lib/edgeguard"' in config.read_text()
    # systemd-analyze verify checks the executables named in the unit: point them into the root.
    check = tmp_path / "edgeguard.service"
    check.write_text(unit.read_text().replace("/opt/edgeguard", str(root / "opt/edgeguard")))
    verified = subprocess.run(["systemd-analyze", "verify", str(check)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    # Idempotent: a second run upgrades in place and keeps the site data and the edited config.
    (state / "TrainingImage" / "7").mkdir()
    config.write_text(config.read_text() + "\n# edited by the installer\n")
    again = subprocess.run(
        ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (state / "TrainingImage" / "7").is_dir() and "edited by the installer" in config.read_text()
    # Uninstall keeps the site data unless told otherwise.
    subprocess.run(
        ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root), "--uninstall"],
        check=True,
        capture_output=True,
    )
    assert not unit.exists() and not program.exists() and (state / "TrainingImage" / "7").is_dir()
    subprocess.run(
        ["bash", str(REPO / "systemd" / "install.sh"), "--root", str(root), "--uninstall", "--purge"],
        check=True,
        capture_output=True,
    )
    assert not state.exists() and not config.exists()
