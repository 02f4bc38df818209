"""Biometric and personal data encrypted at rest: the data key, and sealing bytes with it.

Sealed bytes are `MAGIC | nonce (12 random bytes) | AES-256-GCM(data) with its 16-byte tag`, made by the
`cryptography` library's AESGCM.  The associated data is MAGIC and the role of the bytes (for a file: what
it is and its name, e.g. "capture/<id>-face.jpg"), so a sealed file moved under another name, or a sealed
field put in another column, does not open: it is reported as damaged, like a truncated or bit-flipped one.

The data key (32 bytes, raw or as base64 text) is read by `common/credentials.py`: the systemd credential
`data_key` (`LoadCredentialEncrypted=`, see install.sh), else `$EDGEGUARD_DATA_KEY`, else the key file in
the state folder (made on first start, 0600; a warning says it lies beside the data it protects).  A key
file that other users may read, or a key of the wrong length, is refused.  `data_key.check`, sealed with
the key when it is first used, tells a wrong key at start-up (one clear error) instead of every capture
failing later.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .credentials import SecretError, read_secret
from .files import create_private, read_regular

MAGIC = b"EGSEAL1\0"
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
CREDENTIAL = "data_key"
ENV = "EDGEGUARD_DATA_KEY"
CHECK_FILE = "data_key.check"
CHECK_ROLE = "data-key-check"
CHECK_TEXT = b"edgeguard data key check"


class SealError(ValueError):
    """Sealed bytes that do not open: damaged (truncated, bit-flipped), renamed, or sealed with another key;
    or sealed bytes met while encryption is off."""


class DataKeyError(Exception):
    """The data key cannot be used (missing, unreadable, open to other users, wrong length, not the key the
    data was sealed with); str() is the one line to print at start-up, never the key."""


def is_sealed(blob: bytes) -> bool:
    return blob[: len(MAGIC)] == MAGIC


class Sealer:
    """Seals and opens bytes with the data key; `where` says where the key came from (for messages)."""

    def __init__(self, key: bytes, where: str = "") -> None:
        if len(key) != KEY_SIZE:
            raise DataKeyError(
                f"{where or 'data key'}: the data key must be {KEY_SIZE} bytes, not {len(key)}"
            )
        self._aead = AESGCM(key)
        self.where = where

    def __repr__(self) -> str:
        return f"Sealer(key from {self.where or 'memory'})"

    def seal(self, data: bytes, role: str) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, MAGIC + role.encode())

    def open(self, blob: bytes, role: str) -> bytes:
        """The bytes `blob` sealed for `role`; SealError if it is not sealed, damaged or for another role."""
        if not is_sealed(blob):
            raise SealError("not encrypted")
        if len(blob) < len(MAGIC) + NONCE_SIZE + TAG_SIZE:
            raise SealError("encrypted, but truncated")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_SIZE]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_SIZE :], MAGIC + role.encode())
        except InvalidTag:
            raise SealError("encrypted, but damaged, renamed or sealed with another key") from None


def seal(sealer: Sealer | None, data: bytes, role: str) -> bytes:
    """`data` sealed for `role`, or as it is when encryption is off (no sealer)."""
    return data if sealer is None else sealer.seal(data, role)


def unseal(sealer: Sealer | None, blob: bytes, role: str) -> bytes:
    """The plain bytes of `blob`: opened if sealed, as they are if plain (written before encryption was on, or
    not yet migrated); SealError if it does not open, or is sealed while encryption is off."""
    if not is_sealed(blob):
        return blob
    if sealer is None:
        raise SealError("encrypted, but [privacy] encrypt is off (no data key loaded)")
    return sealer.open(blob, role)


def parse_key(data: bytes, where: str) -> bytes:
    """The 32 key bytes of a key source: raw bytes, or base64 text (a trailing newline allowed)."""
    if len(data) == KEY_SIZE:
        return data
    try:
        key = base64.b64decode(data.strip(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_SIZE:
        raise DataKeyError(
            f"{where}: the data key must be {KEY_SIZE} random bytes, raw or as base64 text "
            f"(this one is {len(data)} bytes); make one with: head -c {KEY_SIZE} /dev/urandom | base64"
        )
    return key


def new_key_text() -> bytes:
    return base64.b64encode(os.urandom(KEY_SIZE)) + b"\n"


class PendingSealer:
    """The data key of a site that has none yet and cannot make it now (a full disk at the first start).

    Nothing was ever sealed without a key, so there is nothing to open; each `seal` tries to make the key
    again and, until it can, fails as the disk does (OSError): a capture is then not saved, with the reason,
    and the event and its alert go on (their text fields are kept plain meanwhile: `seal_text`, and
    `edgeguard check` names what is plain).  Once the key is made, it seals with it (and after a restart)."""

    def __init__(self, key_file: Path, state_dir: Path) -> None:
        self.key_file, self.state_dir = key_file, state_dir
        self.where = str(key_file)
        self._made: Sealer | None = None
        self._why = ""

    def ready(self) -> bool:
        """Whether the key is made (tried again now if it was not)."""
        if self._made is None:
            try:
                self._made, _ = load_sealer(self.key_file, self.state_dir)
            except DataKeyError as exc:
                self._why = str(exc)
                return False
        return True

    def seal(self, data: bytes, role: str) -> bytes:
        if not self.ready():
            raise OSError(f"no data key to encrypt with yet: {self._why}")
        assert self._made is not None
        return self._made.seal(data, role)

    def open(self, blob: bytes, role: str) -> bytes:
        if self._made is None:
            raise SealError("encrypted, but this site has no data key yet")
        return self._made.open(blob, role)


def no_key_yet(key_file: Path) -> bool:
    """Whether the site has no data key at all yet: no credential, no environment variable, no key file."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    credential = directory is not None and os.path.lexists(os.path.join(directory, CREDENTIAL))
    return not (credential or os.environ.get(ENV) or os.path.lexists(key_file))


