"""The small HTTP server behind the image links of alerts (edgeguard.alerts.links).

What it refuses, and how:
- a token that is expired, tampered with, signed with another key or names
  anything but a plain file name: 403;
- a good token whose file is gone (retention deleted it), is not a regular
  file, is a symlink or is not an image: 404;
- any other path: 404, never a listing; methods other than GET/HEAD: 405.
Symlinks are refused when the file is opened (O_NOFOLLOW), not by resolving
the path first, so there is no window between check and use.  Logs name the
file and the reason, never the token (it is the credential) nor the client's address.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..common.files import open_regular
from .links import LinkError, LinkSigner

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
REQUEST_TIMEOUT = 10.0
POLL_SECONDS = 0.1  # how soon stop() is noticed
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
TOKEN_PATH = re.compile(r"/c/([A-Za-z0-9_.-]+)")  # one segment of token characters; the rest is 404


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
            fh = open_regular(self.server.folder / name)
        except OSError as exc:
            self._refuse(404, f"{name} cannot be opened ({exc.strerror})")
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
