"""`edgeguard check`, the installer's doctor: a real process on a real site and video file,
and the mask model check against a missing and a damaged model file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dlib
import pytest
from conftest import CLIP, PEOPLE, TESTDATA, Site
from helpers import edgeguard

from edgeguard.masks import classifier as mask_model
from edgeguard.service import doctor
from edgeguard.service.doctor import check_dlib, check_masks, run_checks


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
    assert (
        found["camera camera at Site"].startswith("ok:") and "640x360 frame" in found["camera camera at Site"]
    )
    assert found["watchlist"].startswith("ok:") and "1 people" in found["watchlist"]
    assert "dogs.jpg" in result.stdout  # the unusable photo is named
    assert (
        found["masks"].startswith("ok:")
        and "ms per face" in found["masks"]
        and "yunet finds masked faces" in found["masks"]
    )
    assert (
        found["face detector"].startswith("ok: yunet,") and "ms per 640x480 frame" in found["face detector"]
    )
    assert found["dlib"].startswith(
        f"ok: {dlib.__version__} from dlib"
    )  # dlib-bin or dlib, whichever is installed
    assert f"BLAS {'yes' if dlib.DLIB_USE_BLAS else 'no'}, LAPACK" in found["dlib"]
    assert found["twilio"].startswith("WARN:") and "dry run" in found["twilio"]
    assert found["image links"].startswith("WARN:")
    assert "0 failed" in result.stdout.splitlines()[-1]


def test_a_camera_that_cannot_open_fails_the_check(site, tmp_path):
    result = check(site.config_path, "--source", str(tmp_path / "no-such-clip.mp4"))
    assert result.returncode == 1
    assert lines(result)["camera camera at Site"].startswith("FAIL:")
    assert "1 failed" in result.stdout.splitlines()[-1]


def test_every_camera_is_checked_and_a_push_camera_says_where_its_token_is(site, tmp_path):
    site.write_config(
        f'[[camera]]\nname = "gate"\nsource = "{CLIP}"\nlocation = "Front Gate"\n'
        f'[[camera]]\nname = "door"\nsource = "{tmp_path / "gone.mp4"}"\nlocation = "Back Door"\n'
        '[[camera]]\nname = "till"\nsource = "push"\nlocation = "Counter"\n'
    )
    result = check(site.config_path)
    found = lines(result)
    assert (
        found["camera gate at Front Gate"].startswith("ok:")
        and "640x360 frame" in found["camera gate at Front Gate"]
    )
    assert found["camera door at Back Door"].startswith("FAIL:")
    till = found["camera till at Counter"]
    assert till.startswith("ok:") and "/upload_frame/till" in till and "till.token" in till
    assert not (site.base / "push_tokens").exists()  # the check only says where; the daemon makes the token
    assert result.returncode == 1


def test_a_damaged_detector_model_fails_the_check_and_the_watchlist_says_why(site, tmp_path, monkeypatch):
    from edgeguard.detectors import yunet
    from edgeguard.service.doctor import check_detector, check_watchlist

    damaged = tmp_path / "yunet.onnx"
    damaged.write_bytes(yunet.MODEL_PATH.read_bytes()[:-10])
    monkeypatch.setattr(yunet.YuNetDetector.__init__, "__defaults__", (yunet.DEFAULT_SCORE, damaged))
    [finding] = check_detector(site.config())
    assert finding.level == "FAIL" and str(damaged) in finding.detail and "checksum" in finding.detail
    [finding] = check_watchlist(site.config())
    assert finding.level == "FAIL" and "reinstall" in finding.detail


@pytest.mark.parametrize("encoder", ["opencv", "dlib"])
def test_the_encoder_line_names_the_encoder_and_its_cost_per_face(site, encoder):
    from edgeguard.service.doctor import check_encoder

    site.write_config(f'[recognition]\nencoder = "{encoder}"\n')
    [finding] = check_encoder(site.config())
    assert finding.level == "ok" and finding.what == "face encoder"
    assert re.fullmatch(rf"{encoder}, \d+ ms per face", finding.detail), finding.detail


def test_a_damaged_encoder_model_fails_the_check_and_the_watchlist_says_why(site, tmp_path, monkeypatch):
    from edgeguard.faces import opencv_encoder
    from edgeguard.service.doctor import check_encoder, check_watchlist

    damaged = tmp_path / "encoder.onnx"
    damaged.write_bytes(opencv_encoder.MODEL_PATH.read_bytes()[:-10])
    monkeypatch.setattr(opencv_encoder.OpenCvResnet.__init__, "__defaults__", (damaged,))
    [finding] = check_encoder(site.config())
    assert finding.level == "FAIL" and str(damaged) in finding.detail and "checksum" in finding.detail
    [finding] = check_watchlist(site.config())
    assert finding.level == "FAIL" and "reinstall" in finding.detail


def test_the_cnn_detector_without_cuda_is_a_warning(site):
    from edgeguard.service.doctor import check_detector

    site.write_config('[recognition]\ndetector = "cnn"\n')
    [finding] = check_detector(site.config())
    assert (finding.level == "WARN" and "without CUDA" in finding.detail) or dlib.DLIB_USE_CUDA


def test_mask_checks_switched_off(site):
    site.write_config("[mask]\nenabled = false\n")
    assert check_masks(site.config())[0].level == "ok"
    assert "off" in check_masks(site.config())[0].detail


@pytest.mark.parametrize("content", [None, b"this is not an ONNX model"])
def test_a_missing_or_damaged_mask_model_fails_the_check(site, tmp_path, monkeypatch, content):
    model = tmp_path / "mask_classifier.onnx"
    if content is not None:
        model.write_bytes(content)
    monkeypatch.setattr(mask_model, "MODEL_PATH", model)
    [finding] = check_masks(site.config())
    assert finding.level == "FAIL"
    assert (
        str(model) in finding.detail
        and ("missing" if content is None else "not a usable ONNX model") in finding.detail
    )
    out: list[str] = []
    assert run_checks(site.config(), str(CLIP), live=False, out=out.append) == 1
    assert any(line.startswith("[FAIL] masks") for line in out)


@pytest.mark.parametrize(
    "installed, blas, expected",
    [
        (
            {"dlib-bin": "20.0.1.post1"},
            False,
            "from dlib-bin 20.0.1.post1 (prebuilt wheel); BLAS no, LAPACK no,",
        ),
        (
            {"dlib-bin": "20.0.1+blas"},
            True,
            "from dlib-bin 20.0.1+blas (built from source); BLAS yes, LAPACK yes,",
        ),
        ({"dlib": "20.0.1"}, False, "from dlib 20.0.1 (built from source); BLAS no, LAPACK no,"),
    ],
    ids=["wheel", "blas-build", "source-build"],
)
def test_the_dlib_line_names_its_distribution_and_points_at_the_blas_build(
    monkeypatch, installed, blas, expected
):
    monkeypatch.setattr(
        doctor.metadata, "packages_distributions", lambda: {"_dlib_pybind11": list(installed)}
    )
    monkeypatch.setattr(doctor.metadata, "version", installed.__getitem__)
    monkeypatch.setattr(dlib, "DLIB_USE_BLAS", blas)
    monkeypatch.setattr(dlib, "DLIB_USE_LAPACK", blas)
    [finding] = check_dlib(None)
    assert finding.level == "ok"
    assert expected in finding.detail
    assert ("tools/build-dlib-blas.sh" in finding.detail) is not blas


def test_two_distributions_of_dlib_in_one_venv_warn(monkeypatch):
    installed = {"dlib": "20.0.1", "dlib-bin": "20.0.1.post1"}
    monkeypatch.setattr(
        doctor.metadata,
        "packages_distributions",
        lambda: {"dlib": ["dlib-bin"], "_dlib_pybind11": ["dlib", "dlib-bin"]},
    )
    monkeypatch.setattr(doctor.metadata, "version", installed.__getitem__)
    [finding] = check_dlib(None)
    assert finding.level == "WARN"
    assert "dlib 20.0.1 (built from source) and dlib-bin 20.0.1.post1 (prebuilt wheel)" in finding.detail


def test_each_line_comes_as_its_check_finishes_and_a_slow_one_says_what_it_waits_for(site):
    """A stream that never answers: the lines before it are out while the check still waits on it."""
    import sys
    import time

    from helpers import clean_env, free_port

    site.write_config(
        f'[[camera]]\nname = "gate"\nsource = "http://127.0.0.1:{free_port()}/x.mjpg"\n'
        "open_timeout = 3.0\nread_timeout = 1.0\n"
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeguard", "--config", str(site.config_path), "check"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    arrived = [(time.monotonic() - started, line.rstrip("\n")) for line in proc.stdout]
    assert proc.wait(timeout=60) == 1
    when = {line.split(":", 1)[0]: t for t, line in arrived}
    waiting = next(t for t, line in arrived if line.startswith("  ... camera gate: waiting up to 4 s"))
    camera = when["[FAIL] camera gate at Site"]
    assert when["[  ok] storage"] <= waiting < camera - 2.0  # said before the wait, not all at the end
    assert "check the URL" in next(line for _, line in arrived if line.startswith("[FAIL] camera gate"))


def test_alerts_without_a_route_say_nothing_will_be_sent_and_the_line_to_add(site):
    [route, twilio] = doctor.check_twilio(site.config(), live=False)
    assert route.level == "WARN" and route.what == "alerts"
    assert "nothing will be sent" in route.detail and '[[alerts.route]] to = ["+' in route.detail
    assert twilio.level == "WARN" and "dry run" in twilio.detail
    site.write_config('[[alerts.route]]\nto = ["+15551230000"]\n')
    assert [f.what for f in doctor.check_twilio(site.config(), live=False)] == ["twilio"]


def test_privacy_advice_fits_a_checkout(site):
    site.training.chmod(0o755)
    (site.base / ".git").mkdir()
    [training, *_] = doctor.check_privacy(site.config())
    assert training.level == "WARN" and "chmod -R go-rwx" in training.detail
    assert "install.sh" not in training.detail
    (site.base / ".git").rmdir()
    assert "systemd/install.sh" in doctor.check_privacy(site.config())[0].detail


def test_a_usb_camera_that_is_not_there_fails_at_once_with_the_ways_on(site):
    import time

    said: list[str] = []
    site.write_config('[[camera]]\nname = "door"\nsource = "/dev/video97"\n')
    started = time.monotonic()
    run_checks(site.config(), None, False, out=said.append)
    [line] = [s for s in said if "camera door" in s]  # no "waiting up to" line: nothing to wait for
    assert line.startswith("[FAIL] camera door at Site: no camera at /dev/video97")
    assert "edgeguard run --source VIDEO --loop" in line
    assert time.monotonic() - started < 15  # the camera's 15 s are not waited for