def load_sealer(key_file: Path, state_dir: Path) -> tuple[Sealer, str]:
    """The data key's Sealer, checked against `state_dir/data_key.check`, and a note for the start-up log
    when the key is the file beside the data ("" otherwise); DataKeyError with the one-line reason."""
    try:
        secret = read_secret("data key", credential=CREDENTIAL, env=ENV, file=key_file, make=new_key_text)
    except SecretError as exc:
        raise DataKeyError(str(exc)) from None
    assert secret is not None  # a file and a maker were given
    if secret.where == str(key_file):
        _refuse_open_file(key_file)
    sealer = Sealer(parse_key(secret.value, secret.where), secret.where)
    _check_key(sealer, state_dir / CHECK_FILE)
    note = ""
    if secret.where == str(key_file):
        note = (
            f"the data key is {secret.where}, on the same disk as the data it protects: use the systemd "
            f"credential {CREDENTIAL} instead (systemd-creds encrypt, then LoadCredentialEncrypted=: "
            "README, Privacy)"
        )
    return sealer, note


def _refuse_open_file(path: Path) -> None:
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode & 0o077:
        raise DataKeyError(
            f"{path}: the data key file is readable by others (mode {mode:03o}); run 'chmod 600 {path}'"
        )


def _check_key(sealer: Sealer, check: Path) -> None:
    """DataKeyError unless `check` opens with the key; made on first use of a key."""
    try:
        if not os.path.lexists(check):
            check.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            create_private(check, sealer.seal(CHECK_TEXT, CHECK_ROLE))
        blob = read_regular(check)
    except OSError as exc:
        raise DataKeyError(
            f"{check}: cannot make or read the data key check: {exc.strerror or exc}"
        ) from None
    try:
        if sealer.open(blob, CHECK_ROLE) == CHECK_TEXT:
            return
    except SealError:
        pass
    raise DataKeyError(
        f"{check}: the data key ({sealer.where}) is not the key this device's data was encrypted with; "
        "restore the right key (nothing was changed)"
    )


def seal_text(sealer: Sealer | None, text: str | None, role: str) -> str | bytes | None:
    """A text field as a database stores it: sealed bytes (a BLOB) for `role`, or the text itself when
    encryption is off; None stays None."""
    if text is None or sealer is None:
        return text
    if isinstance(sealer, PendingSealer) and not sealer.ready():
        return (
            text  # no key yet (a full disk at the first start): an event is never lost for it; check says so
        )
    return sealer.seal(text.encode(), role)


def open_text(sealer: Sealer | None, value: str | bytes | None, role: str) -> str | None:
    """The text of a field stored by `seal_text`: opened if sealed, as it is if plain (a row from before
    encryption, or not yet migrated); SealError if it does not open."""
    if value is None or isinstance(value, str):
        return value
    return unseal(sealer, bytes(value), role).decode()
