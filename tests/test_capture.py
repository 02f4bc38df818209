"""FrameSource against real video files and real MJPEG/HTTP servers on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CLIP, CLIP_FPS, CLIP_FRAMES
from helpers import free_port, wait_for
from streams import MjpegServer, jpeg_frames  # tests/streams.py

from edgeguard.capture import Frame, FrameSource, SourceError
from edgeguard.config import CameraConfig
from edgeguard.sources.base import usable
from edgeguard.sources.jetson import has_gstreamer, jetson_pipeline
from edgeguard.sources.spec import parse_source
from edgeguard.sources.stream import redact

FAST_BACKOFF = (0.1, 0.4)
LOGGER = "edgeguard.capture"


@pytest.fixture(scope="module")
def clip() -> Path:
    if not CLIP.is_file():
        pytest.fail(f"test video missing: {CLIP} (the shared/ folder beside the repository)")
    return CLIP


@pytest.fixture
def sources() -> Iterator[Callable[..., FrameSource]]:
    """Make FrameSources that are stopped after the test whatever happens."""
    made: list[FrameSource] = []

    def make(
        source: str, *, backoff: tuple[float, float] = FAST_BACKOFF, realtime: bool | None = None, **cfg
    ) -> FrameSource:
        src = FrameSource(CameraConfig(**cfg), source=source, realtime=realtime, backoff=backoff)
        made.append(src)
        return src

    yield make
    for src in made:
        src.stop()


@pytest.fixture(scope="module")
def jpegs(clip: Path) -> list[bytes]:
    return jpeg_frames(clip, 30)


def read_all(src: FrameSource, limit: float = 20.0) -> list[Frame]:
    """Every frame until the source ends; fails after `limit` seconds."""
    frames = []
    deadline = time.monotonic() + limit
    while not src.ended:
        assert time.monotonic() < deadline, f"no end after {limit} s, state {src.state}"
        frame = src.read(1.0)
        if frame is not None:
            frames.append(frame)
    return frames


def fresh_frame(src: FrameSource, after: float, limit: float) -> Frame:
    """The first frame read after time.time() `after` (skips one left in the slot from before)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        frame = src.read(0.5)
        if frame is not None and frame.time > after:
            return frame
    pytest.fail(f"no new frame within {limit} s; state {src.state}")


def attempts(caplog) -> int:
    """Connection attempts of a live source that have ended so far,
    by the supervisor's debug line for each."""
    return caplog.text.count("; next attempt in ")


# ---------------------------------------------------------------- video files


def test_file_delivers_every_frame_in_order(sources, clip):
    src = sources(str(clip))  # the config's own source is "0": the override must win
    src.start()
    assert "640x360" in src.description
    frames = read_all(src)
    assert [f.number for f in frames] == list(range(CLIP_FRAMES))
    pos = [f.pos_ms for f in frames]
    assert pos[0] == 0.0 and all(b > a for a, b in pairwise(pos))
    assert pos[-1] == pytest.approx((CLIP_FRAMES - 1) * 1000 / CLIP_FPS, abs=1.0)
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert src.ended and src.state == "ended"
    assert src.read(0.1) is None
    src.stop()
    assert src.ended and src.state == "stopped"


def test_file_waits_for_a_slow_pipeline(sources, clip):
    src = sources(str(clip))
    src.start()
    numbers = []
    for _ in range(5):
        time.sleep(0.1)  # 3 frames' worth at the file's rate: not realtime, none may be dropped
        numbers.append(src.read(2.0).number)
    assert numbers == [0, 1, 2, 3, 4]


def test_file_frame_matches_the_footage(sources, clip):
    cap = cv2.VideoCapture(str(clip))
    expected = [cap.read()[1] for _ in range(101)][100]
    cap.release()
    src = sources(str(clip))
    src.start()
    frame = next(f for f in iter(lambda: src.read(2.0), None) if f.number == 100)
    assert np.array_equal(frame.image, expected)


