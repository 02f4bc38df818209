"""`edgeguard run`: wires camera → pipeline → events and keeps them going.

The main thread reads frames and runs the pipeline; the camera reader and the
watchlist reloader have threads of their own.  SIGTERM and SIGINT stop the
loop after the current frame, SIGHUP reloads the watchlist.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass

from .capture import FrameSource, SourceError
from .captures import CaptureStore
from .config import Config
from .events import Event, EventLog
from .notify import Notifier
from .pipeline import FrameProcessor
from .recognize import FaceEngine
from .record import EventRecorder
from .reload import WatchlistService
from .watchlist import build_watchlist, open_cache

log = logging.getLogger(__name__)

RETENTION_EVERY = 600.0  # seconds between retention sweeps
STATS_EVERY = 60.0  # seconds between throughput log lines
READ_TIMEOUT = 1.0
DRAIN_AT_END = 10.0  # seconds a finished video file leaves the sender to deliver what is pending  # how long one wait for a frame lasts before the loop looks around


@dataclass
class RunStats:
    frames: int = 0
    events: int = 0
    started: float = 0.0
    last_event: str = ""

    def fps(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0


class Daemon:
    def __init__(self, config: Config, source: str | None = None, realtime: bool | None = None) -> None:
        self.config = config
        self.source = FrameSource(config.camera, source, realtime)
        self.stop_requested = threading.Event()
        self.stats = RunStats()

    def run(self) -> int:
        """Run until the source ends (0), a stop signal (0), or a source that cannot work (1)."""
        cfg = self.config
        for folder in (cfg.paths.training_images, cfg.paths.captures):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:  # the daemon can still recognise and alert; captures report their failure
                log.warning("cannot create %s: %s", folder, exc)
        engine = FaceEngine(cfg.recognition)
        engine.warm_up()
        cache = open_cache(cfg)
        service = WatchlistService(cfg, lambda: build_watchlist(cfg, engine, cache))
        service.start()
        event_log = EventLog(cfg.paths.events_db)
        captures = CaptureStore(cfg.paths.captures, cfg.captures.retention_days, cfg.captures.max_mb)
        captures.enforce_retention()
        notifier = Notifier(cfg)
        recorder = EventRecorder(cfg, event_log, captures, [self._count_event, notifier.alerter])
        processor = FrameProcessor(cfg, engine, lambda: service.current)
        self._install_signals(service)
        try:
            notifier.start()
            self.source.start()
        except (SourceError, OSError) as exc:
            log.error("cannot start: %s", exc)
            notifier.stop()
            service.stop()
            event_log.close()
            return 1
        log.info("running: camera %s (%s) at %s", cfg.camera.name, self.source.description, cfg.location.name)
        try:
            self._loop(processor, recorder, captures)
        finally:
            self.source.stop()
            service.stop()
            notifier.stop(drain_seconds=0.0 if self.stop_requested.is_set() else DRAIN_AT_END)
            event_log.close()
        log.info("stopped after %d frames (%.1f fps), %d events, %d detections, %d encodings",
                 self.stats.frames, self.stats.fps(), self.stats.events, processor.detections, processor.encodings)
        return 0

    def _loop(self, processor: FrameProcessor, recorder: EventRecorder, captures: CaptureStore) -> None:
        self.stats.started = time.monotonic()
        next_retention = time.monotonic() + RETENTION_EVERY
        next_stats = time.monotonic() + STATS_EVERY
        while not self.stop_requested.is_set():
            frame = self.source.read(READ_TIMEOUT)
            if frame is None:
                if self.source.ended:
                    log.info("source ended")
                    return
                continue
            self.stats.frames += 1
            for observation in processor.process(frame):
                recorder.handle(observation)
            now = time.monotonic()
            if now >= next_retention:
                captures.enforce_retention()
                next_retention = now + RETENTION_EVERY
            if now >= next_stats:
                log.info("%.1f fps, %d people in view, %d events so far",
                         self.stats.fps(), processor.people_in_view, self.stats.events)
                next_stats = now + STATS_EVERY

    def _count_event(self, event: Event) -> None:
        self.stats.events += 1
        self.stats.last_event = event.type

    def _install_signals(self, service: WatchlistService) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGHUP, lambda *_: service.request_reload())
