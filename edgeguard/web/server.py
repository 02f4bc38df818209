"""The daemon's one HTTP server: the dashboard and the signed capture links, on threads of its own.

Plain HTTP is served by waitress: its event loop reads each request whole
before a worker thread sees it, so idle or slow clients (200 of them, or a
slowloris) cost no thread and do not stop a login.  Waitress has no TLS, so
with `[web] tls_cert` and `tls_key` cheroot (CherryPy's server) serves HTTPS
instead; it gives each new connection a worker until its request arrives, so
it gets a larger pool and a short read timeout.  Either way each streaming
response (a live view, an event stream) holds one worker thread, so the pool
has room for `max_live_viewers` and the event streams beside the threads for
ordinary requests.  None of this runs on the frame loop.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from waitress.server import create_server

log = logging.getLogger(__name__)

REQUEST_THREADS = 8  # for pages, images and logins, beside the streams
STREAM_THREADS = 16  # event streams (edgeguard.web.events.MAX_CLIENTS)
TLS_CONNECTION_THREADS = 48  # cheroot: connections waiting for their request hold a thread
REQUEST_TIMEOUT = 10  # seconds a client may stay silent (waitress: whole channel; cheroot: each read)
TLS_READ_TIMEOUT = 3
CONNECTION_LIMIT = 1000
MAX_BODY = 25 * 1024 * 1024  # uploads larger than this are refused before they are read (413)


def parse_listen(listen: str) -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen must be host:port, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class WebServer:
    def __init__(self, listen: str, app, live_viewers: int, tls: tuple[Path, Path] | None = None) -> None:
        self.listen = listen
        self._app = app
        self._threads = REQUEST_THREADS + STREAM_THREADS + live_viewers
        self._tls = tls
        self.request_timeout = REQUEST_TIMEOUT
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def tls(self) -> bool:
        return self._tls is not None

    @property
    def address(self) -> tuple[str, int]:
        if isinstance(self._server, wsgi.Server):
            host, port = self._server.bind_addr[:2]
        else:
            host, port = self._server.socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Listen now (OSError naming the address if that is impossible), then serve on a thread."""
        host, port = parse_listen(self.listen)
        try:
            if self._tls is None:
                self._server = create_server(
                    self._app,
                    host=host,
                    port=port,
                    threads=self._threads,
                    connection_limit=CONNECTION_LIMIT,
                    channel_timeout=self.request_timeout,
                    cleanup_interval=max(1, int(self.request_timeout / 2)),
                    max_request_body_size=MAX_BODY,
                    ident="edgeguard",
                    clear_untrusted_proxy_headers=True,
                )
                run = self._server.run
            else:
                self._server = self._cheroot(host, port)
                self._server.prepare()
                run = self._server.serve
        except OSError as exc:
            raise OSError(f"the dashboard cannot listen on {self.listen}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=run, name="web-server", daemon=True)
        self._thread.start()
        log.info("dashboard listening on %s://%s:%d", "https" if self.tls else "http", *self.address)

    def _cheroot(self, host: str, port: int) -> wsgi.Server:
        server = wsgi.Server(
            (host, port),
            self._app,
            numthreads=self._threads + TLS_CONNECTION_THREADS,
            server_name="edgeguard",
            timeout=TLS_READ_TIMEOUT,
            accepted_queue_timeout=5,
            request_queue_size=64,
            shutdown_timeout=1,
        )
        server.max_request_body_size = MAX_BODY
        assert self._tls is not None
        server.ssl_adapter = BuiltinSSLAdapter(str(self._tls[0]), str(self._tls[1]))
        return server

    def stop(self) -> None:
        if self._thread is None or self._server is None:
            return
        if isinstance(self._server, wsgi.Server):
            self._server.stop()
        else:
            server = self._server
            # Close every channel from inside waitress's own loop (closing them from here races its select);
            # with nothing left to watch, the loop ends.
            try:
                server.trigger.pull_trigger(
                    lambda: [channel.close() for channel in list(server._map.values())]
                )
            except OSError:  # the loop has ended on its own and closed its trigger: nothing left to close
                pass
            server.task_dispatcher.shutdown(timeout=1)
        self._thread.join(timeout=5)
        self._thread = None
