"""Tests for edgeguard.config: loading, validation, path resolution and secrets."""

import base64
import dataclasses
import os
import re
import socket
from pathlib import Path
from typing import get_type_hints

import pytest
import tomllib

from edgeguard import config as cfgmod
from edgeguard.config import (
    Config,
    ConfigError,
    PathsConfig,
    RecognitionConfig,
    example_config,
    find_config_file,
    load_config,
)
from edgeguard.configfile import reading
from edgeguard.configfile.fields import table_item

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Every test starts in an empty folder with no config or secret coming from outside."""
    for name in (
        "EDGEGUARD_CONFIG",
        "CREDENTIALS_DIRECTORY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "EDGEGUARD_MQTT_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    # the data key from the environment: no key file made, no note about it (tests/test_privacy.py)
    monkeypatch.setenv("EDGEGUARD_DATA_KEY", base64.b64encode(bytes(32)).decode())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    # /etc/edgeguard/edgeguard.toml may exist on a developer's machine: only ./edgeguard.toml counts here.
    monkeypatch.setattr(reading, "DEFAULT_LOCATIONS", (Path("edgeguard.toml"),))
    return cwd


def write_config(path, text, mode=0o600):
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def resolved_defaults(base):
    """Config() with its paths resolved against `base`, the way load_config resolves them."""
    d = PathsConfig()
    return PathsConfig(
        base_dir=base,
        **{f.name: base / getattr(d, f.name) for f in dataclasses.fields(d) if f.name != "base_dir"},
    )


def resolved_config(base):
    """Config() as load_config resolves it: paths against `base`, [mqtt]'s device id from the host name."""
    device = cfgmod.topic_safe(socket.gethostname())
    mqtt = dataclasses.replace(
        cfgmod.MqttConfig(), device_id=device, topic_prefix=f"edgeguard/{device}", port=1883
    )
    return dataclasses.replace(Config(), paths=resolved_defaults(base), mqtt=mqtt)


def assert_same_config(actual, expected):
    """Field by field; the data key's sealer (loaded by load_config: tests/test_privacy.py) aside."""
    for f in dataclasses.fields(Config):
        if f.name in ("source", "sealer"):
            continue
        assert getattr(actual, f.name) == getattr(expected, f.name), f"[{f.name}] differs"


# --- no config file -------------------------------------------------------------------


def test_no_config_file_uses_site_folders_in_current_directory(clean_env):
    assert not (clean_env / "edgeguard.toml").exists()
    cfg = load_config()
    assert cfg.source is None
    assert cfg.paths.base_dir == clean_env
    assert cfg.paths.training_images == clean_env / "TrainingImage"
    assert cfg.paths.details_csv == clean_env / "Details" / "Details.csv"
    assert cfg.paths.captures == clean_env / "Unknown_Face_Captures"
    assert cfg.paths.encodings_cache == clean_env / "TrainingImageLabel"
    assert cfg.recognition.tolerance == RecognitionConfig().tolerance
    assert cfg.twilio.auth_token == ""


def test_no_config_file_equals_defaults_field_by_field(clean_env):
    cfg = load_config()
    assert_same_config(cfg, resolved_config(clean_env))


def test_find_config_file_returns_none_without_any_file():
    assert find_config_file(None) is None


def test_edgeguard_toml_in_current_directory_is_found(clean_env):
    write_config(clean_env / "edgeguard.toml", '[location]\nname = "Back Door"\n')
    cfg = load_config()
    assert cfg.location.name == "Back Door"
    assert cfg.source == Path("edgeguard.toml")


# --- example config -------------------------------------------------------------------


def test_example_config_is_valid_toml_and_loads_to_exactly_the_defaults(tmp_path, clean_env):
    text = example_config()
    tomllib.loads(text)  # raises if not TOML
    path = write_config(tmp_path / "example.toml", text, mode=0o644)
    cfg = load_config(path)
    assert cfg.source == path
    assert_same_config(cfg, resolved_config(clean_env))


