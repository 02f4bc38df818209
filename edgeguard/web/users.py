"""Dashboard users, their sessions and one-time codes, in `users.db` beside the event log.

Passwords are hashed with Argon2id (argon2-cffi).  The parameters are chosen
for a Raspberry Pi: 64 MiB of memory and 3 passes on one lane cost about
0.17 s here (x86-64) and, by the usual 3-4x, 0.5-0.7 s on a Pi 4; that is
slow enough to make guessing costly and fast enough for a person.  At most
HASHING_AT_ONCE hashes run at the same time, so a burst of logins cannot take
a small board's memory.  Nobody has a default password: there is no user
until `edgeguard user add` makes one.

A session lives on the server: its id (32 random bytes) is only in the
HttpOnly cookie, and the table keeps its SHA-256, so a copy of the file gives
no one a session.  It ends after `idle_minutes` without a request, after
`session_hours` in all, or at logout.  Each session has its own CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..common.phone import E164
from ..store.sqlite import PrivateDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name     TEXT PRIMARY KEY,
    role     TEXT NOT NULL,
    phone    TEXT,
    hash     TEXT NOT NULL,
    created  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash  TEXT PRIMARY KEY,
    user     TEXT NOT NULL,
    created  REAL NOT NULL,
    seen     REAL NOT NULL,
    csrf     TEXT NOT NULL,
    state    TEXT NOT NULL DEFAULT 'ok',  -- 'ok', or 'otp' while a one-time code is awaited
    otp_hash TEXT,
    otp_until REAL,
    otp_tries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE TABLE IF NOT EXISTS reviews (
    seq      INTEGER PRIMARY KEY,  -- the event's sequence number in the event log
    user     TEXT NOT NULL,
    time     REAL NOT NULL
);
"""

ROLES = ("admin", "viewer")
MIN_PASSWORD = 12
VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
HASHING_AT_ONCE = 2
OTP_SECONDS = 300.0
OTP_TRIES = 5
SEEN_EVERY = 60.0  # a session's last-seen time is written at most this often


