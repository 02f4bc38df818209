"""The real daemon on the clip with Lin-Manuel Miranda not on the watchlist: he is an unknown face, found
afterwards by `edgeguard search` with a different photo of him, and the same stranger after a restart
(a second replay)."""

from __future__ import annotations

import json

import pytest
from conftest import CLIP, PEOPLE, make_site
from helpers import edgeguard

pytestmark = pytest.mark.slow


def events(config) -> list[dict]:
    result = edgeguard(config, "events", "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def replay(site) -> None:
    result = edgeguard(site.config_path, "run", "--source", str(CLIP), timeout=180)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("strangers") / "site", people=[("4", "Joe Biden", "biden.jpg")])


def test_the_unknown_face_of_a_replay_is_found_by_another_photo_and_keeps_its_id_after_a_restart(site):
    replay(site)
    first = events(site.config_path)
    found = edgeguard(
        site.config_path, "search", "--json", str(PEOPLE / "lin-manuel-miranda.png"), timeout=120
    )
    assert found.returncode == 0, found.stderr
    hits = [json.loads(line) for line in found.stdout.splitlines()]
    assert hits, "Lin-Manuel Miranda not found"
    by_seq = {e["seq"]: e for e in first}
    top = by_seq[hits[0]["seq"]]
    assert top["type"] == "unknown_face" and top["capture"] == hits[0]["capture"]
    assert top["frame"] < 100  # Lin-Manuel is on stage from the first frames; the other unknown is at ~214
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    lin = top["extra"]["stranger"]

    replay(site)  # the daemon starts again: its visitors' memory is gone, the strangers are not
    second = [e for e in events(site.config_path) if e["seq"] > first[-1]["seq"]]

    def strangers(run: list[dict]) -> dict[int, int]:
        return {e["frame"]: e["extra"]["stranger"] for e in run if e["type"] == "unknown_face"}

    assert strangers(second) == strangers(first)  # each face of the clip: the same stranger as before
    assert lin in strangers(second).values()
    assert len(set(strangers(first).values())) == len(strangers(first)) >= 2  # none merged into another
