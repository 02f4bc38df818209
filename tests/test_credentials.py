"""Tests for edgeguard.common.credentials: the one secret reader (credential > environment > file), the file
it makes (0600 in a 0700 folder), its messages (never the secret), and the state folder every part uses."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from edgeguard.common.credentials import SecretError, credential_path, read_secret
from edgeguard.config import load_config
from edgeguard.configfile.reading import ConfigError

SECRET = b"s3cr3t-value-never-printed"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("CREDENTIALS_DIRECTORY", "EDGEGUARD_TEST_SECRET", "EDGEGUARD_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def creds(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "creds"
    folder.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make() -> bytes:
    return b"made-" + bytes(range(65, 91))


def test_the_credential_wins_over_environment_and_file(tmp_path, creds, monkeypatch):
    (creds / "test_secret").write_bytes(SECRET + b"\n")
    monkeypatch.setenv("EDGEGUARD_TEST_SECRET", "from-env")
    (tmp_path / "secret.file").write_bytes(b"from-file")
    secret = read_secret(
        "test secret", credential="test_secret", env="EDGEGUARD_TEST_SECRET", file=tmp_path / "secret.file"
    )
    assert secret.value == SECRET + b"\n"  # as it is: a trailing newline is part of it
    assert secret.where == "credential test_secret" and not secret.made


def test_the_environment_wins_over_the_file_and_a_blank_one_does_not(tmp_path, monkeypatch):
    (tmp_path / "secret.file").write_bytes(b"from-file")
    monkeypatch.setenv("EDGEGUARD_TEST_SECRET", "from-env")
    secret = read_secret(
        "test secret", credential="test_secret", env="EDGEGUARD_TEST_SECRET", file=tmp_path / "secret.file"
    )
    assert secret.value == b"from-env" and secret.where == "$EDGEGUARD_TEST_SECRET"
    monkeypatch.setenv("EDGEGUARD_TEST_SECRET", "  \n")
    secret = read_secret(
        "test secret", credential="test_secret", env="EDGEGUARD_TEST_SECRET", file=tmp_path / "secret.file"
    )
    assert secret.value == b"from-file" and secret.where == str(tmp_path / "secret.file")


def test_an_empty_credential_falls_back(tmp_path, creds):
    (creds / "test_secret").write_bytes(b"")
    (tmp_path / "secret.file").write_bytes(b"from-file")
    assert (
        read_secret("test secret", credential="test_secret", file=tmp_path / "secret.file").value
        == b"from-file"
    )


def test_nothing_found_and_nothing_to_make_is_none(tmp_path):
    assert read_secret("test secret", credential="test_secret", env="EDGEGUARD_TEST_SECRET") is None
    with pytest.raises(SecretError, match="cannot make or read the test secret"):
        read_secret("test secret", credential="test_secret", file=tmp_path / "missing")  # nothing makes it


def test_a_missing_file_is_made_once_privately_and_then_read(tmp_path):
    path = tmp_path / "state" / "deep" / "secret.key"
    first = read_secret("test secret", credential="test_secret", file=path, make=make)
    assert first.made and first.value == make() and path.read_bytes() == make()
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    again = read_secret("test secret", credential="test_secret", file=path, make=lambda: b"other")
    assert not again.made and again.value == make()  # never replaced
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary file beside it


def test_a_planted_link_is_refused_naming_the_file_not_the_secret(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(SECRET)
    path = tmp_path / "secret.key"
    path.symlink_to(target)
    with pytest.raises(
        SecretError, match="secret.key: cannot make or read the test secret: a symbolic link"
    ) as caught:
        read_secret("test secret", credential="test_secret", file=path, make=make)
    assert SECRET.decode() not in str(caught.value) and not caught.value.credential
    assert target.read_bytes() == SECRET  # not made through the link either


def test_a_file_open_to_others_is_used_with_a_warning_without_the_secret(tmp_path, caplog):
    path = tmp_path / "secret.key"
    path.write_bytes(SECRET)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="edgeguard.common.credentials"):
        secret = read_secret("test secret", credential="test_secret", file=path)
    assert secret.value == SECRET
    assert f"{path}: the test secret is readable by other users; run 'chmod o-rwx {path}'" in caplog.text
    assert SECRET.decode() not in caplog.text
    caplog.clear()
    path.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="edgeguard.common.credentials"):
        read_secret("test secret", credential="test_secret", file=path)
    assert caplog.text == ""


def test_an_unreadable_credential_is_an_error_naming_it(creds, tmp_path, monkeypatch):
    (creds / "test_secret").mkdir()  # is_file() is false: not a credential
    assert read_secret("test secret", credential="test_secret", env=None) is None
    (creds / "other_secret").write_bytes(SECRET)
    real = Path.read_bytes

    def refuse(path: Path) -> bytes:  # root reads a mode-0 file: refuse it here instead
        if path.name == "other_secret":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(SecretError, match="other_secret: cannot read the test secret credential") as caught:
        read_secret("test secret", credential="other_secret", file=tmp_path / "x", make=make)
    assert caught.value.credential and not (tmp_path / "x").exists()


def test_credential_path(creds):
    assert credential_path("a_name") == creds / "a_name"


def test_credential_path_without_a_credentials_folder():
    assert credential_path("a_name") is None


def test_twilio_secret_errors_say_where_and_never_the_value(tmp_path, creds):
    (creds / "twilio_auth_token").write_bytes(b"\xff\xfe" + SECRET)
    path = tmp_path / "c.toml"
    path.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n')
    with pytest.raises(
        ConfigError, match="credential twilio_auth_token: the Twilio auth_token must be UTF-8 text"
    ) as caught:
        load_config(path)
    assert SECRET.decode() not in str(caught.value)


def test_the_state_folder_is_base_dir_wherever_the_databases_are(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        f'[paths]\nbase_dir = "{tmp_path / "state"}"\nevents_db = "{tmp_path / "db" / "events.db"}"\n'
    )
    config = load_config(path)
    assert config.paths.state_dir == tmp_path / "state" == config.paths.base_dir