class UserError(ValueError):
    """A user cannot be added or changed as asked; str() says why."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    phone: str | None
    created: float

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    id_hash: str
    user: User
    csrf: str
    state: str  # "ok" or "otp"


class UserStore:
    def __init__(self, path: Path, idle_seconds: float = 1800.0, max_seconds: float = 43200.0) -> None:
        self.path = path
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self._db = PrivateDB(path, SCHEMA, "users", carry={"users": "", "sessions": "", "reviews": ""})
        self._hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)
        self._dummy = HASHER.hash(
            secrets.token_hex(16)
        )  # verified against for unknown names: same cost, no hint

    # -- users

    def add(self, name: str, password: str, role: str = "viewer", phone: str | None = None) -> User:
        _check_user(name, role, phone)
        _check_password(password)
        if self.get(name) is not None:
            raise UserError(f"user {name} exists already (use 'edgeguard user passwd {name}')")
        digest = self._hash(password)
        now = time.time()
        self._db.transaction(
            lambda db: db.execute(
                "INSERT INTO users (name, role, phone, hash, created) VALUES (?, ?, ?, ?, ?)",
                (name, role, phone or None, digest, now),
            )
        )
        return User(name, role, phone or None, now)

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        if self.get(name) is None:
            raise UserError(f"no user {name}")
        digest = self._hash(password)
        self._db.transaction(
            lambda db: db.execute("UPDATE users SET hash = ? WHERE name = ?", (digest, name))
        )
        self.end_sessions(name)  # a new password logs out everyone who had the old one

    def update(self, name: str, role: str, phone: str | None) -> None:
        _check_user(name, role, phone)
        self._db.transaction(
            lambda db: db.execute(
                "UPDATE users SET role = ?, phone = ? WHERE name = ?", (role, phone or None, name)
            )
        )

    def remove(self, name: str) -> bool:
        cursor = self._db.transaction(lambda db: db.execute("DELETE FROM users WHERE name = ?", (name,)))
        self.end_sessions(name)
        return cursor.rowcount > 0

    def get(self, name: str) -> User | None:
        row = self._db.read(
            lambda db: db.execute(
                "SELECT name, role, phone, created FROM users WHERE name = ?", (name,)
            ).fetchone()
        )
        return User(*row) if row else None

    def list(self) -> list[User]:
        rows = self._db.read(
            lambda db: db.execute("SELECT name, role, phone, created FROM users ORDER BY name").fetchall()
        )
        return [User(*row) for row in rows]

    def count(self) -> int:
        return int(self._db.read(lambda db: db.execute("SELECT COUNT(*) FROM users").fetchone())[0])

    def check_password(self, name: str, password: str) -> User | None:
        """The user if the password is theirs; an unknown name costs as much as a wrong password."""
        row = self._db.read(
            lambda db: db.execute("SELECT hash FROM users WHERE name = ?", (name,)).fetchone()
        )
        with self._hashing:
            try:
                HASHER.verify(row[0] if row else self._dummy, password)
            except (VerificationError, InvalidHashError):
                return None
        return self.get(name) if row else None

    def _hash(self, password: str) -> str:
        with self._hashing:
            return HASHER.hash(password)

    # -- sessions

    def start_session(self, user: User, awaiting_otp: bool = False) -> str:
        """A new session for `user` (a fresh id: never one the browser had before); the cookie value."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        self._db.transaction(
            lambda db: db.execute(
                "INSERT INTO sessions (id_hash, user, created, seen, csrf, state) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    _digest(token),
                    user.name,
                    now,
                    now,
                    secrets.token_urlsafe(32),
                    "otp" if awaiting_otp else "ok",
                ),
            )
        )
        return token

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie value, or None (unknown, idle too long, too old, user gone)."""
        if not token:
            return None
        id_hash = _digest(token)
        row = self._db.read(
            lambda db: db.execute(
                "SELECT user, created, seen, csrf, state FROM sessions WHERE id_hash = ?", (id_hash,)
            ).fetchone()
        )
        if row is None:
            return None
        name, created, seen, csrf, state = row
        now = time.time()
        user = self.get(name)
        if user is None or now - seen > self.idle_seconds or now - created > self.max_seconds:
            self.end_session(token)
            return None
        if now - seen > SEEN_EVERY:
            self._db.transaction(
                lambda db: db.execute("UPDATE sessions SET seen = ? WHERE id_hash = ?", (now, id_hash))
            )
        return Session(id_hash, user, csrf, state)

    def end_session(self, token: str) -> None:
        self._db.transaction(
            lambda db: db.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(token),))
        )

    def end_sessions(self, name: str) -> None:
        self._db.transaction(lambda db: db.execute("DELETE FROM sessions WHERE user = ?", (name,)))

    # -- reviews of events

    def mark_reviewed(self, seq: int, user: str) -> None:
        self._db.transaction(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO reviews (seq, user, time) VALUES (?, ?, ?)", (seq, user, time.time())
            )
        )

    def reviewed(self, seqs: list[int]) -> dict[int, str]:
        """Who reviewed which of these events."""
        if not seqs:
            return {}
        marks = ", ".join("?" for _ in seqs)
        rows = self._db.read(
            lambda db: db.execute(f"SELECT seq, user FROM reviews WHERE seq IN ({marks})", seqs).fetchall()
        )
        return dict(rows)

    # -- one-time codes

    def new_otp(self, session: Session) -> str:
        """A fresh 6-digit code for a session awaiting one (valid OTP_SECONDS, OTP_TRIES tries)."""
        code = f"{secrets.randbelow(10**6):06d}"
        self._db.transaction(
            lambda db: db.execute(
                "UPDATE sessions SET otp_hash = ?, otp_until = ?, otp_tries = 0 WHERE id_hash = ?",
                (_digest(code + session.id_hash), time.time() + OTP_SECONDS, session.id_hash),
            )
        )
        return code

    def check_otp(self, session: Session, code: str) -> str:
        """ "ok" (the session is now logged in), "wrong", or "expired" (too late or too many tries: log in
        again)."""
        row = self._db.read(
            lambda db: db.execute(
                "SELECT otp_hash, otp_until, otp_tries FROM sessions WHERE id_hash = ?", (session.id_hash,)
            ).fetchone()
        )
        if row is None or row[0] is None or time.time() > row[1] or row[2] >= OTP_TRIES:
            self._db.transaction(
                lambda db: db.execute("DELETE FROM sessions WHERE id_hash = ?", (session.id_hash,))
            )
            return "expired"
        if not hmac.compare_digest(row[0], _digest(code.strip() + session.id_hash)):
            self._db.transaction(
                lambda db: db.execute(
                    "UPDATE sessions SET otp_tries = otp_tries + 1 WHERE id_hash = ?", (session.id_hash,)
                )
            )
            return "wrong"
        self._db.transaction(
            lambda db: db.execute(
                "UPDATE sessions SET state = 'ok', otp_hash = NULL WHERE id_hash = ?", (session.id_hash,)
            )
        )
        return "ok"

    def close(self) -> None:
        self._db.close()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_user(name: str, role: str, phone: str | None) -> None:
    if not VALID_NAME.fullmatch(name):
        raise UserError("a user name is 1-64 letters, digits and _ . @ -, starting with a letter or digit")
    if role not in ROLES:
        raise UserError(f"the role is admin or viewer, not {role!r}")
    if phone and not re.fullmatch(E164, phone):
        raise UserError("the phone number must be in international form like +15551230000")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters long")
    if password != password.strip() or "\n" in password:
        raise UserError("the password must not begin or end with white space")


def open_users(path: Path, idle_minutes: float = 30.0, session_hours: float = 12.0) -> UserStore:
    return UserStore(path, idle_minutes * 60, session_hours * 3600)
