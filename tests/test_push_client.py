"""`edgeguard push` as a subprocess against the real app served by waitress on 127.0.0.1 (a free port):
frames from the clip arrive and decode, a server that comes up late is waited for, a wrong token or camera
stops it with exit code 2, and 429 answers slow it down."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest
from conftest import CLIP
from helpers import clean_env, free_port, wait_for

from edgeguard.capture import FrameSource
from edgeguard.config import load_config
from edgeguard.sources.push import PushFeed, push_token
from edgeguard.web.context import SiteStatus
from edgeguard.web.site import build_dashboard

CAMERA = "Front Gate"


class PushServer:
    """A daemon's dashboard with one push camera, served on 127.0.0.1:`port`, and the camera's FrameSource."""

    def __init__(self, base: Path, port: int, fps: int = 60) -> None:
        base.mkdir(parents=True, exist_ok=True)  # a restarted server keeps the folder, and so the token
        (base / "edgeguard.toml").write_text(
            f'[paths]\nbase_dir = "{base}"\n[web]\nlisten = "127.0.0.1:{port}"\n'
            f'[[camera]]\nname = "{CAMERA}"\nsource = "push"\nfps = {fps}\n'
        )
        config = load_config(base / "edgeguard.toml")
        self.url = f"http://127.0.0.1:{port}"
        self.feed = PushFeed(config.cameras[0], config.push, push_token(CAMERA, config.paths.base_dir))
        self.token_file = config.paths.base_dir / "push_tokens" / f"{CAMERA}.token"
        self.dashboard, self.server = build_dashboard(
            config,
            status=SiteStatus,
            watchlist=lambda: None,
            event_log=None,
            outbox=None,
            engine=lambda: None,
            signer=None,
            push={CAMERA: self.feed},
        )
        self.source = FrameSource(config.cameras[0], push=self.feed)
        self.stopped = False

    def start(self) -> PushServer:
        self.source.start()
        self.server.start()
        return self

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.server.stop()
        self.source.stop()
        self.dashboard.users.close()

    def requests(self) -> int:
        """Frames that reached the feed: taken or refused by it."""
        stats = self.feed.stats
        return stats.taken + sum(stats.refused.values())


class Client:
    """`python -m edgeguard push ...`, its log in a file (readable while it runs)."""

    def __init__(self, tmp_path: Path, url: str, token_file: Path, *args: str, camera: str = CAMERA) -> None:
        config = tmp_path / "client.toml"
        config.write_text('[logging]\nlevel = "DEBUG"\n')
        self.log = tmp_path / "client.log"
        command = [
            sys.executable,
            "-m",
            "edgeguard",
            "push",
            "--url",
            url,
            "--camera",
            camera,
            "--token-file",
            str(token_file),
            "--config",
            str(config),
            *args,
        ]
        with self.log.open("w") as err:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=err, env=clean_env(), cwd=tmp_path
            )

    def text(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"edgeguard push still running after {timeout} s:\n{self.text()}")

    def stop(self) -> int:
        """SIGTERM, and its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait(10)


@pytest.fixture
def started() -> Iterator[Callable]:
    """Start servers and clients that are stopped (or killed) after the test whatever happens."""
    made: list[PushServer | Client] = []

    def start(thing: PushServer | Client) -> PushServer | Client:
        made.append(thing.start() if isinstance(thing, PushServer) else thing)
        return thing

    yield start
    for thing in reversed(made):
        if isinstance(thing, Client):
            thing.process.kill()
            thing.process.wait(5)
        else:
            thing.stop()


@pytest.fixture
def short_clip(tmp_path) -> Path:
    """The clip's first 45 frames (1.5 s at 30 fps) as a file of its own in the test's folder."""
    path = tmp_path / "short.avi"
    cap = cv2.VideoCapture(str(CLIP))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (640, 360))
    try:
        for _ in range(45):
            ok, image = cap.read()
            assert ok, f"cannot read {CLIP}"
            writer.write(image)
    finally:
        writer.release()
        cap.release()
    return path