def test_example_config_lists_every_key_of_every_section_with_a_comment():
    text = example_config()
    parsed = tomllib.loads(text)
    assert set(parsed) == set(cfgmod.SECTIONS)
    lines = text.splitlines()
    for section, cls in cfgmod.SECTIONS.items():
        header = "[[camera]]" if section == "camera" else f"[{section}]"
        assert header in lines
        start = lines.index(header)
        tables = {f.name for f in dataclasses.fields(cls) if table_item(get_type_hints(cls)[f.name])}
        inherited = set(cfgmod.CAMERA_OVERRIDES) if section == "camera" else set()  # shown commented out
        keys = parsed[section][0] if section == "camera" else parsed[section]
        assert set(keys) == {f.name for f in dataclasses.fields(cls)} - tables - inherited, section
        for name in tables:  # arrays of tables are shown as a commented example
            assert f"# [[{section}.{name}]]" in lines
        for f in (f for f in dataclasses.fields(cls) if f.name not in tables):
            matching = [
                i
                for i, line in enumerate(lines[start + 1 :], start=start + 1)
                if re.match(rf"(# )?{re.escape(f.name)}\s*=", line)
            ]
            assert matching, f"[{section}] {f.name} missing"
            comment = lines[matching[0] - 1]
            assert comment.startswith("# "), f"[{section}] {f.name} has no comment above it"
            assert comment[2:] == f.metadata["help"]
            assert len(comment.strip()) > 5


def test_committed_example_file_matches_example_config():
    committed = REPO_ROOT / "edgeguard.example.toml"
    assert committed.is_file(), "edgeguard.example.toml is missing at the repository root"
    assert committed.read_text(encoding="utf-8") == example_config(), (
        "edgeguard.example.toml is out of date: regenerate it from edgeguard.config.example_config()"
    )


# --- validation errors ----------------------------------------------------------------


def load_error(tmp_path, text):
    path = write_config(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value), path


def test_unknown_section_names_file_and_section(tmp_path):
    message, path = load_error(tmp_path, "[recognitoin]\ntolerance = 0.5\n")
    assert str(path) in message
    assert "recognitoin" in message
    assert "unknown section" in message


def test_unknown_key_names_file_section_and_key(tmp_path):
    message, path = load_error(tmp_path, "[recognition]\ntolerence = 0.5\n")
    assert str(path) in message
    assert "[recognition] tolerence" in message
    assert "unknown key" in message


def test_section_that_is_not_a_table_is_refused(tmp_path):
    message, path = load_error(tmp_path, "recognition = 5\n")
    assert str(path) in message
    assert "recognition" in message


@pytest.mark.parametrize(
    "text, key",
    [
        ('[recognition]\ntolerance = "0.5"\n', "[recognition] tolerance"),  # string for number
        ('[camera]\nwidth = "1280"\n', "[camera] width"),  # string for int
        ("[camera]\nloop = 1\n", "[camera] loop"),  # number for bool
        ('[watchlist]\nwatch = "yes"\n', "[watchlist] watch"),  # string for bool
        ("[camera]\nfps = true\n", "[camera] fps"),  # bool for int
        ("[recognition]\ntolerance = true\n", "[recognition] tolerance"),  # bool for float
        ("[recognition]\nupsample = 1.5\n", "[recognition] upsample"),  # float for int
        ("[camera]\nname = 5\n", "[camera] name"),  # number for string
        ("[paths]\ncaptures = 5\n", "[paths] captures"),  # number for path
    ],
)
def test_wrong_type_names_file_and_key(tmp_path, text, key):
    message, path = load_error(tmp_path, text)
    assert str(path) in message
    assert key in message
    assert "expected" in message


@pytest.mark.parametrize(
    "text, key",
    [
        ("[recognition]\ntolerance = 0.95\n", "[recognition] tolerance"),
        ("[recognition]\ntolerance = 0.1\n", "[recognition] tolerance"),
        ("[camera]\nfps = 0\n", "[camera] fps"),
        ("[camera]\nwidth = 100_000\n", "[camera] width"),
        ("[location]\nlatitude = 91.0\n", "[location] latitude"),
        ("[recognition]\nmax_image_pixels = 500_000_000\n", "[recognition] max_image_pixels"),
        ("[recognition]\ntolerance = inf\n", "[recognition] tolerance"),
    ],
)
def test_out_of_range_value_names_file_and_key(tmp_path, text, key):
    message, path = load_error(tmp_path, text)
    assert str(path) in message
    assert key in message
    assert "must be at" in message


