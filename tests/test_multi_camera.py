"""Several cameras in one daemon, end to end: real `edgeguard run` processes with a video file, an MJPEG
stream over loopback (tests/streams.py, paused to stall it) and a push camera fed by a real `edgeguard push`
client, texting through FakeTwilio (tests/fake_twilio.py); and the old single-camera config against the new
one on the same footage."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path

import cv2
import helpers  # tests/helpers.py
import numpy as np
import pytest
from conftest import CLIP, make_site
from fake_twilio import FakeTwilio  # tests/fake_twilio.py
from helpers import clean_env, free_port, wait_for
from streams import MjpegServer, jpeg_frames

ACCOUNT, TOKEN = "AC" + "2" * 32, "f00dfeed" * 4
GATE_GUARD, COUNTER_CLERK, NIGHT_WATCH = "+15551230001", "+15551230002", "+15551230003"
PUSH_TOKEN = "t0ken-for-the-till-" + "x" * 24
LIN = ("1", "Lin-Manuel Miranda", "lin-manuel-miranda.png", "wanted")


def env() -> dict[str, str]:
    return clean_env(TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN)


def events(config: Path) -> list[dict]:
    out = helpers.edgeguard(config, "events", "--json", env=env()).stdout
    return [json.loads(line) for line in out.splitlines()]


def push_client(url: str, token_file: Path, log: Path) -> subprocess.Popen:
    with log.open("w") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgeguard",
                "push",
                "--url",
                url,
                "--camera",
                "till",
                "--token-file",
                str(token_file),
                "--source",
                str(CLIP),
                "--loop",
                "--fps",
                "10",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=clean_env(),
        )


def post_frame(port: int, body: bytes, token: str, camera: str = "till") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            f"/upload_frame/{camera}",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"},
        )
        response = conn.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text.startswith(b"{") else {}
    finally:
        conn.close()


@pytest.fixture
def fake():
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.mark.slow  # three cameras replaying the clip in real time for about a minute
def test_three_cameras_one_daemon(tmp_path, fake, daemons):
    frames = jpeg_frames(CLIP, 275, size=(640, 360))
    with MjpegServer(frames, fps=15) as stream:
        port = free_port()
        site = make_site(
            tmp_path / "site",
            (
                f'[web]\nlisten = "127.0.0.1:{port}"\n'
                "[events]\ncamera_down_seconds = 5\n"
                f'[twilio]\napi_url = "{fake.url}"\nfrom_number = "+15550000000"\n'
                "[alerts]\ncooldown_minutes = 0\n"
                f'[[alerts.route]]\nto = ["{GATE_GUARD}"]\nevents = ["known_face"]\n'
                'locations = ["Front Gate"]\n'
                f'[[alerts.route]]\nto = ["{COUNTER_CLERK}"]\nevents = ["known_face"]\n'
                'locations = ["Counter"]\n'
                f'[[alerts.route]]\nto = ["{NIGHT_WATCH}"]\nevents = ["camera_down", "camera_up"]\n'
                f'[[camera]]\nname = "gate"\nsource = "{CLIP}"\nlocation = "Front Gate"\n'
                "loop = true\nrealtime = true\n"
                f'[[camera]]\nname = "door"\nsource = "{stream.url}"\nlocation = "Back Door"\n'
                "read_timeout = 1.0\n"
                '[[camera]]\nname = "till"\nsource = "push"\nlocation = "Counter"\nfps = 10\n'
                "read_timeout = 2.0\n"
            ),
            people=[LIN],
        )
        token_file = site.base / "push_tokens" / "till.token"
        token_file.parent.mkdir(mode=0o700)
        token_file.write_text(PUSH_TOKEN)
        token_file.chmod(0o600)
        config = site.config_path
        daemon = daemons(config, env=env())
        daemon.wait_for_line("running: camera till", timeout=120)
        client_log = tmp_path / "push.log"
        client = push_client(f"http://127.0.0.1:{port}", token_file, client_log)
        try:

            def known_from(camera: str, after: int = 0):
                return [
                    e
                    for e in events(config)
                    if e["type"] == "known_face" and e["camera"] == camera and e["seq"] > after
                ]

            for camera in ("gate", "door", "till"):
                wait_for(
                    lambda camera=camera: known_from(camera),
                    90,
                    lambda camera=camera: f"a known_face from {camera}:\n{daemon.stderr}",
                    poll=0.5,
                )
            # Refusals of the push endpoint, while the client keeps pushing.
            good = frames[10]
            assert post_frame(port, good, "wrong-token")[0] == 401
            assert post_frame(port, b"GIF89a not a jpeg", PUSH_TOKEN)[0] == 400
            assert post_frame(port, good, PUSH_TOKEN, camera="gate")[0] == 401
            noise = np.random.default_rng(1).integers(0, 255, (1200, 1200, 3), dtype=np.uint8)
            big = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()  # over 1 MB
            assert post_frame(port, big, PUSH_TOKEN)[0] == 413
            assert 429 in [post_frame(port, good, PUSH_TOKEN)[0] for _ in range(30)]  # beyond fps = 10

            # The stream stalls: door goes down, the other two keep producing events.
            stream.pause()
            down = wait_for(
                lambda: [e for e in events(config) if e["type"] == "camera_down"],
                60,
                lambda: f"camera_down:\n{daemon.stderr}",
                poll=0.5,
            )
            assert [e["camera"] for e in down] == ["door"] and down[0]["location"] == "Back Door"
            mark = down[0]["seq"]
            for camera in ("gate", "till"):
                wait_for(
                    lambda camera=camera: known_from(camera, after=mark),
                    60,
                    lambda camera=camera: (
                        f"{camera} still producing events while door is down:\n{daemon.stderr}"
                    ),
                    poll=0.5,
                )
            stream.resume()
            up = wait_for(
                lambda: [e for e in events(config) if e["type"] == "camera_up"],
                60,
                lambda: f"camera_up:\n{daemon.stderr}",
                poll=0.5,
            )
            assert [e["camera"] for e in up] == ["door"]
        finally:
            client.terminate()
            client_code = client.wait(timeout=30)
            assert daemon.stop() == 0, daemon.stderr
    assert client_code == 0, client_log.read_text()

    everything = events(config)
    where = {(e["camera"], e["location"]) for e in everything}
    assert where == {("gate", "Front Gate"), ("door", "Back Door"), ("till", "Counter")}
    texts = {(r.form["To"][0], r.form["Body"][0]) for r in fake.delivered()}
    assert {to for to, body in texts if "Front Gate" in body} == {GATE_GUARD}
    assert {to for to, body in texts if "Counter" in body and "camera" not in body} == {COUNTER_CLERK}
    assert not any("Back Door" in body for to, body in texts if to != NIGHT_WATCH)  # no route for its faces
    assert {body.split(": ", 1)[1].split(" ")[1] for to, body in texts if to == NIGHT_WATCH} == {"door"}
    assert PUSH_TOKEN not in daemon.stderr and "wrong-token" not in daemon.stderr


def replay_events(base: Path, cameras: str) -> list[tuple]:
    site = make_site(base, cameras, people=[LIN[:3]])
    done = helpers.edgeguard(site.config_path, "run", timeout=300)
    assert done.returncode == 0, done.stderr
    return [(e["type"], e["frame"], e["id"], e["camera"], e["location"]) for e in events(site.config_path)]


@pytest.mark.slow  # two whole-clip replays
def test_old_single_camera_config_gives_the_same_events_as_a_camera_table(tmp_path):
    old = replay_events(
        tmp_path / "old",
        f'[camera]\nname = "gate"\nsource = "{CLIP}"\n'
        '[location]\nname = "Front Gate"\n[events]\nmax_people = 1\n',
    )
    new = replay_events(
        tmp_path / "new",
        f'[[camera]]\nname = "gate"\nsource = "{CLIP}"\nlocation = "Front Gate"\nmax_people = 1\n',
    )
    assert old == new
    assert ("known_face", 3, "1", "gate", "Front Gate") in old
