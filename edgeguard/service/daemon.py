"""`edgeguard run`: wires camera → pipeline → events → alerts and keeps them going.

The main thread reads frames and runs the pipeline; the camera reader, the
watchlist reloader and the alert sender have threads of their own.

Signals: SIGTERM and SIGINT stop after the current frame (the outbox keeps
whatever is not sent yet).  SIGHUP re-reads the configuration file: if it is
valid, the parts are rebuilt with it (RELOADING=1, then READY=1 again); if
not, the error is logged and the running configuration stays.

systemd: READY=1 once the watchlist is loaded and the first frame has been
processed; WATCHDOG=1 only while frames are being processed, so a wedged
camera gets the service restarted; STATUS= with fps, people enrolled and
the last event; STOPPING=1 on the way out.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field

from ..alerts.service import AlertService
from ..capture import FrameSource, SourceError
from ..config import Config, ConfigError, load_config
from ..events.event import Event
from ..events.recorder import EventRecorder
from ..detect.detection import DetectorError
from ..faces.engine import FaceEngine
from ..live.pipeline import FrameProcessor
from ..store.capture_store import CaptureStore
from ..store.event_log import EventLog
from ..store.space import DiskSpace
from ..watchlist.build import build_watchlist, open_cache
from ..watchlist.reload import WatchlistService
from ..web.context import CameraStatus, Dashboard, SiteStatus
from ..web.live import face_labels
from ..web.server import WebServer
from ..web.site import build_dashboard
from .systemd import Systemd

log = logging.getLogger(__name__)

RETENTION_EVERY = 600.0  # seconds between retention sweeps
STATS_EVERY = 60.0  # seconds between throughput log lines
STATUS_EVERY = 10.0  # seconds between STATUS= updates to systemd
STORAGE_EVERY = 5.0  # seconds between attempts to write back what a full disk kept in memory
READ_TIMEOUT = 0.5  # how long one wait for a frame lasts before the loop looks around
DRAIN_AT_END = 10.0  # seconds a finished video file leaves the sender to deliver what is pending


@dataclass
class RunStats:
    frames: int = 0
    events: int = 0
    started: float = field(default_factory=time.monotonic)
    last_event: str = "none"

    def fps(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0


@dataclass
class Parts:
    """Everything one configuration builds; torn down and rebuilt on a reload."""

    source: FrameSource
    service: WatchlistService
    event_log: EventLog
    captures: CaptureStore
    space: DiskSpace
    alerts: AlertService
    recorder: EventRecorder
    processor: FrameProcessor
    dashboard: Dashboard | None
    web: WebServer | None


class Daemon:
    def __init__(self, config: Config, source: str | None = None, realtime: bool | None = None) -> None:
        self.config = config
        self.source_override = source
        self.realtime = realtime
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.systemd = Systemd()
        self.stats = RunStats()

    def run(self) -> int:
        """Run until the source ends (0), a stop signal (0), or a source that cannot work (1)."""
        self._install_signals()
        while True:
            code = self._run_config(self.config)
            if code != 0 or not self.reload_requested.is_set() or self.stop_requested.is_set():
                self.systemd.stopping()
                return code
            self.reload_requested.clear()

    def _run_config(self, cfg: Config) -> int:
        try:
            parts = self._build(cfg)
        except (OSError, DetectorError) as exc:
            log.error("cannot start: %s", exc)
            return 1
        for note in cfg.notes:
            log.warning("%s", note)
        try:
            parts.alerts.start()
            self._start_web(parts)
            parts.source.start()
        except (SourceError, OSError) as exc:
            log.error("cannot start: %s", exc)
            self._teardown(parts, drain=0.0)
            return 1
        log.info("running: camera %s (%s) at %s", cfg.camera.name, parts.source.description, cfg.location.name)
        try:
            self._loop(parts)
        finally:
            ended = not (self.stop_requested.is_set() or self.reload_requested.is_set())
            self._teardown(parts, drain=DRAIN_AT_END if ended else 0.0)
        log.info("stopped after %d frames (%.1f fps), %d events, %d detections, %d encodings, %d region searches",
                 self.stats.frames, self.stats.fps(), self.stats.events,
                 parts.processor.detections, parts.processor.encodings, parts.processor.region_searches)
        return 0

    def _build(self, cfg: Config) -> Parts:
        for folder in (cfg.paths.training_images, cfg.paths.captures):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:  # the daemon can still recognise and alert; captures report their failure
                log.warning("cannot create %s: %s", folder, exc)
        engine = FaceEngine(cfg.recognition, cfg.mask)
        engine.warm_up()
        cache = open_cache(cfg)
        logged: set[str] = set()  # problems logged by earlier builds: each is logged once
        service = WatchlistService(cfg, lambda: build_watchlist(cfg, engine, cache, logged))
        service.start()
        captures = CaptureStore(cfg.paths.captures, cfg.captures.retention_days, cfg.captures.max_mb)
        captures.enforce_retention()
        space = DiskSpace(cfg.paths.events_db.parent, captures)
        event_log = EventLog(cfg.paths.events_db, space.make_room)
        alerts = AlertService(cfg, space.make_room)
        space.keep_reserve()
        processor = FrameProcessor(cfg, engine, lambda: service.current)
        source = FrameSource(cfg.camera, self.source_override, self.realtime)
        listeners = [self._count_event, alerts.alerter]
        parts = Parts(source, service, event_log, captures, space, alerts,
                      EventRecorder(cfg, event_log, captures, listeners), processor, None, None)
        if cfg.web.enabled:
            parts.dashboard, parts.web = build_dashboard(
                cfg, status=lambda: self._site_status(parts), watchlist=lambda: service.current,
                event_log=event_log, outbox=alerts.outbox, engine=lambda: engine, signer=alerts.signer,
                reload_watchlist=service.request_reload)
            listeners.append(parts.dashboard.events)
        return parts

    @staticmethod
    def _teardown(parts: Parts, drain: float) -> None:
        if parts.dashboard is not None:
            parts.dashboard.live.close()
            parts.dashboard.events.close()
        if parts.web is not None:
            parts.web.stop()
        parts.source.stop()
        parts.service.stop()
        parts.alerts.stop(drain_seconds=drain)
        parts.event_log.close()

    def _loop(self, parts: Parts) -> None:
        self.stats = RunStats()
        ready = False
        next_retention = time.monotonic() + RETENTION_EVERY
        next_stats = time.monotonic() + STATS_EVERY
        next_status = next_storage = 0.0
        while not self.stop_requested.is_set():
            if self.reload_requested.is_set() and self._reload_config(parts):
                return
            if time.monotonic() >= next_storage:
                self._look_after_storage(parts)
                next_storage = time.monotonic() + STORAGE_EVERY
            frame = parts.source.read(READ_TIMEOUT)
            if frame is None:
                if parts.source.ended:
                    log.info("source ended")
                    return
                continue
            self.stats.frames += 1
            parts.recorder.record(parts.processor.process(frame))
            self.systemd.watchdog()
            now = time.monotonic()
            if parts.dashboard is not None and parts.dashboard.live.wants(self.config.camera.name, now):
                self._publish(parts, frame, now)
            if not ready:
                self.systemd.ready(self._status(parts))
                ready = True
            if now >= next_status:
                self.systemd.status(self._status(parts))
                next_status = now + STATUS_EVERY
            if now >= next_retention:
                parts.captures.enforce_retention()
                next_retention = now + RETENTION_EVERY
            if now >= next_stats:
                log.info("%s", self._status(parts))
                next_stats = now + STATS_EVERY

    def _reload_config(self, parts: Parts) -> bool:
        """Read the config file again; True if the new one is valid and the parts must be rebuilt."""
        source = self.config.source
        if source is None:
            log.info("SIGHUP: no config file to reload; reloading the watchlist only")
            self.reload_requested.clear()
            parts.service.request_reload()
            return False
        try:
            new = load_config(source)
        except ConfigError as exc:
            log.error("SIGHUP: the new configuration is not valid, keeping the running one: %s", exc)
            self.reload_requested.clear()
            return False
        log.info("SIGHUP: configuration reloaded from %s; restarting the pipeline with it", source)
        self.systemd.reloading()
        self.config = new
        return True

    @staticmethod
    def _start_web(parts: Parts) -> None:
        """Start the dashboard; if it cannot listen, the camera runs on without it (never blind for a port)."""
        if parts.web is None:
            return
        try:
            parts.web.start()
        except OSError as exc:
            log.error("%s; the camera runs without the dashboard and image links", exc)
            parts.web = None

    def _publish(self, parts: Parts, frame, now: float) -> None:
        """Hand the frame and its labelled faces to the live view (references only: no copy, no encoding)."""
        assert parts.dashboard is not None
        faces = face_labels(parts.processor.tracker.tracks.values(), parts.service.current.people)
        parts.dashboard.live.publish(self.config.camera.name, frame.image, faces, now)

    def _site_status(self, parts: Parts) -> SiteStatus:
        cfg = self.config
        camera = CameraStatus(cfg.camera.name, cfg.location.name, parts.source.state, parts.source.description,
                              self.stats.fps(), parts.processor.people_in_view)
        faults = [f for f in (parts.event_log.fault, parts.alerts.outbox.fault) if f]
        return SiteStatus([camera], faults, self.stats.last_event)

    @staticmethod
    def _look_after_storage(parts: Parts) -> None:
        """Write back what a full or failing disk kept in memory, and make the space reserve anew."""
        parts.event_log.recover()
        parts.alerts.outbox.recover()
        if not (parts.event_log.fault or parts.alerts.outbox.fault):
            parts.space.keep_reserve()

    def _status(self, parts: Parts) -> str:
        faults = "; ".join(f for f in (parts.event_log.fault, parts.alerts.outbox.fault) if f)
        storage = f"; STORAGE: {faults} (kept in memory)" if faults else ""
        return (f"{self.stats.fps():.1f} fps, {parts.service.current.enrolled} people enrolled, "
                f"{parts.processor.people_in_view} in view, last event: {self.stats.last_event}{storage}")

    def _count_event(self, event: Event) -> None:
        self.stats.events += 1
        self.stats.last_event = f"{event.type} {time.strftime('%H:%M:%S', time.localtime(event.time))}"

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