@pytest.mark.parametrize(
    "text, key",
    [
        ("[recognition]\ntolerance = nan\n", "[recognition] tolerance"),
        ("[location]\nlatitude = nan\n", "[location] latitude"),
        ("[camera]\nread_timeout = nan\n", "[camera] read_timeout"),
    ],
)
def test_nan_is_refused_for_ranged_numbers(tmp_path, text, key):
    # TOML allows nan; every comparison with nan is False, so a min/max check alone lets it
    # through and e.g. tolerance = nan would silently make every face "unknown".
    message, path = load_error(tmp_path, text)
    assert str(path) in message
    assert key in message


def test_boundary_values_are_accepted(tmp_path):
    path = write_config(
        tmp_path / "edge.toml",
        "[recognition]\ntolerance = 0.2\nupsample = 3\n[camera]\nfps = 120\nwidth = 160\n",
    )
    cfg = load_config(path)
    assert cfg.recognition.tolerance == 0.2
    assert cfg.recognition.upsample == 3
    assert cfg.cameras[0].fps == 120
    assert cfg.cameras[0].width == 160


def test_int_is_accepted_for_float_and_stored_as_float(tmp_path):
    path = write_config(tmp_path / "c.toml", "[camera]\nopen_timeout = 20\n")
    cfg = load_config(path)
    assert cfg.cameras[0].open_timeout == 20.0
    assert isinstance(cfg.cameras[0].open_timeout, float)


@pytest.mark.parametrize(
    "text, key",
    [
        ('[recognition]\ndetector = "yolo"\n', "[recognition] detector"),
        ('[recognition]\ndetection_model = "yunet"\n', "[recognition] detection_model"),
        ('[recognition]\nencoder = "onnxruntime"\n', "[recognition] encoder"),
        ('[logging]\nlevel = "VERBOSE"\n', "[logging] level"),
    ],
)
def test_wrong_choice_names_file_key_and_choices(tmp_path, text, key):
    message, path = load_error(tmp_path, text)
    assert str(path) in message
    assert key in message
    assert "must be one of" in message


def test_valid_choice_is_accepted(tmp_path):
    path = write_config(tmp_path / "c.toml", '[recognition]\ndetector = "cnn"\n[logging]\nlevel = "DEBUG"\n')
    cfg = load_config(path)
    assert cfg.recognition.detector == "cnn"
    assert cfg.logging.level == "DEBUG"
    assert cfg.notes == ()


def test_detector_defaults_to_yunet():
    assert RecognitionConfig().detector == "yunet"


def test_encoder_defaults_to_opencv_and_dlib_stays_selectable(tmp_path):
    assert RecognitionConfig().encoder == "opencv"
    path = write_config(tmp_path / "c.toml", '[recognition]\nencoder = "dlib"\n')
    assert load_config(path).recognition.encoder == "dlib"


def test_detection_model_of_older_configs_is_carried_over_with_a_note(tmp_path):
    path = write_config(tmp_path / "c.toml", '[recognition]\ndetection_model = "hog"\n')
    cfg = load_config(path)
    assert cfg.recognition.detector == "hog"
    assert (
        len(cfg.notes) == 1
        and "detection_model has moved to detector" in cfg.notes[0]
        and str(path) in cfg.notes[0]
    )
    both = write_config(tmp_path / "d.toml", '[recognition]\ndetection_model = "hog"\ndetector = "yunet"\n')
    assert load_config(both).recognition.detector == "yunet"  # the new key wins


def test_invalid_toml_names_file(tmp_path):
    message, path = load_error(tmp_path, "[recognition\ntolerance = 0.5\n")
    assert str(path) in message
    assert "not valid TOML" in message


