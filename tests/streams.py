"""Test helper: an MJPEG-over-HTTP camera on 127.0.0.1, as many IP cameras serve it.

`MjpegServer` sends JPEG frames as multipart/x-mixed-replace at a steady rate
to every client.  `pause()` keeps the connections open but sends nothing (a
stalled camera); `resume()` sends again.  It listens on an ephemeral port on
the loopback address only (an ephemeral port unless given one, so that a
test can bring a "rebooted camera" back on the same port) and stops its
threads in `stop()`.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = b"edgeguardframe"


def jpeg_frames(video: Path, count: int, size: tuple[int, int] = (320, 180)) -> list[bytes]:
    """The first `count` frames of a video, resized and encoded as JPEG."""
    cap = cv2.VideoCapture(str(video))
    frames: list[bytes] = []
    try:
        while len(frames) < count:
            ok, image = cap.read()
            if not ok:
                break
            frames.append(cv2.imencode(".jpg", cv2.resize(image, size))[1].tobytes())
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"no frames in {video}")
    return frames


class MjpegServer:
    """An MJPEG stream at http://127.0.0.1:PORT/stream.mjpg; use as a context manager."""

    def __init__(self, frames: list[bytes], fps: float = 30.0, port: int = 0) -> None:
        self.frames = frames
        self.interval = 1.0 / fps
        self.requests = 0  # GET requests served: one per (re)connection
        self._sending = threading.Event()
        self._sending.set()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mjpeg-server", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._closing.is_set():
            return
        self._closing.set()
        self._sending.set()  # wake paused handlers so that they see _closing
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def pause(self) -> None:
        self._sending.clear()

    def resume(self) -> None:
        self._sending.set()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                try:
                    server._send_frames(self.wfile)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up: expected when it reconnects

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def _send_frames(self, out) -> None:
        index = 0
        while not self._closing.is_set():
            if not self._sending.is_set():
                self._sending.wait(0.1)
                continue
            jpeg = self.frames[index % len(self.frames)]
            index += 1
            part = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            out.write(b"--" + BOUNDARY + b"\r\n" + part + jpeg + b"\r\n")
            out.flush()
            self._closing.wait(self.interval)
