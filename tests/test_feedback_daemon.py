"""Wrong names corrected end to end: the real daemon replays the Hamilton clip in a loop,
`edgeguard feedback` (another process) corrects one of its events, and the running daemon
picks the correction up without a restart."""

from __future__ import annotations

import json
from pathlib import Path

import helpers  # tests/helpers.py
import numpy as np
import pytest
from conftest import CLIP, PEOPLE, WATCHLIST, capture_sidecar, lfw_photos, make_site

from edgeguard.config import RecognitionConfig
from edgeguard.detect import Box
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.photos import load_photo
from edgeguard.watchlist.negatives import folder_of, read_negatives

# Looping, replayed as fast as it goes; every sighting its own capture; quick reloads;
# no dashboard port to share.
LOOPING = (
    "[camera]\nloop = true\n[alerts]\ncooldown_minutes = 0\n[watchlist]\ndebounce = 0.3\n"
    "[web]\nenabled = false\n"
)
WAIT = 60.0


def events(db: Path) -> list[dict]:
    rows = helpers.db_rows(db, "SELECT * FROM events ORDER BY seq")
    for row in rows:
        row["extra"] = json.loads(row["extra"] or "{}")
    return rows


def passes_after(db: Path, marker: int, count: int) -> list[dict] | None:
    """The events of the passes over the clip that started after event `marker`, once `count`
    of them have begun (a pass begins where the frame numbers of the events go down);
    None until then.

    The pass that was under way at the marker is left out: its votes may hold samples
    from before the reload."""
    later = [e for e in events(db) if e["seq"] > marker]
    starts = [i for i in range(1, len(later)) if later[i]["frame"] < later[i - 1]["frame"]]
    if len(starts) < count:
        return None
    return later[starts[0] :]


def sidecar(event: dict) -> dict:
    return capture_sidecar(event["capture"])


@pytest.mark.slow  # a daemon replaying the clip in a loop for several passes
def test_not_person_on_a_running_daemon_stops_it_naming_that_face(tmp_path, daemons):
    site = make_site(tmp_path / "site", LOOPING)
    config = site.config()
    daemon = daemons(site.config_path, "--source", str(CLIP))
    lin = helpers.wait_for(
        lambda: next(
            (
                e
                for e in events(config.paths.events_db)
                if e["type"] == "known_face" and e["person_id"] == "1" and e["capture"]
            ),
            None,
        ),
        WAIT,
        lambda: f"a known_face event naming Lin-Manuel Miranda:\n{daemon.stderr}",
    )
    assert sidecar(lin)["person"]["id"] == "1" and sidecar(lin)["encodings"]

    result = helpers.edgeguard(site.config_path, "feedback", str(lin["seq"]), "--not-person")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"event {lin['seq']}: " in result.stdout
        and "kept as a negative for Lin-Manuel Miranda (Id 1)" in result.stdout
    )
    [negative] = read_negatives(folder_of(config), "1")
    assert negative.event == lin["seq"] and len(negative.encodings) == len(sidecar(lin)["encodings"])

    daemon.wait_for_line("negatives from feedback", WAIT)  # the daemon noticed the file another process wrote
    daemon.wait_for_line("watchlist reloaded", WAIT)
    marker = max(e["seq"] for e in events(config.paths.events_db))
    later = helpers.wait_for(
        lambda: passes_after(config.paths.events_db, marker, 2),
        WAIT,
        lambda: f"two more passes over the clip:\n{daemon.stderr}",
    )
    assert any(
        e["type"] == "unknown_face" for e in later
    )  # the clip was watched: the audience face, every pass

    # That shot is no longer named Lin: no sighting of him where the corrected face was.
    corrected = Box(*lin["extra"]["box"])
    named = [e for e in later if e["type"] == "known_face" and e["person_id"] == "1"]
    assert all(Box(*e["extra"]["box"]).iou(corrected) < 0.3 for e in named), (
        corrected,
        [e["extra"]["box"] for e in named],
    )
    # And whatever is still named Lin was named by samples nearer to his photo than to any of his negatives.
    photo = FaceEngine(RecognitionConfig()).enrolment_encoding(
        load_photo(PEOPLE / WATCHLIST[0][2], RecognitionConfig().max_image_pixels)
    )
    for event in named:
        for encoding in np.array(sidecar(event)["encodings"]):
            nearest_negative = np.linalg.norm(negative.encodings - encoding, axis=1).min()
            assert np.linalg.norm(photo - encoding) <= nearest_negative, event
    assert "Traceback" not in daemon.stderr


@pytest.mark.slow  # a daemon replaying the clip in a loop for several passes
def test_is_on_an_unknown_face_adds_the_photo_and_the_running_daemon_names_the_face(tmp_path, daemons):
    stranger = (
        "5",
        "Audience Member",
        lfw_photos("Hugo_Chavez")[0],
    )  # someone else's photo: the face is unknown
    site = make_site(tmp_path / "site", LOOPING, people=[*WATCHLIST, stranger])
    config = site.config()
    daemon = daemons(site.config_path, "--source", str(CLIP))
    unknown = helpers.wait_for(
        lambda: next(
            (
                e
                for e in events(config.paths.events_db)
                if e["type"] == "unknown_face" and e["capture"] and not e["extra"].get("revisit")
            ),
            None,
        ),
        WAIT,
        lambda: f"an unknown_face event with a capture:\n{daemon.stderr}",
    )
    assert not [e for e in events(config.paths.events_db) if e["person_id"] == "5"]

    result = helpers.edgeguard(site.config_path, "feedback", str(unknown["seq"]), "--is", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"event {unknown['seq']}: its capture is now a photo of Id 5" in result.stdout
    assert len(list((site.training / "5").iterdir())) == 2

    daemon.wait_for_line(
        "watchlist reloaded: 5 people, 6 photos", WAIT
    )  # the new photo is in the running watchlist
    named = helpers.wait_for(
        lambda: next(
            (
                e
                for e in events(config.paths.events_db)
                if e["type"] == "known_face" and e["person_id"] == "5"
            ),
            None,
        ),
        WAIT,
        lambda: f"the audience face named Id 5:\n{daemon.stderr}",
    )
    assert named["seq"] > unknown["seq"] and named["name"] == "Audience Member"
    assert (
        Box(*named["extra"]["box"]).iou(Box(*unknown["extra"]["box"])) >= 0.3
    )  # the same face, where it was
    assert "Traceback" not in daemon.stderr
