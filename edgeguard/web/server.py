"""The daemon's one HTTP server: the dashboard and the signed capture links, on threads of its own.

Waitress serves both HTTP and HTTPS.  Its event loop does all the waiting on
clients: it reads each request's headers and body before a worker thread sees
it, so idle or slow clients (500 of them, or a slowloris) cost a socket each
and no thread.  Under TLS (`[web] tls_cert` and `tls_key`) the handshake is
one more thing that loop waits for, a step at a time as bytes arrive
(`_TlsChannel`): a connection that never sends its hello costs one idle socket
until the channel timeout closes it, and never holds up an accept or a worker.

Headers first.  Before a request's body is read, `body_limit` (the app's,
edgeguard.web.admission) judges its request line and headers: the route's
cap on the body, and whether it carries a valid session or token.  A body
over the cap, a chunked body, or one the headers do not entitle to be read
is not read: the app gets the request with no body and a note saying why
(WITHHELD_ENVIRON), answers from the headers alone, and the connection is
closed, lingering (LINGER_SECONDS, LINGER_BYTES: write side shut, what the
client still sends read and dropped) so that its kernel does not answer the
rest of its body with a reset that loses our answer before the client reads
it, as Apache and nginx do.  The bodies of requests without a session or token share
UNTRUSTED_BODIES between them; headers are capped at MAX_HEADER per
connection.  Each streaming response (a live view, an event stream) holds
one worker thread, so the pool has room for `max_live_viewers` and the
event streams beside the threads for ordinary requests.  None of this runs
on the frame loop.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import create_server

log = logging.getLogger(__name__)

REQUEST_THREADS = 8  # for pages, images and logins, beside the streams
STREAM_THREADS = 16  # event streams (edgeguard.web.events.MAX_CLIENTS)
REQUEST_TIMEOUT = 10  # seconds a client may stay silent, handshake included
CONNECTION_LIMIT = 1000
MAX_BODY = 25 * 1024 * 1024  # no route takes more (admission.py caps each route below this)
MAX_HEADER = 16 * 1024  # request line and headers, per connection
UNTRUSTED_BODIES = 1024 * 1024  # what the bodies of all requests without a session or token may hold at once
LINGER_SECONDS = 2.0  # how long the unread body of a refused request is drained after the answer
LINGER_BYTES = 4 * 1024 * 1024  # at most this much of it is read (and dropped, never held)
WITHHELD_HEADER = "EDGEGUARD_WITHHELD"  # set by the server only (waitress drops client headers with "_")
WITHHELD_ENVIRON = f"HTTP_{WITHHELD_HEADER}"  # "<status> <reason>" when the body was not read


@dataclass(frozen=True)
class BodyLimit:
    """What a request may send as its body, judged from its request line and headers alone."""

    most: int  # bytes; a larger body (or a chunked one) is not read
    trusted: bool  # it carries a valid session or token; the others share UNTRUSTED_BODIES
    status: int = 413  # the answer when the body is not read, and why
    reason: str = "the request body is too large"


BodyJudge = Callable[[str, str, Mapping[str, str]], BodyLimit]  # (method, path, headers) -> BodyLimit


def _any_body(method: str, path: str, headers: Mapping[str, str]) -> BodyLimit:
    return BodyLimit(MAX_BODY, trusted=True)


class _Pool:
    """Bytes shared by the untrusted bodies being received: taken when the headers arrive, given back when the
    request is gone (answered, or its connection closed)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._used = 0
        self._lock = threading.Lock()

    def take(self, amount: int) -> bool:
        with self._lock:
            if self._used + amount > self.size:
                return False
            self._used += amount
            return True

    def give(self, amount: int) -> None:
        with self._lock:
            self._used -= amount


class _GatedParser(HTTPRequestParser):
    """Waitress's request parser, asking `judge` about the body before it reads a byte of it."""

    judge: BodyJudge = staticmethod(_any_body)
    pool: _Pool = _Pool(UNTRUSTED_BODIES)

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        self.headers.pop(WITHHELD_HEADER, None)
        limit = self.judge(self.command, self.path, self.headers)
        declared = self.content_length
        if self.chunked and limit.most:
            self._withhold(411, "a body needs a Content-Length")
        elif self.chunked or declared > limit.most:
            self._withhold(limit.status, limit.reason)
        elif declared and not limit.trusted:
            if not self.pool.take(declared):
                self._withhold(503, "too many requests are being received: try again in a moment")
            else:
                weakref.finalize(self, self.pool.give, declared)

    def _withhold(self, status: int, reason: str) -> None:
        """Read no body: the app answers from the headers, then the connection closes (the body is unread)."""
        self.body_rcv = None
        self.chunked = False
        self.content_length = 0
        self.expect_continue = False
        self.connection_close = True
        self.headers["CONNECTION"] = "close"
        self.headers[WITHHELD_HEADER] = f"{status} {reason}"


class _GatedChannel(HTTPChannel):
    """Waitress's channel with the gated parser; a connection whose body was withheld lingers at its close."""

    parser_class = _GatedParser
    lingers = True  # False under TLS: its close_notify is the end of the stream
    _withheld = False  # a request on this connection had its body withheld
    _linger_until: float | None = None
    _linger_left = 0

    def received(self, data: bytes) -> bool:
        result = super().received(data)
        if any(WITHHELD_HEADER in request.headers for request in self.requests):
            self._withheld = True
        return result

    def readable(self) -> bool:
        return True if self._linger_until is not None else super().readable()

    def writable(self) -> bool:
        if self._linger_until is not None:
            return time.monotonic() > self._linger_until  # then handle_write closes it
        return super().writable()

    def handle_read(self) -> None:
        if self._linger_until is None:
            super().handle_read()
            return
        try:
            data = self.socket.recv(65536)
        except OSError:
            data = b""
        self._linger_left -= len(data)
        if not data or self._linger_left <= 0 or time.monotonic() > self._linger_until:
            self.handle_close()

    def handle_close(self) -> None:
        if self._linger_until is None and self._withheld and self.lingers and self.connected:
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            else:
                self._linger_until = time.monotonic() + LINGER_SECONDS
                self._linger_left = LINGER_BYTES
                return
        super().handle_close()

    def handle_write(self) -> None:
        if self._linger_until is not None:
            self.handle_close()
            return
        super().handle_write()


