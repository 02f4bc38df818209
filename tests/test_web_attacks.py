"""The dashboard under attack (issue 21), from outside: the real daemon (`edgeguard run`) on loopback, hit
over real sockets with the rig of bench/web_attacks.py (which prints the same probes' figures).  Every load is
bounded in count and time."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from web_attacks import PUSH_TOKEN, Client, Site, jpeg  # noqa: E402  (the bench's rig: a site and its daemon)

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def sites():
    """Start a site's daemon: sites(**Site options); all are stopped and removed after the test."""
    made: list[Site] = []

    def start(**options) -> Site:
        site = Site(**options)
        made.append(site)
        return site.start()

    yield start
    for site in made:
        site.stop()


def push(http: requests.Session, site: Site, body: bytes, token: str = PUSH_TOKEN, camera: str = "till"):
    return http.post(
        f"{site.url}/upload_frame/{camera}",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"},
        timeout=5,
    )


# ---------------------------------------------------------------- 1. HTTPS and idle connections


def test_https_holds_500_idle_connections_while_a_client_logs_in_and_a_camera_pushes(sites):
    site = sites(tls=True)
    idle = []
    try:
        for _ in range(500):  # connected, never saying hello
            idle.append(socket.create_connection(("127.0.0.1", site.port), timeout=2))
        started = time.monotonic()
        http = site.login(timeout=10)
        assert http.status == 302 and time.monotonic() - started < 5
        assert "/login" not in http.get(f"{site.url}/", timeout=5).url  # the session works over TLS
        camera, frame, taken = Client(), jpeg(), 0
        started = time.monotonic()
        for n in range(30):  # 10 fps for 3 s
            time.sleep(max(0.0, started + n / 10 - time.monotonic()))
            taken += push(camera, site, frame).status_code == 200
        assert taken >= 27 and time.monotonic() - started < 6
    finally:
        for sock in idle:
            sock.close()


def test_a_tls_handshake_that_never_finishes_is_closed_after_the_timeout(sites):
    site = sites(tls=True)
    with socket.create_connection(("127.0.0.1", site.port), timeout=20) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x05hel")  # the start of a ClientHello, never the rest
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server
        assert time.monotonic() - started < 16
    with socket.create_connection(("127.0.0.1", site.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the HTTPS port: closed, not served
        try:
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
        assert not answer.startswith(b"HTTP/")