def test_loop_wraps_around_and_never_ends(sources, clip):
    src = sources(str(clip), loop=True)
    src.start()
    numbers = [src.read(2.0).number for _ in range(CLIP_FRAMES + 60)]
    wrap = numbers.index(0, 1)
    assert wrap == CLIP_FRAMES
    assert numbers[:wrap] == list(range(CLIP_FRAMES))
    assert numbers[wrap:] == list(range(60))
    assert not src.ended and src.state == "streaming"


@pytest.mark.slow  # asserts on wall-clock time
def test_realtime_is_paced_at_the_file_fps(sources, clip):
    src = sources(str(clip), realtime=True)
    src.start()
    first = src.read(2.0)
    frames = [src.read(2.0) for _ in range(29)]
    elapsed = frames[-1].time - first.time
    assert 0.7 < elapsed < 2.0  # 29 frame intervals at 29.97 fps: 0.97 s
    assert frames[-1].number - first.number <= 35


@pytest.mark.slow  # how many frames are dropped depends on wall-clock time
def test_realtime_drops_frames_for_a_slow_pipeline(sources, clip):
    src = sources(str(clip), realtime=True)
    src.start()
    numbers = []
    for _ in range(6):
        numbers.append(src.read(2.0).number)
        time.sleep(0.2)  # 6 frames' worth: the older ones are dropped, the newest delivered
    steps = [b - a for a, b in pairwise(numbers)]
    assert all(step >= 3 for step in steps), numbers
    assert numbers[-1] < 60


def test_missing_file_is_an_error_at_start(sources, tmp_path):
    missing = tmp_path / "no-such-video.mp4"
    src = sources(str(missing))
    with pytest.raises(SourceError, match="no-such-video.mp4"):
        src.start()


def test_file_that_is_no_video_is_an_error_at_start(sources, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(SourceError, match="notes.mp4"):
        sources(str(text)).start()


@pytest.mark.slow  # asserts on wall-clock time
def test_stop_during_a_file_returns_promptly(sources, clip):
    src = sources(str(clip))
    src.start()
    assert src.read(2.0) is not None  # the reader now waits for the pipeline to take the next one
    started = time.monotonic()
    src.stop()
    assert (
        time.monotonic() - started < 1.5
    )  # generous, but short of STOP_TIMEOUT (2 s): the reader did not hang
    assert src.state == "stopped" and not src.ended
    assert src.read(0.5) is None


# ---------------------------------------------------------------- damaged files


def test_h264_file_with_garbage_in_the_middle(sources, clip, tmp_path, caplog):
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 20_000] = (
        np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    )
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    src = sources(str(damaged))
    src.start()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        numbers = [f.number for f in read_all(src)]
    assert src.ended
    assert numbers[0] == 0 and numbers[-1] == CLIP_FRAMES - 1  # read past the damage to the end
    assert all(b > a for a, b in pairwise(numbers))
    assert 100 < len(numbers) < CLIP_FRAMES  # what was damaged is skipped, numbered by position
    assert "skipped unreadable" in caplog.text


def test_mjpeg_file_with_broken_frames_keeps_true_positions(sources, clip, tmp_path, caplog):
    path = tmp_path / "small.avi"
    cap = cv2.VideoCapture(str(clip))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 90))
    originals = []
    for _ in range(60):
        image = cv2.resize(cap.read()[1], (160, 90))
        originals.append(image)
        writer.write(image)
    writer.release()
    cap.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]  # JPEG SOI markers
    assert len(starts) == 60
    noise = np.random.default_rng(2).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    for broken in (20, 21, 40):
        data[starts[broken] + 200 : starts[broken] + 1200] = noise
    path.write_bytes(bytes(data))

    src = sources(str(path))
    src.start()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        frames = read_all(src)
    numbers = [f.number for f in frames]
    assert not {20, 21, 40} & set(numbers)
    assert {19, 22, 39, 41, 59} <= set(numbers)
    for frame in frames:  # each number is the frame at that position in the file
        assert np.abs(frame.image.astype(int) - originals[frame.number]).mean() < 8
    assert caplog.text.count("skipped unreadable") == 1  # once per BAD_FRAME_LOG_EVERY, not per frame


