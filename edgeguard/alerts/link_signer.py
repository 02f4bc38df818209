"""Links to capture images in alerts: signed, expiring URLs served by the daemon itself.

An alert is more useful with the face in it, but the captures are biometric
data, so they must not sit on a public host or behind guessable names.  The
daemon serves them over HTTP only at `/c/<token>`, where the token names one
file of the captures folder and when the link expires, signed with HMAC-SHA256
under a key that never leaves the device.  Recipients (and Twilio, which
fetches MMS media with HEAD and GET and checks the Content-Type) reach the
server at `alerts.public_url` through a port-forward, VPN or tunnel.

Token: base64url(f"{expires}:{name}") "." base64url(HMAC(key, first part))
truncated to 16 bytes, without padding.  The MAC covers the text of the URL,
not the decoded payload, so any changed character fails the check, and the
payload is only decoded once it is known to be ours.

`ImageLinks` is the seam for putting images somewhere else (an upload to an
existing image host, as older set-ups did); `SignedLinks` is the built-in one,
served by the dashboard's server (edgeguard.web.image_links).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..common.credentials import read_secret
from ..store.face_captures import CaptureFolder, name_problem

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "edgeguard_link_key"
KEY_BYTES = 32
MIN_KEY_BYTES = 16
SIG_BYTES = 16
MAX_TOKEN_CHARS = 1024
TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
EXPIRES = re.compile(r"[0-9]{1,12}")


class LinkError(Exception):
    """A link token was refused; str() is the reason (expired, bad signature, malformed)."""


class ImageLinks(Protocol):
    def link_for(self, path: Path) -> str | None:
        """A URL recipients can open to see the image at `path`, or None if there is none."""


# --- the key ------------------------------------------------------------------------------


def load_link_key(path: Path) -> bytes:
    """The key that signs image links.

    The systemd credential `edgeguard_link_key` wins when it exists and is not
    empty; otherwise the file at `path`, made on first use with 32 random bytes
    (edgeguard.common.credentials: 0600, its folder 0700).  Both are used byte
    for byte (a trailing newline is part of the key).  A key that is too short
    or cannot be read raises an error naming the file instead of being
    replaced: a new key would break every link already sent.
    """
    secret = read_secret(
        "image link key", credential=CREDENTIAL_NAME, file=path, make=lambda: secrets.token_bytes(KEY_BYTES)
    )
    assert secret is not None  # a file is given, and made when missing
    if secret.made:
        log.info("made a new image link key in %s", path)
    return _checked_key(secret.value, secret.where)


def _checked_key(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"{where}: the image link key is {len(key)} bytes, it must be at least {MIN_KEY_BYTES}; "
            f"delete the file to have a new one made (links already sent will stop working)"
        )
    return key


# --- tokens -------------------------------------------------------------------------------


class LinkSigner:
    """Makes and checks link tokens for file names in the captures folder."""

    def __init__(
        self, key: bytes, public_url: str, ttl_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the link key must be at least {MIN_KEY_BYTES} bytes")
        if not public_url.startswith(("http://", "https://")):
            raise ValueError(f"public_url must be an http:// or https:// address, got {public_url!r}")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
        self._key = key
        self._base = public_url.rstrip("/")
        self._ttl = ttl_seconds
        self._clock = clock

    def token_for(self, name: str) -> str:
        """A token for the file `name` in the captures folder, valid for ttl_seconds from now."""
        problem = name_problem(name)
        if problem:
            raise ValueError(f"cannot sign a link to {name!r}: {problem}")
        expires = int(self._clock() + self._ttl)
        payload = _b64(f"{expires}:{name}".encode())
        return f"{payload}.{self._mac(payload)}"

    def url_for(self, name: str) -> str:
        return f"{self._base}/c/{self.token_for(name)}"

    def check(self, token: str) -> tuple[str, int]:
        """The file name a token grants and when it expires (epoch seconds), or LinkError."""
        if len(token) > MAX_TOKEN_CHARS or not TOKEN.fullmatch(token):
            raise LinkError("malformed token")
        payload, _, mac = token.partition(".")
        if not hmac.compare_digest(self._mac(payload), mac):
            raise LinkError("bad signature")
        try:
            expires, _, name = _unb64(payload).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise LinkError("malformed payload") from None
        if not EXPIRES.fullmatch(expires):
            raise LinkError("malformed expiry")
        problem = name_problem(name)
        if problem:
            raise LinkError(f"refused name: {problem}")
        if int(expires) <= self._clock():
            raise LinkError("expired")
        return name, int(expires)

    def seconds_left(self, expires: int) -> int:
        return max(0, int(expires - self._clock()))

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()
        return _b64(digest[:SIG_BYTES])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedLinks:
    """`ImageLinks` through the built-in image server: signed URLs for the capture images in `folder`."""

    def __init__(self, signer: LinkSigner, folder: Path) -> None:
        self._signer = signer
        self._captures = CaptureFolder(folder)

    def link_for(self, path: Path) -> str | None:
        name = self._captures.image_name(path)
        return None if name is None else self._signer.url_for(name)