def test_missing_explicit_file_names_file(tmp_path):
    path = tmp_path / "nowhere" / "edgeguard.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_missing_file_from_environment_is_an_error_not_defaults(tmp_path, monkeypatch):
    path = tmp_path / "missing.toml"
    monkeypatch.setenv("EDGEGUARD_CONFIG", str(path))
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(path) in str(info.value)


# --- paths ----------------------------------------------------------------------------


def test_relative_paths_resolve_against_base_dir(tmp_path):
    site = tmp_path / "site"
    path = write_config(
        tmp_path / "c.toml",
        f'[paths]\nbase_dir = "{site}"\ntraining_images = "photos"\ncaptures = "out/unknown"\n',
    )
    cfg = load_config(path)
    assert cfg.paths.base_dir == site
    assert cfg.paths.training_images == site / "photos"
    assert cfg.paths.captures == site / "out" / "unknown"
    assert cfg.paths.details_csv == site / "Details" / "Details.csv"


def test_absolute_paths_are_kept(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "people.csv"
    path = write_config(
        tmp_path / "c.toml",
        f'[paths]\nbase_dir = "{tmp_path / "site"}"\ndetails_csv = "{elsewhere}"\n',
    )
    cfg = load_config(path)
    assert cfg.paths.details_csv == elsewhere


def test_relative_base_dir_resolves_against_working_directory_not_config_folder(tmp_path, clean_env):
    confdir = tmp_path / "etc"
    confdir.mkdir()
    path = write_config(confdir / "c.toml", '[paths]\nbase_dir = "state/site"\n')
    cfg = load_config(path)
    assert cfg.paths.base_dir == clean_env / "state" / "site"
    assert cfg.paths.base_dir.is_absolute()
    assert cfg.paths.training_images == clean_env / "state" / "site" / "TrainingImage"


# --- $EDGEGUARD_CONFIG ----------------------------------------------------------------


def test_environment_variable_is_used_without_explicit_path(tmp_path, monkeypatch, clean_env):
    write_config(clean_env / "edgeguard.toml", '[location]\nname = "From Cwd"\n')
    env_file = write_config(tmp_path / "env.toml", '[location]\nname = "From Env"\n')
    monkeypatch.setenv("EDGEGUARD_CONFIG", str(env_file))
    cfg = load_config()
    assert cfg.location.name == "From Env"
    assert cfg.source == env_file


def test_explicit_path_beats_environment_variable(tmp_path, monkeypatch):
    env_file = write_config(tmp_path / "env.toml", '[location]\nname = "From Env"\n')
    explicit = write_config(tmp_path / "explicit.toml", '[location]\nname = "Explicit"\n')
    monkeypatch.setenv("EDGEGUARD_CONFIG", str(env_file))
    assert load_config(explicit).location.name == "Explicit"


# --- secrets --------------------------------------------------------------------------

SECRET_FILE = '[twilio]\naccount_sid = "AC_file"\nauth_token = "tok_file"\n'


def test_secrets_from_file_when_nothing_else(tmp_path):
    path = write_config(tmp_path / "c.toml", SECRET_FILE, mode=0o600)
    cfg = load_config(path)
    assert cfg.twilio.account_sid == "AC_file"
    assert cfg.twilio.auth_token == "tok_file"


def test_environment_beats_file(tmp_path, monkeypatch):
    path = write_config(tmp_path / "c.toml", SECRET_FILE, mode=0o600)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC_env")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", " tok_env\n")
    cfg = load_config(path)
    assert cfg.twilio.account_sid == "AC_env"
    assert cfg.twilio.auth_token == "tok_env"


def test_credentials_directory_beats_environment_and_file(tmp_path, monkeypatch):
    path = write_config(tmp_path / "c.toml", SECRET_FILE, mode=0o600)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "twilio_account_sid").write_text("AC_cred\n", encoding="utf-8")
    (creds / "twilio_auth_token").write_text("tok_cred\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC_env")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok_env")
    cfg = load_config(path)
    assert cfg.twilio.account_sid == "AC_cred"
    assert cfg.twilio.auth_token == "tok_cred"