def test_frames_from_a_file_arrive_decoded_and_the_end_of_the_file_ends_it(tmp_path, started, short_clip):
    server = started(PushServer(tmp_path / "site", free_port()))
    client = started(
        Client(
            tmp_path,
            server.url,
            server.token_file,
            "--source",
            str(short_clip),
            "--width",
            "320",
            "--fps",
            "10",
        )
    )
    frame = wait_for(lambda: server.source.read(0.2), 15, "a pushed frame")
    assert frame.image.shape == (180, 320, 3)  # shrunk to --width, aspect kept
    assert client.wait(15) == 0, client.text()
    stats = server.feed.stats
    assert 8 <= stats.taken <= 18 and stats.refused == {}  # 1.5 s of video at up to 10 frames a second
    assert server.source.state == "streaming"
    text = client.text()
    assert f"reached {server.url}/upload_frame/Front%20Gate" in text
    assert f"{stats.taken} frames sent, {stats.taken} taken, 0 refused, 0 reconnects" in text
    assert server.token_file.read_text().strip() not in text


def test_a_wrong_token_stops_it_with_exit_code_2(tmp_path, started, short_clip):
    server = started(PushServer(tmp_path / "site", free_port()))
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token\n")
    wrong.chmod(0o600)
    client = started(Client(tmp_path, server.url, wrong, "--source", str(short_clip)))
    assert client.wait(15) == 2
    assert "refused the token for camera 'Front Gate' (401" in client.text()
    assert "not-the-token" not in client.text()


def test_a_wrong_camera_stops_it_with_exit_code_2(tmp_path, started, short_clip):
    server = started(PushServer(tmp_path / "site", free_port()))
    client = started(
        Client(tmp_path, server.url, server.token_file, "--source", str(short_clip), camera="Back Gate")
    )
    assert client.wait(15) == 2
    assert "refused the token for camera 'Back Gate' (401" in client.text()  # alike: no enumeration


def test_a_token_file_others_can_read_is_refused(tmp_path, started, short_clip):
    token = tmp_path / "open.token"
    token.write_text("whatever\n")
    token.chmod(0o644)
    client = started(Client(tmp_path, "http://127.0.0.1:9", token, "--source", str(short_clip)))
    assert client.wait(15) == 2
    assert f"{token}: the token file is readable by other users; run 'chmod o-rwx {token}'" in client.text()


@pytest.mark.slow
def test_it_waits_with_backoff_for_a_server_that_comes_up_later(tmp_path, started):
    port = free_port()
    server = PushServer(tmp_path / "site", port)  # made (and its token written) but not listening yet
    client = started(Client(tmp_path, server.url, server.token_file, "--source", str(CLIP), "--fps", "10"))
    wait_for(
        lambda: "retrying with backoff up to 30 s" in client.text(),
        15,
        "the client noticing the server is down",
    )
    time.sleep(1.5)
    assert client.process.poll() is None
    started(server)
    wait_for(
        lambda: server.feed.stats.taken >= 5, 15, lambda: f"frames after the server came up:\n{client.text()}"
    )
    text = client.text()
    assert text.count("retrying with backoff") == 1  # one warning, the later attempts at debug level
    assert f"reached {server.url}" in text and "reached again" not in text
    assert "next attempt in 2 s" in text  # the backoff doubled

    server.stop()  # the daemon restarts: the kept-alive connection breaks, a new one is made
    wait_for(lambda: client.text().count("retrying with backoff") == 2, 15, "the client noticing the restart")
    again = started(PushServer(tmp_path / "site", port))  # the same state folder: the same token
    wait_for(lambda: again.feed.stats.taken >= 2, 15, lambda: f"frames after the restart:\n{client.text()}")
    assert client.stop() == 0
    text = client.text()
    assert f"reached again {server.url}" in text
    assert " 0 reconnects" not in text.splitlines()[-1]


@pytest.mark.slow
def test_429_answers_slow_it_down(tmp_path, started):
    server = started(PushServer(tmp_path / "site", free_port(), fps=1))
    client = started(Client(tmp_path, server.url, server.token_file, "--source", str(CLIP), "--fps", "10"))
    wait_for(lambda: server.feed.stats.taken >= 1, 15, lambda: f"a first frame:\n{client.text()}")
    start, before = time.monotonic(), server.requests()
    time.sleep(4)
    requests, seconds = server.requests() - before, time.monotonic() - start
    assert client.stop() == 0
    assert server.feed.stats.refused.get("rate", 0) >= 1
    assert requests <= 3 * seconds  # it waits Retry-After (1 s) after each 429: about 2 a second, not 10
    assert server.feed.stats.taken <= 2 + seconds