def test_usable_frames():
    good = np.zeros((90, 160, 3), np.uint8)
    assert usable(good, None)
    assert usable(good, (90, 160, 3))
    assert not usable(good, (180, 320, 3))  # the capture's size changed: a broken frame
    assert not usable(None, None)
    assert not usable(np.zeros((90, 160), np.uint8), None)
    assert not usable(np.zeros((90, 160, 4), np.uint8), None)
    assert not usable(good.astype(np.float32), None)
    assert not usable(np.zeros((0, 160, 3), np.uint8), None)


# ---------------------------------------------------------------- live streams


@pytest.mark.slow  # asserts on how long noticing the stall took
def test_mjpeg_stream_stalls_and_comes_back(sources, jpegs, caplog):
    read_timeout = 1.0
    with MjpegServer(jpegs) as server, caplog.at_level(logging.DEBUG, logger=LOGGER):
        src = sources(server.url, read_timeout=read_timeout, open_timeout=1.0)
        src.start()
        first = [src.read(5.0) for _ in range(5)]
        assert all(f is not None for f in first), src.state
        assert [f.number for f in first] == sorted({f.number for f in first})
        assert first[0].pos_ms is None and first[0].image.shape == (180, 320, 3)
        assert src.state == "streaming" and src.description.endswith("320x180")

        server.pause()
        paused = time.monotonic()
        wait_for(lambda: src.state in ("stalled", "reconnecting"), read_timeout + 2.0, "the stall noticed")
        noticed = time.monotonic() - paused
        assert noticed > read_timeout * 0.8
        # the stalled connection and then a reopening have ended: reopening failed while the camera
        # sent nothing
        wait_for(lambda: attempts(caplog) >= 2, 10, "a failed reopening")
        assert src.state in ("stalled", "reconnecting")

        server.resume()
        resumed = time.time()
        again = fresh_frame(src, resumed, limit=8.0)
        assert again.number > first[-1].number
        assert src.state == "streaming"
        assert server.requests >= 2
    assert caplog.text.count("no frame for 1 s") == 1


@pytest.mark.slow  # asserts that the loss was noticed before read_timeout by the clock
def test_camera_that_goes_away_and_comes_back(sources, jpegs, caplog):
    server = MjpegServer(jpegs).start()
    src = sources(server.url, read_timeout=2.0, open_timeout=1.0)
    try:
        src.start()
        assert src.read(5.0) is not None
        with caplog.at_level(logging.DEBUG, logger=LOGGER):
            server.stop()  # the camera reboots: connections close, the port refuses
            wait_for(
                lambda: src.state == "reconnecting", 1.5
            )  # noticed from the failed read, before the stall
            wait_for(lambda: attempts(caplog) >= 3, 10, "two retries after the loss")
        assert caplog.text.count(" lost (") == 1
        server = MjpegServer(jpegs, port=server.port).start()
        resumed = time.time()
        assert fresh_frame(src, resumed, limit=5.0).time > resumed
        assert src.state == "streaming"
    finally:
        server.stop()


@pytest.mark.slow  # asserts on how long stop() took
def test_nothing_listening_is_not_an_error(sources, caplog):
    src = sources(f"http://127.0.0.1:{free_port()}/stream.mjpg", open_timeout=1.0, read_timeout=1.0)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        src.start()
        wait_for(lambda: src.state == "reconnecting", 3.0)
        assert src.read(0.3) is None
        wait_for(lambda: attempts(caplog) >= 4, 10, "several attempts")  # with FAST_BACKOFF
    assert caplog.text.count("unavailable") == 1  # logged once, not on every retry
    started = time.monotonic()
    src.stop()
    assert time.monotonic() - started < 2.5
    assert src.state == "stopped"


@pytest.mark.slow  # asserts on the time between attempts
def test_retries_back_off_exponentially(sources):
    attempts: list[float] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        src = sources(f"http://127.0.0.1:{listener.getsockname()[1]}/", backoff=(0.1, 0.4), open_timeout=1.0)
        src.start()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            attempts.append(time.monotonic())
            conn.close()  # hang up at once: the stream cannot be opened
        src.stop()
    gaps = [b - a for a, b in pairwise(attempts)]
    assert len(attempts) >= 4, gaps
    assert gaps[0] < 0.35  # 0.1 s, then 0.2 s ...
    assert all(0.35 < gap < 0.8 for gap in gaps[2:]), gaps  # ... capped at 0.4 s


