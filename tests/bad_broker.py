"""A misbehaving broker for the MQTT tests: a loopback TCP server whose first connections misbehave (answer
garbage, refuse the client id, cut the connection in the middle of a PUBLISH) and whose later ones are passed
through to a real broker (tests/brokers.py), so that a test can check that the output retries and, once the
broker behaves, loses nothing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

# MQTT 5 CONNACK: no session present, reason 0x85 "Client Identifier not valid", no properties
CONNACK_CLIENT_ID_NOT_VALID = b"\x20\x03\x00\x85\x00"
GARBAGE = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
PUBLISH = 0x30  # the PUBLISH packet's type, in the high nibble of its first byte

# what a connection gets: its client socket, and a way to open a connection to the real broker
Behaviour = Callable[[socket.socket, Callable[[], socket.socket]], None]


def garbage(client: socket.socket, _upstream: Callable[[], socket.socket]) -> None:
    """Read the CONNECT, answer bytes that are not MQTT (an HTTP server on the MQTT port), then close."""
    client.recv(4096)
    client.sendall(GARBAGE)


def refuse_client_id(client: socket.socket, _upstream: Callable[[], socket.socket]) -> None:
    """Read the CONNECT and refuse it: CONNACK with reason 0x85, then close (as MQTT 5 says a server does)."""
    client.recv(4096)
    client.sendall(CONNACK_CLIENT_ID_NOT_VALID)


def cut_in_publish(nth: int) -> Behaviour:
    """Pass the connection through to the real broker, packet by packet, but send only the first half of
    the client's `nth` PUBLISH, then cut both sides (a connection lost in the middle of a message)."""

    def behave(client: socket.socket, upstream: Callable[[], socket.socket]) -> None:
        broker = upstream()
        threading.Thread(target=_pump, args=(broker, client), daemon=True).start()
        buffer, publishes = b"", 0
        try:
            while data := client.recv(4096):
                buffer += data
                while (size := _packet_size(buffer)) is not None and len(buffer) >= size:
                    packet, buffer = buffer[:size], buffer[size:]
                    if packet[0] & 0xF0 == PUBLISH:
                        publishes += 1
                        if publishes == nth:
                            broker.sendall(packet[: size // 2])
                            return
                    broker.sendall(packet)
        finally:
            _close(broker)

    return behave


def forward(client: socket.socket, upstream: Callable[[], socket.socket]) -> None:
    """Pass the connection through to the real broker, both ways, until either side closes."""
    broker = upstream()
    threading.Thread(target=_pump, args=(broker, client), daemon=True).start()
    _pump(client, broker)


class BadBroker:
    """Listens on a free loopback port; connection n (from 0) gets `behaviours[n]`, every later one is
    forwarded to the real broker on `upstream_port`.  `connections` counts the clients that came."""

    def __init__(self, behaviours: list[Behaviour], upstream_port: int | None = None) -> None:
        self.behaviours = behaviours
        self.upstream_port = upstream_port
        self.connections = 0
        self.times: list[float] = []  # when each client came (time.monotonic())
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="bad-broker", daemon=True).start()

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for sock in self._open:
                _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            with self._lock:
                n, self.connections = self.connections, self.connections + 1
                self.times.append(time.monotonic())
                self._open.append(client)
            behave = self.behaviours[n] if n < len(self.behaviours) else forward
            threading.Thread(target=self._serve, args=(behave, client), daemon=True).start()

    def _serve(self, behave: Behaviour, client: socket.socket) -> None:
        try:
            behave(client, self._upstream)
        except OSError:
            pass
        finally:
            _close(client)

    def _upstream(self) -> socket.socket:
        if self.upstream_port is None:
            raise OSError("no real broker behind this one")
        sock = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        sock.settimeout(None)
        with self._lock:
            self._open.append(sock)
        return sock


def _packet_size(buffer: bytes) -> int | None:
    """The size of the MQTT packet at the start of `buffer` (fixed header and remaining length), None while
    its header is incomplete."""
    length, shift = 0, 0
    for i, byte in enumerate(buffer[1:5], start=1):
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return 1 + i + length
    return None


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(4096):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
