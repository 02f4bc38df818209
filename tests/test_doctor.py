"""`edgeguard check`, the installer's doctor: a real process on a real site and video file,
and the mask model check against a missing and a damaged model file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import CLIP, PEOPLE, TESTDATA, Site
from edgeguard import mask
from edgeguard.service.doctor import check_masks, run_checks
from helpers import edgeguard


def check(config: Path, *args: str) -> subprocess.CompletedProcess:
    return edgeguard(config, "check", *args)


def lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    """Checklist lines by what they check (the first of each), with their level."""
    out: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("["):
            level, rest = line[1:].split("]", 1)
            out.setdefault(rest.split(":", 1)[0].strip(), level.strip() + ":" + rest.split(":", 1)[1])
    return out


@pytest.fixture
def site(tmp_path: Path) -> Site:
    site = Site(tmp_path / "site")
    site.add_person("1", "Barack Obama", [PEOPLE / "obama.jpg"])
    site.add_photos("1", [TESTDATA / "crowd" / "dogs.jpg"])
    return site


def test_a_working_site_passes_with_warnings_for_what_is_not_set_up(site):
    result = check(site.config_path, "--source", str(CLIP))
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result)
    assert found["camera camera"].startswith("ok:") and "640x360 frame" in found["camera camera"]
    assert found["watchlist"].startswith("ok:") and "1 people" in found["watchlist"]
    assert "dogs.jpg" in result.stdout  # the unusable photo is named
    assert found["masks"].startswith("ok:") and "ms per face" in found["masks"] and "always" in found["masks"]
    assert found["twilio"].startswith("WARN:") and "dry run" in found["twilio"]
    assert found["image links"].startswith("WARN:")
    assert "0 failed" in result.stdout.splitlines()[-1]


def test_a_camera_that_cannot_open_fails_the_check(site, tmp_path):
    result = check(site.config_path, "--source", str(tmp_path / "no-such-clip.mp4"))
    assert result.returncode == 1
    assert lines(result)["camera camera"].startswith("FAIL:")
    assert "1 failed" in result.stdout.splitlines()[-1]


def test_mask_checks_switched_off(site):
    site.write_config("[mask]\nenabled = false\n")
    assert check_masks(site.config())[0].level == "ok"
    assert "off" in check_masks(site.config())[0].detail


@pytest.mark.parametrize("content", [None, b"this is not an ONNX model"])
def test_a_missing_or_damaged_mask_model_fails_the_check(site, tmp_path, monkeypatch, content):
    model = tmp_path / "mask_classifier.onnx"
    if content is not None:
        model.write_bytes(content)
    monkeypatch.setattr(mask, "MODEL_PATH", model)
    [finding] = check_masks(site.config())
    assert finding.level == "FAIL"
    assert str(model) in finding.detail and ("missing" if content is None else "not a usable ONNX model") in finding.detail
    out: list[str] = []
    assert run_checks(site.config(), str(CLIP), live=False, out=out.append) == 1
    assert any(line.startswith("[FAIL] masks") for line in out)