class _TlsChannel(_GatedChannel):
    """A waitress channel over TLS, the handshake done in the event loop as the client's bytes come."""

    context: ssl.SSLContext
    lingers = False

    def __init__(self, server, sock, addr, adj, map=None) -> None:
        self._handshaking = True
        self._handshake_wants_write = False
        self._unsent: bytes | None = None  # a write TLS asked to retry with the very same bytes
        sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        super().__init__(server, sock, addr, adj, map)

    def readable(self) -> bool:
        if self._handshaking:
            return not (self.will_close or self._handshake_wants_write)
        return super().readable()

    def writable(self) -> bool:
        if self._handshaking:
            return self._handshake_wants_write or self.will_close
        return super().writable()

    def handle_read(self) -> None:
        if self._handshaking:
            self._handshake()
            return
        try:
            data = self.socket.recv(self.adj.recv_bytes)
            while data and self.socket.pending():  # what TLS decrypted already: select() will not say so
                data += self.socket.recv(self.socket.pending())
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return  # part of a record: the rest comes with the next bytes
        except OSError:  # ssl.SSLError included
            self.handle_close()
            return
        if not data:
            self.handle_close()
            return
        self.last_activity = time.time()
        self.received(data)

    def handle_write(self) -> None:
        if self._handshaking and not self.will_close:
            self._handshake()
            return
        super().handle_write()

    def send(self, data, do_close: bool = True) -> int:
        chunk = self._unsent if self._unsent is not None else bytes(data)
        try:
            sent = self.socket.send(chunk)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            self._unsent = chunk
            return 0
        except OSError:
            if do_close:
                self.handle_close()
            return 0
        self._unsent = None
        return sent

    def _handshake(self) -> None:
        try:
            self.socket.do_handshake()
        except ssl.SSLWantReadError:
            self._handshake_wants_write = False
            return
        except ssl.SSLWantWriteError:
            self._handshake_wants_write = True
            return
        except OSError:  # not TLS, a wrong version, a reset: nothing to answer
            self.handle_close()
            return
        self._handshaking = self._handshake_wants_write = False
        self.last_activity = time.time()
        self.handle_read()  # the first request may have come with the handshake's last bytes


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(str(cert), str(key))
    return context


def parse_listen(listen: str) -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen must be host:port, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class WebServer:
    def __init__(
        self,
        listen: str,
        app,
        live_viewers: int,
        tls: tuple[Path, Path] | None = None,
        body_limit: BodyJudge = _any_body,
    ) -> None:
        self.listen = listen
        self._app = app
        self._threads = REQUEST_THREADS + STREAM_THREADS + live_viewers
        self._tls = tls
        self._body_limit = body_limit
        self.request_timeout = REQUEST_TIMEOUT
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Listen now (OSError naming the address if that is impossible), then serve on a thread."""
        host, port = parse_listen(self.listen)
        try:
            context = tls_context(*self._tls) if self._tls is not None else None
            self._server = create_server(
                self._app,
                host=host,
                port=port,
                threads=self._threads,
                connection_limit=CONNECTION_LIMIT,
                channel_timeout=self.request_timeout,
                cleanup_interval=max(1, int(self.request_timeout / 2)),
                max_request_body_size=MAX_BODY,
                max_request_header_size=MAX_HEADER,
                url_scheme="https" if context else "http",
                ident="edgeguard",
                clear_untrusted_proxy_headers=True,
            )
        except OSError as exc:
            raise OSError(f"the dashboard cannot listen on {self.listen}: {exc.strerror or exc}") from None
        except ssl.SSLError as exc:
            raise OSError(f"the dashboard's certificate or key cannot be used: {exc}") from None
        self._server.channel_class = self._channel_class(context)
        self._thread = threading.Thread(target=self._server.run, name="web-server", daemon=True)
        self._thread.start()
        log.info("dashboard listening on %s://%s:%d", "https" if self.tls else "http", *self.address)

    def _channel_class(self, context: ssl.SSLContext | None) -> type[HTTPChannel]:
        """This server's channels: its own judge of bodies and pool of untrusted bytes, and TLS if asked."""
        parser = type(
            "Parser",
            (_GatedParser,),
            {"judge": staticmethod(self._body_limit), "pool": _Pool(UNTRUSTED_BODIES)},
        )
        if context is None:
            return type("Channel", (_GatedChannel,), {"parser_class": parser})
        return type("TlsChannel", (_TlsChannel,), {"parser_class": parser, "context": context})

    def stop(self) -> None:
        if self._thread is None or self._server is None:
            return
        server = self._server
        # Close every channel from inside waitress's own loop (closing them from here races its select);
        # with nothing left to watch, the loop ends.
        try:
            server.trigger.pull_trigger(lambda: [channel.close() for channel in list(server._map.values())])
        except OSError:  # the loop has ended on its own and closed its trigger: nothing left to close
            pass
        server.task_dispatcher.shutdown(timeout=1)
        self._thread.join(timeout=5)
        self._thread = None