def test_each_secret_falls_back_on_its_own(tmp_path, monkeypatch):
    path = write_config(tmp_path / "c.toml", SECRET_FILE, mode=0o600)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "twilio_auth_token").write_text("tok_cred", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load_config(path)
    assert cfg.twilio.auth_token == "tok_cred"  # credential file
    assert cfg.twilio.account_sid == "AC_file"  # no credential, no env: the file

    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC_env")
    cfg = load_config(path)
    assert cfg.twilio.account_sid == "AC_env"
    assert cfg.twilio.auth_token == "tok_cred"


def test_secrets_from_environment_without_any_config_file(monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC_env")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok_env")
    cfg = load_config()
    assert cfg.twilio.account_sid == "AC_env"
    assert cfg.twilio.auth_token == "tok_env"


def test_world_readable_file_with_auth_token_is_refused(tmp_path):
    path = write_config(tmp_path / "c.toml", SECRET_FILE, mode=0o644)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "chmod" in message
    assert "auth_token" in message


def test_same_file_with_mode_0600_is_accepted(tmp_path):
    path = write_config(tmp_path / "c.toml", SECRET_FILE, mode=0o644)
    with pytest.raises(ConfigError):
        load_config(path)
    os.chmod(path, 0o600)
    assert load_config(path).twilio.auth_token == "tok_file"


def test_world_readable_file_without_auth_token_is_accepted(tmp_path):
    path = write_config(tmp_path / "c.toml", '[twilio]\naccount_sid = "AC_file"\n', mode=0o644)
    assert load_config(path).twilio.account_sid == "AC_file"


def test_config_is_frozen():
    cfg = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.recognition.tolerance = 0.9


# ---------------------------------------------------------------- alert routes


ROUTES = """
[alerts]
quiet_categories = ["staff"]
[[alerts.route]]
to = ["+15551230001"]
events = ["unknown_face"]
[[alerts.route]]
to = ["+15551230002", "+15551230003"]
events = ["known_face"]
categories = ["wanted"]
hours = "22:00-06:00"
"""


def test_routes_load_as_typed_tables(tmp_path):
    path = tmp_path / "c.toml"
    write_config(path, ROUTES)
    alerts = load_config(path).alerts
    assert alerts.quiet_categories == ("staff",)
    assert [r.to for r in alerts.route] == [("+15551230001",), ("+15551230002", "+15551230003")]
    assert alerts.route[0].events == ("unknown_face",) and alerts.route[0].categories == ()
    assert alerts.route[1].hours == "22:00-06:00"


@pytest.mark.parametrize(
    "line, key",
    [
        ('to = ["555-0100"]', "to[0]"),
        ('events = ["unknown"]', "events[0]"),
        ('hours = "8-18"', "hours"),
        ('hours = "25:00-06:00"', "hours"),
        ('whom = ["+15551230001"]', "whom"),
    ],
)
def test_a_bad_route_names_the_route_and_key(tmp_path, line, key):
    path = tmp_path / "c.toml"
    write_config(path, f"[[alerts.route]]\n{line}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and f"[alerts] route #1 {key}" in str(err.value)


def test_public_url_without_a_server_to_answer_it_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    write_config(path, '[alerts]\npublic_url = "https://gate.example.net:8780"\n[web]\nenabled = false\n')
    with pytest.raises(ConfigError, match=r"\[alerts\] public_url"):
        load_config(path)


def test_alerts_listen_still_works_and_says_where_it_moved(tmp_path):
    path = tmp_path / "c.toml"
    write_config(path, '[alerts]\nlisten = "0.0.0.0:9000"\n')
    config = load_config(path)
    assert config.web.listen == "0.0.0.0:9000"
    [note] = config.notes
    assert "[alerts] listen has moved to [web] listen" in note and str(path) in note
    write_config(path, '[alerts]\nlisten = "0.0.0.0:9000"\n[web]\nlisten = "127.0.0.1:8780"\n')
    assert load_config(path).web.listen == "127.0.0.1:8780"


def test_tls_needs_both_the_certificate_and_the_key(tmp_path):
    path = tmp_path / "c.toml"
    write_config(path, f'[paths]\nbase_dir = "{tmp_path}"\n[web]\ntls_cert = "cert.pem"\n')
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        load_config(path)
    write_config(
        path, f'[paths]\nbase_dir = "{tmp_path}"\n[web]\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n'
    )
    assert load_config(path).web.tls_cert == str(tmp_path / "cert.pem")


def test_twilio_is_ready_only_with_a_sender_number(tmp_path, monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    path = tmp_path / "c.toml"
    write_config(path, "")
    assert not load_config(path).twilio_ready
    write_config(path, '[twilio]\nfrom_number = "+15550009999"\n')
    assert load_config(path).twilio_ready


# --- cameras ---------------------------------------------------------------------


def test_single_camera_table_with_location_keeps_working(tmp_path):
    path = write_config(
        tmp_path / "c.toml",
        '[camera]\nname = "gate"\nsource = "1"\n'
        '[location]\nname = "Front Gate"\nlatitude = 1.5\nlongitude = 2.5\n'
        "[pipeline]\ndetect_width = 800\n[events]\nmax_people = 4\n",
    )
    [camera] = load_config(path).cameras
    assert (camera.name, camera.source, camera.location, camera.latitude, camera.longitude) == (
        "gate",
        "1",
        "Front Gate",
        1.5,
        2.5,
    )
    assert (camera.detect_width, camera.max_people, camera.min_face_size, camera.mask_events) == (
        800,
        4,
        32,
        True,
    )


def test_camera_tables_each_with_location_and_overrides(tmp_path):
    path = write_config(
        tmp_path / "c.toml",
        '[location]\nname = "Site"\n[mask]\nevents = false\n'
        '[[camera]]\nname = "gate"\nsource = "0"\nlocation = "Front Gate"\n'
        '[[camera]]\nname = "door"\nsource = "push"\nmin_face_size = 60\nmask_events = true\n',
    )
    gate, door = load_config(path).cameras
    assert (gate.name, gate.location, gate.mask_events, gate.min_face_size) == (
        "gate",
        "Front Gate",
        False,
        32,
    )
    assert (door.name, door.location, door.mask_events, door.min_face_size) == ("door", "Site", True, 60)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[[camera]]\nname = "a"\n[[camera]]\nname = "a"\n', "'a' is used by 2 cameras"),
        ('[[camera]]\nname = "a"\ncolour = 1\n', "[camera 'a'] colour: unknown key"),
        (
            '[[camera]]\nname = "a"\n[[camera]]\nmax_people = -1\n',
            "[camera #2] max_people: must be at least 0",
        ),
        ('[[camera]]\nname = "a/b"\n', "[camera 'a/b'] name: must be 1-64 letters"),
        ("camera = 5\n", "'camera' must be one [camera] table"),
        (
            '[[camera]]\nname = "a"\nsource = "push"\n[web]\nenabled = false\n',
            "nothing would take its frames",
        ),
        (
            '[[camera]]\nname = "a"\n[[alerts.route]]\nto = ["+15551230000"]\ncameras = ["b"]\n',
            "cameras: no camera has 'b'",
        ),
        (
            '[[camera]]\nname = "a"\nlocation = "Gate"\n'
            '[[alerts.route]]\nto = ["+15551230000"]\nlocations = ["gate"]\n',
            "locations: no camera has 'gate'",
        ),
    ],
)
def test_bad_cameras_stop_with_file_and_key(tmp_path, text, expected):
    path = write_config(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and expected in str(info.value)


# --- [mqtt] ---------------------------------------------------------------------------


def mqtt_config(tmp_path, body, mode=0o600):
    text = f'[paths]\nbase_dir = "{tmp_path}"\n[mqtt]\n{body}'
    return load_config(write_config(tmp_path / "c.toml", text, mode=mode))


def test_mqtt_defaults_follow_the_device_id(tmp_path, clean_env):
    cfg = mqtt_config(tmp_path, 'enabled = true\nhost = "broker"\ndevice_id = "gate-1"\n')
    assert (cfg.mqtt.topic_prefix, cfg.mqtt.port, cfg.mqtt.broker) == (
        "edgeguard/gate-1",
        1883,
        "broker:1883",
    )
    tls = mqtt_config(tmp_path, 'enabled = true\nhost = "broker"\ntls = true\n')
    assert tls.mqtt.port == 8883
    assert tls.mqtt.device_id == cfgmod.topic_safe(socket.gethostname())


def test_host_name_is_made_topic_safe():
    assert cfgmod.topic_safe("pi.local") == "pi-local"
    assert cfgmod.topic_safe("a/b+c#d e") == "a-b-c-d-e"
    assert cfgmod.topic_safe("...") == "edgeguard"


@pytest.mark.parametrize(
    "prefix", ["site/+/gate", "site/#", "site/\\u0000x", "/site", "site/", "$SYS/x", "+", "#"]
)
def test_topic_prefix_with_wildcards_nul_or_edge_slashes_is_refused(tmp_path, clean_env, prefix):
    with pytest.raises(ConfigError) as info:
        mqtt_config(tmp_path, f'topic_prefix = "{prefix}"\n')
    message = str(info.value)
    assert "[mqtt] topic_prefix" in message and "'+', '#'" in message and "NUL" in message
    assert "\n" not in message


def test_discovery_prefix_and_device_id_are_checked(tmp_path, clean_env):
    with pytest.raises(ConfigError, match=r"\[mqtt\] discovery_prefix"):
        mqtt_config(tmp_path, 'discovery_prefix = "home/#"\n')
    with pytest.raises(ConfigError, match=r"\[mqtt\] device_id: must be 1-64 letters"):
        mqtt_config(tmp_path, 'device_id = "gate/1"\n')


def test_enabled_without_host_is_refused(tmp_path, clean_env):
    with pytest.raises(ConfigError, match=r"\[mqtt\] enabled is true but host is empty"):
        mqtt_config(tmp_path, "enabled = true\n")


def test_mqtt_tls_files_that_do_not_exist_are_named(tmp_path, clean_env):
    with pytest.raises(ConfigError) as info:
        mqtt_config(tmp_path, 'enabled = true\nhost = "b"\ntls = true\ntls_ca = "certs/ca.pem"\n')
    assert f"[mqtt] tls_ca: {tmp_path / 'certs' / 'ca.pem'} does not exist" in str(info.value)
    (tmp_path / "ca.pem").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        mqtt_config(
            tmp_path, 'enabled = true\nhost = "b"\ntls = true\ntls_ca = "ca.pem"\ntls_cert = "ca.pem"\n'
        )
    with pytest.raises(ConfigError, match="tls_ca is set but tls is false"):
        mqtt_config(tmp_path, 'enabled = true\nhost = "b"\ntls_ca = "ca.pem"\n')
    cfg = mqtt_config(tmp_path, 'enabled = true\nhost = "b"\ntls = true\ntls_ca = "ca.pem"\n')
    assert cfg.mqtt.tls_ca == str(tmp_path / "ca.pem")


def test_mqtt_password_from_credential_then_environment_then_file(tmp_path, clean_env, monkeypatch):
    body = 'password = "from-file"\n'
    assert mqtt_config(tmp_path, body).mqtt.password == "from-file"
    monkeypatch.setenv("EDGEGUARD_MQTT_PASSWORD", "from-env")
    assert mqtt_config(tmp_path, body).mqtt.password == "from-env"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("from-credential\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert mqtt_config(tmp_path, body).mqtt.password == "from-credential"


def test_mqtt_password_in_a_world_readable_file_is_refused(tmp_path, clean_env):
    with pytest.raises(ConfigError) as info:
        mqtt_config(tmp_path, 'password = "hunter2-xyz"\n', mode=0o644)
    assert "[mqtt] password" in str(info.value) and "chmod" in str(info.value)
    assert "hunter2-xyz" not in str(info.value)