@pytest.mark.slow  # asserts on how long stop() took
def test_missing_usb_camera_is_retried(sources):
    src = sources("/dev/video99")
    src.start()
    wait_for(lambda: src.state == "reconnecting", 3.0)
    started = time.monotonic()
    src.stop()
    assert time.monotonic() - started < 2.5


@pytest.mark.slow  # asserts on how long stop() took
def test_stop_while_a_stream_is_stalled(sources, jpegs):
    with MjpegServer(jpegs) as server:
        src = sources(server.url, read_timeout=5.0, open_timeout=1.0)
        src.start()
        assert src.read(5.0) is not None
        server.pause()
        # no frame for a while: the connection thread now hangs in FFmpeg's read
        wait_for(lambda: src.read(0.2) is None, 5, "the stream gone quiet")
        started = time.monotonic()
        src.stop()
        assert time.monotonic() - started < 2.5
        assert src.state == "stopped"


# ---------------------------------------------------------------- source strings and errors


def test_description_never_shows_credentials():
    cfg = CameraConfig()
    src = FrameSource(cfg, source="rtsp://user:secret@host/x")  # not started: no network
    assert "secret" not in src.description and "user" not in src.description
    assert src.description == "rtsp://host/x"
    assert "hunter2" not in redact("http://cam.local/video?user=admin&password=hunter2&res=hd")
    assert "res=hd" in redact("http://cam.local/video?user=admin&password=hunter2&res=hd")
    assert redact("/videos/x.mp4") == "/videos/x.mp4"


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("0", "usb", "0"),
        ("/dev/video2", "usb", "/dev/video2"),
        ("rtsp://u:p@cam/stream1", "stream", "rtsp://u:p@cam/stream1"),
        ("HTTP://cam/mjpg", "stream", "HTTP://cam/mjpg"),
        ("https://cam/mjpg", "stream", "https://cam/mjpg"),
        ("picamera2", "picamera2", "0"),
        ("jetson-csi", "jetson", "0"),
        ("jetson-csi:1", "jetson", "1"),
        ("videos/gate.mp4", "file", "videos/gate.mp4"),
    ],
)
def test_source_kinds(text, kind, target):
    spec = parse_source(text)
    assert (spec.kind, spec.target) == (kind, target)


def test_picamera2_missing_says_how_to_install(sources):
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(SourceError, match=r"sudo apt install python3-picamera2.*--system-site-packages"):
        sources("picamera2").start()


def test_jetson_without_gstreamer_says_why(sources):
    if has_gstreamer():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(SourceError, match="GStreamer"):
        sources("jetson-csi").start()


def test_jetson_pipeline():
    pipeline = jetson_pipeline(1, 1280, 720, 30)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ")
    assert "width=1280, height=720, framerate=30/1" in pipeline
    assert pipeline.endswith("appsink drop=true max-buffers=1 sync=false")


def test_start_twice_is_a_bug(sources, clip):
    src = sources(str(clip))
    src.start()
    with pytest.raises(RuntimeError):
        src.start()


def test_a_camera_that_never_opened_gets_the_first_run_advice_once(sources, caplog):
    src = sources("/dev/video97")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        src.start()
        wait_for(lambda: attempts(caplog) >= 3, 10, "several attempts")  # with FAST_BACKOFF
    advice = [r.getMessage() for r in caplog.records if "Three ways on" in r.getMessage()]
    assert len(advice) == 1, caplog.text  # once, then the retries are quiet
    assert "no camera at /dev/video97" in advice[0]
    assert "edgeguard run --source VIDEO --loop" in advice[0] and "edgeguard.toml" in advice[0]


def test_the_advice_says_what_video_devices_there_are(tmp_path):
    from edgeguard.sources.usb import missing_camera

    assert missing_camera("0", tmp_path) == "this machine has no video device at all (no /dev/video*)"
    for name in ("video10", "video2", "video0"):
        (tmp_path / name).touch()
    assert missing_camera("1", tmp_path).endswith(f"{tmp_path}/video0, {tmp_path}/video2, {tmp_path}/video10")
