"""A sighting of a watchlist person carries its picture: captures of known faces, the link in the text,
the match in words, and enrolment from such a capture (the real daemon on the Hamilton clip)."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import helpers  # tests/helpers.py
import numpy as np
import pytest
from conftest import CLIP, PEOPLE, capture_image, capture_sidecar, make_site
from fake_twilio import FakeTwilio  # tests/fake_twilio.py

from edgeguard.common.match_rule import MatchThresholds
from edgeguard.config import RecognitionConfig
from edgeguard.detect import Box
from edgeguard.events.recorder import match_words
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.photos import load_photo
from edgeguard.live.track import Sample, Track
from edgeguard.live.vote import Verdict
from edgeguard.store.face_captures import CaptureStore

ACCOUNT = "AC" + "3" * 32
TOKEN = "c0ffee00" * 4
FROM = "+15551230000"
POLICE = "+15551230911"
LIN = ("1", "Lin-Manuel Miranda", "lin-manuel-miranda.png")
TOLERANCE = RecognitionConfig().tolerance
THRESHOLDS = MatchThresholds(tolerance=0.56, unknown_margin=0.08)


def env() -> dict[str, str]:
    return helpers.clean_env(TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN)


def replay(tmp_path: Path, fake: FakeTwilio, category: str, extra: str = "") -> tuple:
    """Lin-Manuel of `category` on the watchlist, known faces texted with MMS; the clip played to its end."""
    port = helpers.free_port()
    site = make_site(
        tmp_path / "site",
        (
            f'[twilio]\napi_url = "{fake.url}"\nfrom_number = "{FROM}"\n'
            f'[alerts]\nmms = true\npublic_url = "http://127.0.0.1:{port}"\nlisten = "127.0.0.1:{port}"\n'
            f'quiet_categories = ["staff"]\n{extra}'
            f'[[alerts.route]]\nto = ["{POLICE}"]\nevents = ["known_face"]\n'
        ),
        people=[(*LIN, category)],
    )
    result = helpers.edgeguard(site.config_path, "run", "--source", str(CLIP), env=env())
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    events = [
        json.loads(line)
        for line in helpers.edgeguard(site.config_path, "events", "--json").stdout.splitlines()
    ]
    return site, events, result.stderr


@pytest.fixture
def fake():
    server = FakeTwilio().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig())
    engine.warm_up()
    return engine


@pytest.mark.slow  # a whole-clip daemon replay
def test_a_wanted_persons_sighting_is_captured_linked_and_enrollable(tmp_path, fake, engine):
    site, events, log = replay(tmp_path, fake, "wanted")
    known = [e for e in events if e["type"] == "known_face"]
    assert len(known) == 2  # the stage shot and the close-up: one sighting, one capture
    capture = Path(known[0]["capture"])
    assert capture.name.endswith("-face.jpg") and capture.parent == site.base / "Unknown_Face_Captures"
    assert known[1]["capture"] == known[0]["capture"]
    assert (capture.stat().st_mode & 0o777) == 0o600

    # the crop is his face: found and matched against his enrolment photo
    opened = tmp_path / "opened-face.jpg"  # the capture is sealed on disk: its JPEG as the store reads it
    opened.write_bytes(capture_image(capture))
    rgb = load_photo(opened, RecognitionConfig().max_image_pixels)
    boxes = [d.box for d in engine.find_in_photo(rgb)]
    assert boxes, "no face in the capture"
    enrolled = engine.enrolment_encoding(load_photo(PEOPLE / LIN[2], RecognitionConfig().max_image_pixels))
    distances = [np.linalg.norm(e - enrolled) for e in engine.encoder.encode(rgb, boxes)]
    assert min(distances) <= TOLERANCE, distances

    # the sidecar says who, never the phone number or the deposit
    sidecar = capture_sidecar(capture)
    assert sidecar["person"] == {"id": "1", "name": LIN[1], "category": "wanted"}
    # the capture's box (its best view) and the event's (where the face was when decided): the same face
    assert Box(*sidecar["box"]).iou(Box(*known[0]["extra"]["box"])) >= 0.5
    assert sidecar["distance"] == pytest.approx(known[0]["distance"])
    assert "+1555" not in json.dumps(sidecar)

    # a no_mask event of the same person points at the same capture
    no_mask = [e for e in events if e["type"] == "no_mask" and e["id"] == "1"]
    assert no_mask and all(e["capture"] == known[0]["capture"] for e in no_mask)

    # the text: who, how close, the link to that very JPEG (and the MMS attachment)
    [text] = [r for r in fake.delivered() if LIN[1] in r.form["Body"][0]]
    body = text.form["Body"][0]
    match = re.fullmatch(
        r"EdgeGuard ALERT Site: Lin-Manuel Miranda \(Id 1, wanted\), (strong|possible) match "
        r"\d\d:\d\d:\d\d (http://127\.0\.0\.1:\d+/c/\S+)",
        body,
    )
    assert match, body
    assert match.group(1) == known[0]["extra"]["match"]
    assert text.form["MediaUrl"] == [match.group(2)]
    # the link server ran inside the daemon, which has exited: serve the folder again to follow the link
    served = serve_and_fetch(site, match.group(2))
    assert served == capture_image(capture)


@pytest.mark.slow  # a whole-clip daemon replay
def test_a_fresh_photo_of_a_known_person_from_a_sighting(tmp_path, fake):
    """Without a cooldown, the close-up is a sighting of its own; its capture enrols as a new photo of him."""
    site, events, _ = replay(tmp_path, fake, "wanted", "cooldown_minutes = 0\n")
    captures = [e["capture"] for e in events if e["type"] == "known_face"]
    assert len(captures) == 2 and captures[0] != captures[1]
    before = sorted((site.training / "1").iterdir())
    result = helpers.edgeguard(site.config_path, "enroll", "1", "--from-capture", captures[1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Id 1: 1 of 1 photo(s) added" in result.stdout
    assert len(sorted((site.training / "1").iterdir())) == len(before) + 1
    # the stage shot's face is too small to enrol from: refused with the reason, nothing written
    result = helpers.edgeguard(site.config_path, "enroll", "1", "--from-capture", captures[0])
    assert result.returncode == 1 and "not added:" in result.stdout


def serve_and_fetch(site, url: str) -> bytes:
    """Fetch a link with the site's own key, from an image server started for the purpose."""
    from edgeguard.alerts.link_signer import LinkSigner, load_link_key
    from edgeguard.web.context import SiteStatus
    from edgeguard.web.site import build_dashboard

    config = site.config()
    signer = LinkSigner(load_link_key(config.paths.link_key), config.alerts.public_url, 3600)
    dashboard, server = build_dashboard(
        config,
        status=SiteStatus,
        watchlist=lambda: None,
        event_log=None,
        outbox=None,
        engine=lambda: None,
        signer=signer,
    )
    server.start()
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            return response.read()
    finally:
        server.stop()
        dashboard.users.close()


