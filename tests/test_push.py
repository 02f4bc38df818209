"""Push cameras: the bearer tokens, PushFeed's checks, the /upload_frame endpoint through the real Flask app
(its test client, a real users.db), and FrameSource(push) delivering what was pushed."""

from __future__ import annotations

import io
import logging
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLIP, Site
from flask.testing import FlaskClient
from helpers import threads_named, wait_for

from edgeguard.capture import FrameSource, SourceError
from edgeguard.config import Config
from edgeguard.sources.push import (
    NotJpeg,
    PushFeed,
    PushTokenError,
    jpeg_size,
    push_token,
    push_token_location,
)
from edgeguard.sources.spec import parse_source
from edgeguard.web.app import create_app
from edgeguard.web.context import Dashboard, SiteStatus
from edgeguard.web.site import build_dashboard

CAMERA = "Front Gate"
URL = "/upload_frame/Front%20Gate"
READ_TIMEOUT = 0.5


def site_config(tmp_path: Path, fps: int = 60) -> Config:
    """A site with one push camera (a name with a space), one USB camera, and small push limits."""
    site = Site(tmp_path / "site")
    site.write_config(f"""
[[camera]]
name = "{CAMERA}"
source = "Push"
fps = {fps}
read_timeout = {READ_TIMEOUT}
[[camera]]
name = "usb"
source = "0"
[push]
max_frame_kb = 64
max_frame_pixels = 1000000
""")
    return site.config()


@dataclass
class Rig:
    config: Config
    feed: PushFeed
    source: FrameSource
    dashboard: Dashboard
    token: str
    client: FlaskClient

    def post(self, body: bytes, token: str | None = None, url: str = URL):
        headers = {
            "Authorization": f"Bearer {self.token if token is None else token}",
            "Content-Type": "image/jpeg",
        }
        return self.client.post(url, data=body, headers=headers)


def feed_of(config: Config) -> PushFeed:
    """The push camera's feed, as the daemon makes it."""
    return PushFeed(config.cameras[0], config.push, push_token(CAMERA, config.paths.base_dir))


def make_rig(tmp_path: Path, fps: int = 60) -> Rig:
    config = site_config(tmp_path, fps)
    feed = feed_of(config)
    dashboard, _ = build_dashboard(
        config,
        status=SiteStatus,
        watchlist=lambda: None,
        event_log=None,
        outbox=None,
        engine=lambda: None,
        signer=None,
        push={CAMERA: feed},
    )
    source = FrameSource(config.cameras[0], push=feed)
    source.start()
    return Rig(
        config,
        feed,
        source,
        dashboard,
        push_token(CAMERA, config.paths.base_dir),
        create_app(dashboard).test_client(),
    )


@pytest.fixture
def rig(tmp_path) -> Iterator[Rig]:
    rig = make_rig(tmp_path)
    yield rig
    rig.source.stop()
    rig.dashboard.users.close()


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(CLIP))
    ok, image = cap.read()
    cap.release()
    assert ok, f"cannot read {CLIP}"
    return image  # 640x360


@pytest.fixture(scope="module")
def jpeg(frame) -> bytes:
    return cv2.imencode(".jpg", frame)[1].tobytes()


def with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF0 marker claiming another size (the data stays that of the small image)."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 9 :]


# -- tokens


def test_a_token_file_is_made_once_privately_and_reused(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="edgeguard.capture"):
        token = push_token(CAMERA, tmp_path)
        again = push_token(CAMERA, tmp_path)
    path = tmp_path / "push_tokens" / f"{CAMERA}.token"
    assert token == again and len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert caplog.text.count("new push token written to") == 1 and str(path) in caplog.text
    assert token not in caplog.text
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left beside it


