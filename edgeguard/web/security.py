"""What every dashboard request goes through: login throttling, CSRF tokens, security headers, the secret.

Throttling.  Failed logins are counted per client address and per account
name.  The first FREE_FAILURES of either cost nothing more; after that each
further try must wait 2^(n - FREE_FAILURES) seconds (1, 2, 4 ... up to
MAX_DELAY) since the last failure, and a try that comes earlier is answered
429 with Retry-After without the password even being checked (so a flood
costs no hashing).  The check and the record are one step: a try allowed in
is counted as a failure at once, before its password is checked, so a burst
of parallel tries finds the counters already raised and gets one password
checked, not dozens.  A successful login takes its own failures back: the
account's counter is cleared, and the address loses only the failures at
that account, so logging in to one's own account does not reset one's
guesses at others.  Push cameras' bearer tokens are throttled per client
address only, so that someone guessing a camera's token cannot lock the
camera itself out.

CSRF.  Every session has a random token; every state-changing request (any
method but GET and HEAD) must carry it in the form field `csrf` or the header
X-CSRF-Token, compared in constant time.  The login form, before any
session, carries a token signed with the secret and bound to a pre-login
cookie.

Headers.  A Content-Security-Policy without inline script or style
(`default-src 'self'`), frame-ancestors 'none', nosniff, no-referrer, and no
caching of pages that show personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..common.credentials import SecretError, read_secret

log = logging.getLogger(__name__)

FREE_FAILURES = 5
MAX_DELAY = 900.0
SECRET_CREDENTIAL = "web_secret"
SECRET_BYTES = 32

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class Throttle:
    """Failures counted per key (a client address, an account name); see the module docstring."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_key: dict[str, _Failures] = {}

    def wait(self, *keys: str) -> float:
        """Seconds a client with these keys must still wait before trying again (0: it may try now)."""
        with self._lock:
            return max(self._wait(key) for key in keys)

    def attempt(self, *keys: str) -> float:
        """In one step: the seconds to wait (nothing recorded), or 0 with a failure recorded for each key in
        advance (a success takes it back)."""
        with self._lock:
            wait = max(self._wait(key) for key in keys)
            if wait <= 0:
                self._record(keys)
            return wait

    def failed(self, *keys: str) -> None:
        with self._lock:
            self._record(keys)

    def _record(self, keys: tuple[str, ...]) -> None:
        now = self._clock()
        for key in keys:
            entry = self._by_key.setdefault(key, _Failures())
            entry.count, entry.last = entry.count + 1, now
        if len(self._by_key) > 10_000:  # a scan of names: forget the calm ones
            self._by_key = {k: v for k, v in self._by_key.items() if now - v.last < MAX_DELAY}

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._by_key.pop(key, None)

    def _wait(self, key: str) -> float:
        entry = self._by_key.get(key)
        if entry is None or entry.count < FREE_FAILURES:
            return 0.0
        delay = min(MAX_DELAY, 2.0 ** (entry.count - FREE_FAILURES))
        return max(0.0, entry.last + delay - self._clock())


class LoginThrottle:
    """Failed logins, counted per client address and per account name (and per address and account, so that a
    success takes back only its own failures from the address's count)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._failures = Throttle(clock)

    def attempt(self, address: str, account: str) -> float:
        """Seconds the client must still wait (0: it may try now; it counts as failed until it succeeds)."""
        return self._failures.attempt(*_login_keys(address, account))

    def succeeded(self, address: str, account: str) -> None:
        """The password was right: clear the account, and take this account's failures off the address."""
        by_address, by_account, pair = _login_keys(address, account)
        failures = self._failures
        with failures._lock:
            own = failures._by_key.pop(pair, _Failures())
            failures._by_key.pop(by_account, None)
            entry = failures._by_key.get(by_address)
            if entry is not None:
                entry.count = max(0, entry.count - own.count)


def _login_keys(address: str, account: str) -> tuple[str, str, str]:
    name = account.lower()
    return f"addr:{address}", f"user:{name}", f"pair:{address}\0{name}"


def load_secret(state_folder: Path) -> bytes:
    """The dashboard's signing secret: the systemd credential `web_secret`, else `web.secret` made once in
    the state folder (edgeguard.common.credentials).

    If the file cannot be made or read (a full disk), one for this run only: it
    signs login forms and notices, which a restart may invalidate without harm.
    A credential that cannot be read is an error: the installer set it up.
    """
    try:
        secret = read_secret(
            "dashboard secret",
            credential=SECRET_CREDENTIAL,
            file=state_folder / "web.secret",
            make=lambda: secrets.token_bytes(SECRET_BYTES),
        )
    except SecretError as exc:
        if exc.credential:
            raise
        log.error("%s; using a dashboard secret for this run only", exc)
        return secrets.token_bytes(SECRET_BYTES)
    assert secret is not None  # a file is given, and made when missing
    return secret.value


def form_token(secret: bytes, prelogin: str) -> str:
    """The CSRF token of the login form, bound to the browser's pre-login cookie."""
    return hmac.new(secret, f"login:{prelogin}".encode(), hashlib.sha256).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