@pytest.mark.slow  # a whole-clip daemon replay
def test_staff_are_not_photographed_on_every_pass(tmp_path, fake):
    site, events, _ = replay(tmp_path, fake, "staff")
    known = [e for e in events if e["type"] == "known_face"]
    assert known and all(e["capture"] is None for e in known)
    assert not [r for r in fake.delivered() if LIN[1] in r.form["Body"][0]]  # quiet: no text either
    captured = [capture_sidecar(p) for p in (site.base / "Unknown_Face_Captures").glob("*.json")]
    assert all("person" not in c for c in captured)  # only the unknown audience face


@pytest.mark.slow  # a whole-clip daemon replay
def test_known_categories_empty_captures_no_watchlist_person(tmp_path, fake):
    site, events, _ = replay(tmp_path, fake, "wanted", "[captures]\nknown_categories = []\n")
    known = [e for e in events if e["type"] == "known_face"]
    assert known and all(e["capture"] is None for e in known)
    [text] = [r.form["Body"][0] for r in fake.delivered() if LIN[1] in r.form["Body"][0]]
    assert "http://" not in text  # no picture, no link; the text still goes out


def track_voted(labels: list, distances: list[float] | None = None) -> Track:
    track = Track(1, Box(0, 100, 100, 0), 0.0)
    for n, label in enumerate(labels):
        distance = distances[n] if distances else 0.4
        track.add_sample(Sample(label, distance, np.zeros(128)), float(n))
    return track


def test_match_words_strong_for_a_close_unanimous_match_possible_near_the_tolerance():
    assert match_words(track_voted(["7", "7"], [0.40, 0.40]), "7", THRESHOLDS) == "strong"
    assert match_words(track_voted(["7", "7"], [0.48, 0.48]), "7", THRESHOLDS) == "strong"  # band mirrored
    assert match_words(track_voted(["7", "7"], [0.50, 0.50]), "7", THRESHOLDS) == "possible"
    assert match_words(track_voted(["7", "7"], [0.555, 0.555]), "7", THRESHOLDS) == "possible"
    split = track_voted(["7", "8", "7"])
    assert split.decided == "7"
    assert match_words(split, "7", THRESHOLDS) == "possible"  # someone else was named on the way
    abstaining = track_voted([Verdict.ABSTAIN, "7", "7"])
    assert match_words(abstaining, "7", THRESHOLDS) == "strong"


def test_match_words_come_from_the_samples_distances_not_from_how_many_were_in():
    """A loop of a clip can decide a face after 2 samples or after 3, or by pooling: the words stay."""
    two = track_voted(["7", "7"], [0.46, 0.50])
    three = track_voted(["7", "7", "7"], [0.46, 0.50, 0.44])  # a nearer third sample: the nearest moves
    assert match_words(two, "7", THRESHOLDS) == match_words(three, "7", THRESHOLDS) == "strong"
    borderline = track_voted(["7", "7", "7"], [0.52, 0.47, 0.53])  # one close sample among farther ones
    assert match_words(borderline, "7", THRESHOLDS) == "possible"
    pooled = track_voted([Verdict.ABSTAIN, Verdict.ABSTAIN], [0.58, 0.59])
    pooled.decide_pooled("7", 0.42)  # the mean encoding is nearer than any sample
    assert match_words(pooled, "7", THRESHOLDS) == "possible"


def test_retention_removes_known_captures_like_unknown_ones(tmp_path):
    store = CaptureStore(tmp_path / "caps", retention_days=1, max_mb=100)
    image = np.full((60, 60, 3), 128, np.uint8)
    old = time.time() - 3 * 86400
    saved = [
        store.save(old, "cam", image, image, {"person": {"id": "1", "category": "wanted"}}),
        store.save(old + 1, "cam", image, image, {"visitor": 1}),
    ]
    newest = store.save(time.time(), "cam", image, image, {"person": {"id": "1", "category": "wanted"}})
    for capture in saved:
        for path in (capture.face, capture.frame, capture.sidecar):
            os.utime(path, (old, old))
    assert store.enforce_retention() == 2
    assert all(not c.face.exists() and not c.sidecar.exists() for c in saved)
    assert newest.face.exists()
