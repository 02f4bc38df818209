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

What the server refuses, and how:
- a token that is expired, tampered with, signed with another key or names
  anything but a plain file name: 403;
- a good token whose file is gone (retention deleted it), is not a regular
  file, is a symlink or is not an image: 404;
- any other path: 404, never a listing; methods other than GET/HEAD: 405.
Symlinks are refused when the file is opened (O_NOFOLLOW), not by resolving
the path first, so there is no window between check and use.

Logs name the file and the reason, never the token (it is the credential) nor
the client's address.

`ImageLinks` is the seam for putting images somewhere else (an upload to an
existing image host, as older set-ups did); `SignedLinks` is the built-in one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import socketserver
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, Callable, Protocol

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "edgeguard_link_key"
KEY_BYTES = 32
MIN_KEY_BYTES = 16
SIG_BYTES = 16
MAX_TOKEN_CHARS = 1024
CHUNK_BYTES = 64 * 1024
REQUEST_TIMEOUT = 10.0
POLL_SECONDS = 0.1  # how soon stop() is noticed
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
TOKEN_PATH = re.compile(r"/c/([A-Za-z0-9_.-]+)")  # one segment of token characters; the rest is 404
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
    (0600, its folder 0700).  Both are used byte for byte (a trailing newline
    is part of the key).  A key that is too short or cannot be read raises an
    error naming the file instead of being replaced: a new key would break
    every link already sent.
    """
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds:
        credential = Path(creds, CREDENTIAL_NAME)
        if credential.is_file() and credential.stat().st_size > 0:
            return _read_key(credential)
    try:
        return _read_key(path)
    except FileNotFoundError:
        return _make_key(path)


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise OSError(exc.errno, f"cannot read the image link key {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"{path}: the image link key is {len(key)} bytes, it must be at least {MIN_KEY_BYTES}; "
            f"delete the file to have a new one made (links already sent will stop working)"
        )
    return key


def _make_key(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it just now: use theirs
        return _read_key(path)
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
        fh.flush()
        os.fsync(fh.fileno())
    log.info("made a new image link key in %s", path)
    return key


# --- tokens -------------------------------------------------------------------------------


class LinkSigner:
    """Makes and checks link tokens for file names in the captures folder."""

    def __init__(self, key: bytes, public_url: str, ttl_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
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
        problem = _name_problem(name)
        if problem:
            raise ValueError(f"cannot sign a link to {name!r}: {problem}")
        expires = int(self._clock() + self._ttl)
        payload = _b64(f"{expires}:{name}".encode("utf-8"))
        return f"{payload}.{self._mac(payload)}"

    def url_for(self, name: str) -> str:
        return f"{self._base}/c/{self.token_for(name)}"

    def verify(self, token: str) -> str:
        """The file name a token grants, or LinkError with the reason."""
        return self.check(token)[0]

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
        problem = _name_problem(name)
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


def _name_problem(name: str) -> str:
    """Why `name` is not a plain file name of the captures folder, or "" if it is one."""
    if not name:
        return "empty name"
    if any(bad in name for bad in ("/", "\\", "\0")):
        return "not a plain file name"
    if name.startswith("."):
        return "starts with a dot"
    return ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedLinks:
    """`ImageLinks` through the built-in image server: signed URLs for files in `folder`."""

    def __init__(self, signer: LinkSigner, folder: Path) -> None:
        self._signer = signer
        self._folder = folder.resolve()

    def link_for(self, path: Path) -> str | None:
        if path.parent.resolve() != self._folder:
            return None
        return self._signer.url_for(path.name)


# --- the server ---------------------------------------------------------------------------


class ImageServer:
    """Serves the captures folder at signed URLs, on a background thread."""

    def __init__(self, listen: str, folder: Path, signer: LinkSigner,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        host, colon, port = listen.rpartition(":")
        if not colon or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"listen must be host:port, got {listen!r}")
        self._host, self._port = host, int(port)
        self._folder = folder
        self._signer = signer
        self._timeout = request_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The address actually listened on (the real port when 0 was asked for)."""
        if self._server is None:
            raise RuntimeError("the image server is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        try:
            self._server = _Server((self._host, self._port), _Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"image server cannot listen on {self._host}:{self._port}: "
                                     f"{exc.strerror or exc}") from None
        self._server.folder = self._folder
        self._server.signer = self._signer
        self._server.request_timeout = self._timeout
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,),
                                        name="image-server", daemon=True)
        self._thread.start()
        log.info("image server listening on %s:%d", *self.address)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default 5 drops a burst of connections (clients retry after 1 s)
    folder: Path
    signer: LinkSigner
    request_timeout: float

    def server_bind(self) -> None:
        # HTTPServer looks up the host's FQDN here, which stalls on a device without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr, even for a client that just went away.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.info("image server: a client went away mid-response (%s)", type(exc).__name__)
        else:
            log.exception("image server: request failed")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "edgeguard"
    sys_version = ""
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # a slow client cannot hold a thread for ever
        super().setup()

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _not_allowed(self) -> None:
        self._refuse(405, "method not allowed", allow="GET, HEAD")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _serve(self, body: bool) -> None:
        match = TOKEN_PATH.fullmatch(self.path.split("?", 1)[0])
        if match is None:
            self._refuse(404, "unknown path")
            return
        try:
            name, expires = self.server.signer.check(match.group(1))
        except LinkError as exc:
            self._refuse(403, str(exc))
            return
        content_type = CONTENT_TYPES.get(Path(name).suffix.lower())
        if content_type is None:
            self._refuse(404, f"{name} is not an image")
            return
        try:
            fh = _open_regular(self.server.folder / name)
        except OSError as exc:
            self._refuse(404, f"{name} cannot be opened ({exc.strerror})")
            return
        if fh is None:
            self._refuse(404, f"{name} is not a regular file")
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", f"private, max-age={self.server.signer.seconds_left(expires)}")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if body:
                shutil.copyfileobj(fh, self.wfile, CHUNK_BYTES)
        log.debug("image server: %s 200 %s (%d bytes)", self.command, name, size)

    def _refuse(self, code: int, reason: str, allow: str = "") -> None:
        text = f"{code} {self.responses[code][0]}\n".encode()
        self.send_response(code)
        self.send_header("Content-Type", self.error_content_type)
        self.send_header("Content-Length", str(len(text)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if allow:
            self.send_header("Allow", allow)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)
        log.info("image server: refused %s with %d: %s", self.command, code, reason)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default prints request lines, tokens included, to stderr; see the log lines above."""


def _open_regular(path: Path) -> BinaryIO | None:
    """`path` opened for reading, or None if it is not a regular file; a symlink raises OSError (ELOOP).

    O_NONBLOCK keeps a FIFO planted in the folder from blocking the open.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")
