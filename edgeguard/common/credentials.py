"""Secrets, read one way everywhere: the systemd credential, else an environment variable, else a private
file.

The four secrets of the device (Twilio's SID and token, the image link key,
the dashboard's secret, each push camera's token) come through `read_secret`:

1. `$CREDENTIALS_DIRECTORY/<credential>` (systemd `LoadCredential=`), when it
   exists and is not empty (its bytes as they are: a trailing newline is part
   of them);
2. the environment variable, when one is named and it is not blank;
3. the file, when one is given: read without following a symbolic link, or,
   when it is missing and the secret is one the device makes itself, made with
   fresh random bytes as a 0600 file flushed to the disk, its folder made 0700
   if missing (a process that races to make it keeps the first one's).  A
   file other users may read is used, with a warning saying how to close it.

A secret that cannot be read raises `SecretError` naming where it is and why,
never the secret itself; whether a value is usable (its length, its text) is
for the caller to say.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .files import create_private, read_regular

log = logging.getLogger(__name__)


class SecretError(OSError):
    """A secret that cannot be read (or made); the message names where it is, never its value."""

    def __init__(self, message: str, credential: bool = False) -> None:
        super().__init__(message)
        self.credential = credential  # the systemd credential was the one that failed


@dataclass(frozen=True)
class Secret:
    value: bytes
    where: str  # "credential <name>", "$<VARIABLE>" or the file's path: for messages, never the value
    made: bool = False  # the file was made just now


def credential_path(name: str) -> Path | None:
    """Where the systemd credential `name` would be; None without a credentials folder."""
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    return Path(folder, name) if folder else None


def read_credential(name: str, what: str = "secret") -> bytes | None:
    """The systemd credential `name` as it is (a trailing newline is part of it); None when there is none
    (no credentials folder, no such file, or an empty one); SecretError if it cannot be read."""
    path = credential_path(name)
    if path is None or not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecretError(f"{path}: cannot read the {what} credential: {exc.strerror or exc}", True) from None
    return data or None


def read_secret(
    what: str,
    *,
    credential: str,
    env: str | None = None,
    file: Path | None = None,
    make: Callable[[], bytes] | None = None,
) -> Secret | None:
    """The secret `what` (e.g. "image link key") from the first source that has it (see the module
    docstring); None when none has it and nothing is to be made."""
    data = read_credential(credential, what)
    if data is not None:
        return Secret(data, f"credential {credential}")
    if env and os.environ.get(env, "").strip():
        return Secret(os.environ[env].encode("utf-8"), f"${env}")
    if file is None:
        return None
    try:
        made = False
        if make is not None and not os.path.lexists(file):
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            made = create_private(file, make())
        data = read_regular(file)
    except OSError as exc:
        raise SecretError(f"{file}: cannot make or read the {what}: {exc.strerror or exc}") from None
    if not made:
        warn_if_open(file, what)
    return Secret(data, str(file), made)


def open_to_others(path: Path) -> bool:
    """Whether users other than the owner and group may read, write or run the file."""
    return bool(path.stat().st_mode & stat.S_IRWXO)


def warn_if_open(path: Path, what: str) -> None:
    """Log (without the secret) that a secret file is open to other users, and how to close it."""
    try:
        if open_to_others(path):
            log.warning("%s: the %s is readable by other users; run 'chmod o-rwx %s'", path, what, path)
    except OSError:
        pass  # it was just read; a file gone since then is the next reader's concern
