"""Thumbnails at the hub: fetched from an event's signed capture link when the event is stored (bounded in
size and time), shown on the hub's event log; a link that hangs, fails or returns garbage is logged once and
skipped, and the rest flows."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from conftest import PEOPLE
from helpers import wait_for
from hub_fleet import payload
from test_hub_web import HubWeb

from edgeguard.hub.ingest import EventCheck, Ingest, Message
from edgeguard.hub.thumbnails import SIZE, ThumbnailError, Thumbnails, fetch, thumbnail

FACE = (PEOPLE / "obama.jpg").read_bytes()


class Device(BaseHTTPRequestHandler):
    """A device's capture links: /good a photo, /garbage bytes that are no image, /hang headers then
    nothing, /trickle a byte a while, /big more than the hub reads, /gone a 404."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0]
        if path == "/gone":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        try:
            if path == "/good":
                self.wfile.write(FACE)
            elif path == "/garbage":
                self.wfile.write(b"\xff\xd8 not really a jpeg" * 50)
            elif path == "/hang":
                time.sleep(5)
            elif path == "/trickle":
                for _ in range(50):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif path == "/big":
                self.wfile.write(b"\0" * (5 * 1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def device():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Device)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_capture_becomes_a_small_jpeg_and_bad_links_say_why(device):
    small = cv2.imdecode(
        np.frombuffer(thumbnail(fetch(f"{device}/good?t=signed")), np.uint8), cv2.IMREAD_COLOR
    )
    assert max(small.shape[:2]) == SIZE
    for path, why in (
        ("/garbage", "not an image"),
        ("/gone", "HTTP 404"),
        ("/big", "more than"),
        ("/hang", "cannot fetch"),
        ("/trickle", "not done within"),
    ):
        started = time.monotonic()
        with pytest.raises(ThumbnailError, match=why):
            thumbnail(fetch(f"{device}{path}", seconds=1.0))
        assert time.monotonic() - started < 3.0, path
    with pytest.raises(ThumbnailError, match="http"):
        fetch("file:///etc/passwd")


def test_the_hub_stores_thumbnails_of_new_events_and_shows_them(tmp_path, device, caplog):
    hub = HubWeb(tmp_path / "hub")
    thumbnails = Thumbnails(hub.store, workers=2, seconds=1.0)
    ingest = Ingest(hub.store, EventCheck(64 * 1024), lambda mid, qos: None, stored=thumbnails.stored)
    links = ["/good", "/hang", "/garbage", "/garbage", "/good"]
    events = [
        {**payload("door-7", seq), "capture_url": f"{device}{link}?t={seq}"}
        for seq, link in enumerate(links, 1)
    ]
    try:
        thumbnails.start()
        with caplog.at_level(logging.WARNING, "edgeguard.hub.thumbnails"):
            started = time.monotonic()
            ingest.handle(
                [Message("edgeguard/door-7/events", json.dumps(e).encode(), 0, 1, 1.0) for e in events]
            )
            assert time.monotonic() - started < 1.0  # storing does not wait for the links
            assert len(hub.store.events(device="door-7")) == len(events)
            wait_for(
                lambda: hub.store.thumbnail(events[4]["event_id"]) is not None, 10, "the second thumbnail"
            )
            wait_for(lambda: "cannot fetch" in caplog.text, 10, "the hanging link given up")
        assert hub.store.thumbnail(events[0]["event_id"]) is not None
        assert all(hub.store.thumbnail(e["event_id"]) is None for e in events[1:4])
        lines = [r.getMessage() for r in caplog.records]
        assert sum("not an image" in line for line in lines) == 1, (
            lines
        )  # once a minute per device and reason
        assert not any("?t=" in line for line in lines)  # the signed links stay out of the log

        http = hub.login("victor")
        page = http.get(f"{hub.url}/events?device=door-7").text
        assert page.count('class="thumbnail"') == 2
        image = http.get(f"{hub.url}/thumbnail/{events[0]['event_id']}")
        assert image.headers["Content-Type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
        assert http.get(f"{hub.url}/thumbnail/{events[1]['event_id']}").status_code == 404
        assert "no-store" in image.headers["Cache-Control"]
    finally:
        thumbnails.stop()
        hub.stop()