def test_the_credential_wins_over_the_file(tmp_path, monkeypatch):
    state = tmp_path / "state"
    path = state / "push_tokens" / f"{CAMERA}.token"
    assert push_token_location(CAMERA, state) == f"{path} (made when the daemon starts)" and not path.exists()
    file_token = push_token(CAMERA, state)
    assert push_token_location(CAMERA, state) == str(path)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "edgeguard_push_Front_Gate").write_text("from-systemd-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert push_token(CAMERA, state) == "from-systemd-credential"
    assert push_token_location(CAMERA, state) == "credential edgeguard_push_Front_Gate"
    assert push_token("usb", state) != file_token  # other cameras still get their files


def test_an_empty_or_planted_token_file_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "push_tokens"
    folder.mkdir()
    (folder / "gate.token").write_text("\n")
    with pytest.raises(PushTokenError, match="gate.token: the push token is empty") as caught:
        push_token("gate", tmp_path)
    assert isinstance(caught.value, OSError)
    (folder / "door.token").write_text("secret\n")
    with pytest.raises(
        PushTokenError, match=r"door.token: the push token is too short \(6 characters, at least 16\)"
    ):
        push_token("door", tmp_path)
    (tmp_path / "elsewhere").write_text("attacker's token")
    (folder / "yard.token").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(
        PushTokenError, match="yard.token: cannot make or read the push token: a symbolic link"
    ):
        push_token("yard", tmp_path)


# -- the JPEG header


def test_jpeg_size_reads_the_sof_marker_without_decoding(jpeg):
    assert jpeg_size(jpeg) == (640, 360)
    assert jpeg_size(with_size(jpeg, 10000, 10000)) == (10000, 10000)
    for body, why in (
        (b"", "FF D8 FF"),
        (b"GIF89a...", "FF D8 FF"),
        (jpeg[:20], "no SOF marker"),
        (b"\xff\xd8\xff\xd9", "no SOF marker"),
        (jpeg[: jpeg.index(b"\xff\xc0") + 6], "cut short"),
        (with_size(jpeg, 0, 360), "no size"),
    ):
        with pytest.raises(NotJpeg, match=why):
            jpeg_size(body)


# -- the endpoint and the feed


def test_a_good_jpeg_is_taken_and_read_by_the_frame_source(rig, jpeg):
    assert rig.source.state == "opening"
    assert "waiting for pushed frames" in rig.source.description
    before = time.time()
    answer = rig.post(jpeg)
    assert answer.status_code == 200 and answer.get_json() == {"taken": True, "frame": 0}
    frame = rig.source.read(1.0)
    assert frame is not None and frame.image.shape == (360, 640, 3) and frame.image.dtype == np.uint8
    assert frame.number == 0 and frame.pos_ms is None and before <= frame.time <= time.time()
    assert rig.source.state == "streaming" and not rig.source.ended
    assert rig.source.description == f"push {URL} (last 640x360)"
    assert rig.post(jpeg).get_json() == {"taken": True, "frame": 1}
    assert rig.feed.stats.taken == 2


def test_the_newest_pushed_frame_wins(rig, frame):
    for shade in (10, 20, 30):
        assert (
            rig.post(cv2.imencode(".jpg", np.full((120, 160, 3), shade, np.uint8))[1].tobytes()).status_code
            == 200
        )
    newest = rig.source.read(1.0)
    assert newest.number == 2 and abs(int(newest.image.mean()) - 30) <= 2
    assert rig.source.read(0.1) is None


def test_a_missing_or_wrong_token_is_401_and_logged_once_a_minute(rig, jpeg, caplog):
    with caplog.at_level(logging.WARNING, logger="edgeguard.web.upload"):
        wrong = rig.post(jpeg, token="not-the-token")
        missing = rig.client.post(URL, data=jpeg)
        other = rig.post(jpeg, token=push_token("usb", rig.config.paths.base_dir))
    for answer in (wrong, missing, other):
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.get_json() == {"taken": False, "reason": "missing or wrong token"}
    assert caplog.text.count("missing or wrong token") == 1 and "127.0.0.1" in caplog.text
    assert rig.token not in caplog.text and "not-the-token" not in caplog.text
    assert rig.feed.stats.taken == 0 and rig.source.read(0.1) is None


def test_repeated_wrong_tokens_from_an_address_are_throttled(rig, jpeg):
    codes = [rig.post(jpeg, token=f"guess {n}").status_code for n in range(8)]
    assert codes[:5] == [401] * 5 and codes[-1] == 429
    refused = rig.post(jpeg)  # even the right token waits: the address is throttled, not the camera
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["taken"] is False


def test_unknown_and_not_push_cameras_are_answered_like_a_wrong_token(rig, jpeg):
    wrong = rig.post(jpeg, token="not-the-token")
    for url in ("/upload_frame/nowhere", "/upload_frame/usb"):
        answer = rig.post(jpeg, url=url)
        assert answer.status_code == wrong.status_code == 401 and answer.get_json() == wrong.get_json()


def test_not_a_jpeg_is_400_with_the_reason(rig, frame):
    png = cv2.imencode(".png", cv2.resize(frame, (160, 90)))[1].tobytes()
    answer = rig.post(png)
    assert answer.status_code == 400
    assert answer.get_json() == {"taken": False, "reason": "not a JPEG: it does not start with FF D8 FF"}
    assert rig.feed.stats.refused == {"not a JPEG": 1}


def test_a_truncated_jpeg_is_400_damaged(rig, jpeg):
    answer = rig.post(jpeg[: len(jpeg) // 2])
    assert answer.status_code == 400 and answer.get_json()["reason"].startswith("damaged JPEG")
    no_scan = (
        jpeg[: jpeg.index(b"\xff\xda")] + b"\xff\xd9"
    )  # a whole header, a size, an end, but no image data
    answer = rig.post(no_scan)
    assert answer.status_code == 400 and answer.get_json()["reason"].startswith("damaged JPEG")
    assert rig.feed.stats.refused == {"damaged": 2} and rig.source.read(0.1) is None


def test_an_oversized_body_is_413_before_it_is_read(rig, jpeg):
    big = jpeg + bytes(64 * 1024)
    answer = rig.post(big)
    assert answer.status_code == 413 and "over 64 KB" in answer.get_json()["reason"]
    assert rig.feed.stats.refused == {}  # refused by Content-Length, the feed never saw it
    assert rig.feed.offer(big).status == 413  # and the feed refuses it too when offered directly


def test_too_many_pixels_is_413_without_decoding(rig, jpeg):
    answer = rig.post(with_size(jpeg, 10000, 10000))
    assert answer.status_code == 413
    assert answer.get_json()["reason"] == "frame of 10000x10000 has more than 1000000 pixels"
    assert rig.feed.stats.refused == {"too many pixels": 1}


def test_no_content_length_is_411(rig, jpeg):
    answer = rig.client.post(
        URL,
        input_stream=io.BytesIO(jpeg),
        headers={"Authorization": f"Bearer {rig.token}", "Transfer-Encoding": "chunked"},
    )
    assert answer.status_code == 411 and answer.get_json()["taken"] is False


def test_other_methods_and_no_session_or_csrf_needed(rig, jpeg):
    assert rig.client.get(URL).status_code == 405
    assert (
        rig.post(jpeg).status_code == 200
    )  # a POST without session cookie or CSRF token: the bearer token is enough
    assert (
        rig.client.post("/users", data={"name": "x"}).status_code == 403
    )  # the dashboard's own POSTs still are not


def test_a_flood_beyond_the_cameras_fps_is_429(tmp_path, jpeg):
    rig = make_rig(tmp_path, fps=2)
    try:
        answers = [rig.post(jpeg) for _ in range(10)]
        codes = [a.status_code for a in answers]
        assert codes[:2] == [200, 200] and codes.count(429) >= 7
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["Retry-After"] == "1"
        assert refused.get_json() == {"taken": False, "reason": "more than 2 frames a second"}
        time.sleep(0.6)  # the bucket refills at 2 frames a second
        assert rig.post(jpeg).status_code == 200
    finally:
        rig.source.stop()
        rig.dashboard.users.close()


def test_a_stopped_camera_is_503(rig, jpeg):
    rig.source.stop()
    answer = rig.post(jpeg)
    assert answer.status_code == 503 and answer.get_json()["reason"] == "camera not running"
    assert "Retry-After" in answer.headers


# -- FrameSource(push)


def test_push_state_opening_streaming_stalled_streaming(rig, jpeg, caplog):
    with caplog.at_level(logging.INFO, logger="edgeguard.capture"):
        assert rig.source.state == "opening"
        rig.post(jpeg)
        assert rig.source.state == "streaming"
        # Nobody reads: the state is worked out when asked, not by a reader.
        wait_for(lambda: rig.source.state == "stalled", READ_TIMEOUT + 2, "stalled")
        assert (
            rig.source.state == "stalled" and rig.source.read(0.05) is not None
        )  # the last frame is still there
        rig.post(jpeg)
        assert rig.source.state == "streaming"
    assert caplog.text.count(f"no pushed frame for {READ_TIMEOUT:g} s") == 1
    assert caplog.text.count("receiving pushed frames (640x360)") == 1
    assert caplog.text.count("pushed frames again after") == 1
    assert not rig.source.ended


def test_push_source_needs_a_feed_and_detaches_on_stop(tmp_path, jpeg):
    config = site_config(tmp_path)
    assert parse_source("PUSH").kind == "push" and parse_source(" push ").target == ""
    with pytest.raises(SourceError, match="no push feed was given"):
        FrameSource(config.cameras[0]).start()
    feed = feed_of(config)
    first, second = FrameSource(config.cameras[0], push=feed), FrameSource(config.cameras[0], push=feed)
    first.start()
    second.start()  # a reload's new source takes over; the old one's stop() must not detach it
    first.stop()
    assert feed.offer(jpeg).frame == 0 and second.read(1.0).number == 0
    second.stop()
    assert feed.offer(jpeg).status == 503
    assert first.state == second.state == "stopped"


def test_a_push_camera_has_no_reader_thread(rig, jpeg):
    assert rig.feed.offer(jpeg).taken  # decoded and delivered on this thread
    assert not threads_named(f"capture-{CAMERA}") and not threads_named(f"capture-{CAMERA}-connection")
    assert rig.source.read(1.0).image.shape == (360, 640, 3)


def test_a_refused_body_is_answered_over_a_real_socket_not_reset(tmp_path, jpeg):
    """The server answers 413 from the headers and lingers, draining the unread body, so that a client still
    sending it (http.client sends it whole before it reads) gets the answer instead of a broken pipe."""
    import http.client

    from helpers import free_port

    from edgeguard.config import load_config

    path = Path(site_config(tmp_path).source)
    port = free_port()
    path.write_text(path.read_text() + f'[web]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
    config = load_config(path)
    feed = feed_of(config)
    dashboard, server = build_dashboard(
        config,
        status=SiteStatus,
        watchlist=lambda: None,
        event_log=None,
        outbox=None,
        engine=lambda: None,
        signer=None,
        push={CAMERA: feed},
    )
    server.start()
    big = jpeg + bytes(3 * 1024 * 1024)  # 48 times the camera's max_frame_kb: more than socket buffers hold
    try:
        for _ in range(10):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                headers = {"Authorization": f"Bearer {push_token(CAMERA, config.paths.base_dir)}"}
                conn.request("POST", URL, body=big, headers=headers | {"Content-Type": "image/jpeg"})
                assert conn.getresponse().status == 413
            finally:
                conn.close()
    finally:
        server.stop()
        dashboard.users.close()
