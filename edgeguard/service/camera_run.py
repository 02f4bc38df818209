"""One camera's run: its source, pipeline and events stage on a thread of its own.

Every camera has its own reader (edgeguard.capture), pipeline (tracks, votes,
crowd timing) and events recorder; they share the watchlist, the event log,
the outbox and the web server.  A camera's thread takes the newest frame its
source holds, so when the CPU cannot keep up each camera drops frames on its
own and no camera waits for another (the slot of a video file played as fast
as possible is the exception: it waits for its pipeline, so that every frame
is processed).  dlib's HOG detector and OpenCV (also the default face
encoder, edgeguard.faces.opencv_encoder) release the GIL while they work;
dlib's encoder does not, so with it (encoder = "dlib") and several cameras
encodings go to worker processes (edgeguard.faces.encoder_pool).

The daemon's supervisor reads a run's counters (`frames`, `busy_since`) from
its own thread: single assignments, no lock needed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..capture import Frame, FrameSource
from ..config import CameraConfig
from ..events.camera_watch import CameraWatch
from ..events.recorder import EventRecorder
from ..live.pipeline import FrameProcessor

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.5  # how long one wait for a frame lasts before the loop looks at its stop flag
RATE_WINDOW = 5.0  # seconds over which the current fps is counted (STATUS=, the dashboard)


@dataclass
class CameraRun:
    camera: CameraConfig
    source: FrameSource
    processor: FrameProcessor
    recorder: EventRecorder
    watch: CameraWatch
    publish: Callable[[CameraRun, Frame, float], None] | None = None  # the live view's hand-over
    frames: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # monotonic time the thread ended
    busy_since: float | None = None  # monotonic time the frame in hand was taken, None while waiting
    error: BaseException | None = None  # what ended the thread, if it failed
    finished: bool = False  # the source ended (a video file) or the thread failed
    _thread: threading.Thread | None = None
    _window: tuple[float, int] = (0.0, 0)  # start time and frame count of the current rate window
    _recent: float = 0.0  # fps over the last whole window

    def fps(self) -> float:
        """Frames processed per second since the start (until the thread ended)."""
        elapsed = (self.ended or time.monotonic()) - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0

    def current_fps(self) -> float:
        """Frames processed per second lately: over the last RATE_WINDOW seconds, 0 when frames stopped."""
        return self._recent if time.monotonic() - self._window[0] < 2 * RATE_WINDOW else 0.0

    def start(self, stop: threading.Event) -> None:
        self.started = time.monotonic()
        self._window = (self.started, 0)
        self._thread = threading.Thread(
            target=self._run, args=(stop,), name=f"camera-{self.camera.name}", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                frame = self.source.read(READ_TIMEOUT)
                if frame is None:
                    if self.source.ended:
                        log.info("camera %s: source ended", self.camera.name)
                        break
                    continue
                self._process(frame)
        except Exception as exc:  # the supervisor stops the daemon: systemd restarts it
            log.exception("camera %s: the pipeline failed", self.camera.name)
            self.error = exc
        finally:
            self.busy_since = None
            self.ended = time.monotonic()
            self.finished = True

    def _process(self, frame: Frame) -> None:
        self.busy_since = time.monotonic()
        self.watch.frame()
        self.recorder.record(self.processor.process(frame))
        self.frames += 1
        self._count_rate()
        if self.publish is not None:
            self.publish(self, frame, time.monotonic())
        self.busy_since = None

    def _count_rate(self) -> None:
        began, frames = self._window
        now = time.monotonic()
        if now - began >= RATE_WINDOW:
            self._recent = (self.frames - frames) / (now - began)
            self._window = (now, self.frames)
