"""`edgeguard run`: wires cameras → pipelines → events → alerts and keeps them going.

Each camera runs on a thread of its own (edgeguard.service.camera_run): source,
pipeline, events.  The main thread is the supervisor: signals, config
reloads, storage, retention, camera_down/camera_up events, systemd.  The
camera readers, the watchlist reloader, the alert sender, the encoder workers
and the web server have threads (or processes) of their own.

Signals: SIGTERM and SIGINT stop after the current frames (the outbox keeps
whatever is not sent yet).  SIGHUP re-reads the configuration file: if it is
valid, the parts are rebuilt with it (RELOADING=1, then READY=1 again); if
not, the error is logged and the running configuration stays.

systemd: READY=1 once the watchlist is loaded and a first frame has been
processed (or, when every camera is a push camera, once the server listens);
WATCHDOG=1 while frames are being processed by some camera (push cameras
waiting for their clients count as working) and no camera's pipeline is stuck
on one frame, so a wedged capture or pipeline gets the service restarted
while one camera's outage does not stop the others; STATUS= with each
camera's state and fps, people enrolled and the last event; STOPPING=1 on the
way out.  The run ends when every camera's source has ended (video files).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import cv2

from ..alerts.service import AlertService
from ..capture import Frame, FrameSource, PushFeed, SourceError, push_token
from ..config import CameraConfig, Config, ConfigError, load_config
from ..detect import DetectorError
from ..events.camera_watch import CameraWatch
from ..events.event import Event
from ..events.recorder import SiteEvents
from ..faces.encoder_pool import EncoderPool, EncoderPoolError
from ..faces.engine import FaceEngine
from ..live.pipeline import FrameProcessor
from ..store.event_log import EventLog
from ..store.face_captures import CaptureStore
from ..store.space import DiskSpace
from ..watchlist.build import build_watchlist, open_cache
from ..watchlist.reload import WatchlistService
from ..web.context import CameraStatus, Dashboard, SiteStatus
from ..web.server import WebServer
from ..web.site import build_dashboard
from ..web.video import face_labels
from .camera_run import CameraRun
from .systemd import Systemd

log = logging.getLogger(__name__)

RETENTION_EVERY = 600.0  # seconds between retention sweeps
STATS_EVERY = 60.0  # seconds between throughput log lines
STATUS_EVERY = 10.0  # seconds between STATUS= updates to systemd
STORAGE_EVERY = 5.0  # seconds between attempts to write back what a full disk kept in memory
SUPERVISE_EVERY = 0.2  # seconds between the supervisor's rounds
WEDGED_SECONDS = 60.0  # a pipeline busy with one frame for longer is stuck: no more watchdog pings
JOIN_TIMEOUT = 5.0  # seconds a camera thread gets to finish its frame at a stop
DRAIN_AT_END = 10.0  # seconds a finished video file leaves the sender to deliver what is pending


@dataclass
class RunStats:
    events: int = 0
    last_event: str = "none"


@dataclass
class Parts:
    """Everything one configuration builds; torn down and rebuilt on a reload."""

    service: WatchlistService
    event_log: EventLog
    captures: CaptureStore
    space: DiskSpace
    alerts: AlertService
    site: SiteEvents
    pool: EncoderPool | None
    cameras: list[CameraRun] = field(default_factory=list)
    push: dict[str, PushFeed] = field(default_factory=dict)
    dashboard: Dashboard | None = None
    web: WebServer | None = None


class Daemon:
    def __init__(
        self,
        config: Config,
        source: str | None = None,
        realtime: bool | None = None,
        camera: str | None = None,
    ) -> None:
        self.config = config
        self.source_override = source
        self.camera_override = camera
        self.realtime = realtime
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self.systemd = Systemd()
        self.stats = RunStats()

    def run(self) -> int:
        """Run until every source ends (0), a stop signal (0), or a source or pipeline that cannot work (1)."""
        self._install_signals()
        while True:
            code = self._run_config(self.config)
            if code != 0 or not self.reload_requested.is_set() or self.stop_requested.is_set():
                self.systemd.stopping()
                return code
            self.reload_requested.clear()

    def _run_config(self, cfg: Config) -> int:
        try:
            cfg = self._overridden(cfg)
            parts = self._build(cfg)
        except (OSError, DetectorError, ConfigError) as exc:
            log.error("cannot start: %s", exc)
            return 1
        for note in cfg.notes:
            log.warning("%s", note)
        try:
            parts.alerts.start()
            self._start_web(parts)
            for run in parts.cameras:
                run.source.start()
        except (SourceError, OSError) as exc:
            log.error("cannot start: %s", exc)
            self._teardown(parts, drain=0.0)
            return 1
        for run in parts.cameras:
            log.info(
                "running: camera %s (%s) at %s", run.camera.name, run.source.description, run.camera.location
            )
        camera_stop = threading.Event()
        code = 0
        try:
            for run in parts.cameras:
                run.start(camera_stop)
            code = self._loop(parts)
        finally:
            camera_stop.set()
            for run in parts.cameras:
                run.join(JOIN_TIMEOUT)
            ended = not (self.stop_requested.is_set() or self.reload_requested.is_set())
            self._teardown(parts, drain=DRAIN_AT_END if ended and code == 0 else 0.0)
        for run in parts.cameras:
            log.info(
                "camera %s: stopped after %d frames (%.1f fps), %d detections, %d encodings, %d region searches",
                run.camera.name,
                run.frames,
                run.fps(),
                run.processor.detections,
                run.processor.encodings,
                run.processor.region_searches,
            )
        total = sum(run.frames for run in parts.cameras)
        log.info(
            "stopped after %d frames (%.1f fps), %d events, %d detections, %d encodings, %d region searches",
            total,
            sum(run.fps() for run in parts.cameras),
            self.stats.events,
            *(
                sum(getattr(run.processor, key) for run in parts.cameras)
                for key in ("detections", "encodings", "region_searches")
            ),
        )
        return code

    def _overridden(self, cfg: Config) -> Config:
        """The configuration with `run --source/--camera/--realtime` applied: --source runs only the camera
        named by --camera (else the first), with that source."""
        cameras = cfg.cameras
        if self.camera_override is not None:
            cameras = tuple(c for c in cameras if c.name == self.camera_override)
            if not cameras:
                raise ConfigError(
                    f"--camera {self.camera_override!r}: no such camera "
                    f"(configured: {', '.join(c.name for c in cfg.cameras)})"
                )
        if self.source_override is not None:
            cameras = (dataclasses.replace(cameras[0], source=self.source_override),)
        if self.realtime is not None:
            cameras = tuple(dataclasses.replace(c, realtime=self.realtime) for c in cameras)
        return dataclasses.replace(cfg, cameras=cameras)

    def _build(self, cfg: Config) -> Parts:
        for folder in (cfg.paths.training_images, cfg.paths.captures):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:  # the daemon can still recognise and alert; captures report their failure
                log.warning("cannot create %s: %s", folder, exc)
        # With several cameras OpenCV works on the calling camera thread (0: no worker threads of its own, which
        # would make the cameras compete for the cores); for one camera its threads gain ~3% fps for a third of
        # a core more (measured on the clip).
        cv2.setNumThreads(0 if len(cfg.cameras) > 1 else -1)
        pool = _encoder_pool(len(cfg.cameras), cfg.recognition.encoder_processes)
        try:
            return self._build_with(cfg, pool)
        except BaseException:
            if pool is not None:
                pool.close()
            raise

    def _build_with(self, cfg: Config, pool: EncoderPool | None) -> Parts:
        engines = [FaceEngine(cfg.recognition, cfg.mask, pool=pool) for _ in cfg.cameras]
        for engine in engines:
            engine.warm_up()
        cache = open_cache(cfg)
        logged: set[str] = set()  # problems logged by earlier builds: each is logged once
        service = WatchlistService(cfg, lambda: build_watchlist(cfg, engines[0], cache, logged))
        service.start()
        captures = CaptureStore(cfg.paths.captures, cfg.captures.retention_days, cfg.captures.max_mb)
        captures.enforce_retention()
        space = DiskSpace(cfg.paths.events_db.parent, captures)
        event_log = EventLog(cfg.paths.events_db, space.make_room)
        alerts = AlertService(cfg, space.make_room)
        space.keep_reserve()
        site = SiteEvents(cfg, event_log, captures, [self._count_event, alerts.alerter])
        parts = Parts(service, event_log, captures, space, alerts, site, pool)
        for camera, engine in zip(cfg.cameras, engines):
            feed = self._push_feed(cfg, camera)
            if feed is not None:
                parts.push[camera.name] = feed
            source = FrameSource(camera, push=feed)
            processor = FrameProcessor(cfg, engine, lambda: service.current, camera)
            watch = CameraWatch(cfg.events.camera_down_seconds)
            parts.cameras.append(CameraRun(camera, source, processor, site.recorder(camera), watch))
        if cfg.web.enabled:
            parts.dashboard, parts.web = build_dashboard(
                cfg,
                status=lambda: self._site_status(parts),
                watchlist=lambda: service.current,
                event_log=event_log,
                outbox=alerts.outbox,
                engine=lambda: engines[0],
                signer=alerts.signer,
                reload_watchlist=service.request_reload,
                push=parts.push,
            )
            site.listeners.append(parts.dashboard.events)
            for run in parts.cameras:
                run.publish = self._publisher(parts)
        return parts

    @staticmethod
    def _push_feed(cfg: Config, camera: CameraConfig) -> PushFeed | None:
        """The hand-over from the web server for a push camera, with its token; None for other sources."""
        if not camera.pushed:
            return None
        return PushFeed(camera, cfg.push, push_token(camera.name, cfg.paths.state_dir))

    @staticmethod
    def _teardown(parts: Parts, drain: float) -> None:
        if parts.dashboard is not None:
            parts.dashboard.live.close()
            parts.dashboard.events.close()
        if parts.web is not None:
            parts.web.stop()
        for run in parts.cameras:
            run.source.stop()
        parts.service.stop()
        parts.alerts.stop(drain_seconds=drain)
        parts.event_log.close()
        if parts.pool is not None:
            parts.pool.close()

    def _loop(self, parts: Parts) -> int:
        """The supervisor, until a stop, a valid reload, every source ended (0) or a camera failed (1)."""
        self.stats = RunStats()
        ready = False
        now = time.monotonic()
        next_retention, next_stats = now + RETENTION_EVERY, now + STATS_EVERY
        next_status = next_storage = 0.0
        frames_seen = 0
        while not self.stop_requested.wait(SUPERVISE_EVERY):
            if self.reload_requested.is_set() and self._reload_config(parts):
                return 0
            failed = [run for run in parts.cameras if run.error is not None]
            if failed:
                log.error(
                    "camera %s failed (%s); stopping so that systemd restarts the service",
                    failed[0].camera.name,
                    failed[0].error,
                )
                return 1
            if all(run.finished for run in parts.cameras):
                log.info("every source ended")
                return 0
            now = time.monotonic()
            if now >= next_storage:
                self._look_after_storage(parts)
                next_storage = now + STORAGE_EVERY
            self._watch_cameras(parts)
            frames = sum(run.frames for run in parts.cameras)
            if self._progress(parts, now, frames > frames_seen):
                self.systemd.watchdog()
                if not ready and (any(run.frames for run in parts.cameras) or self._all_push(parts)):
                    self.systemd.ready(self._status(parts))
                    ready = True
            frames_seen = frames
            if now >= next_status:
                self.systemd.status(self._status(parts))
                next_status = now + STATUS_EVERY
            if now >= next_retention:
                parts.captures.enforce_retention()
                next_retention = now + RETENTION_EVERY
            if now >= next_stats:
                log.info("%s", self._status(parts))
                next_stats = now + STATS_EVERY
        return 0

    def _progress(self, parts: Parts, now: float, new_frames: bool) -> bool:
        """Whether the daemon made progress since the last round (see the module docstring)."""
        if any(run.busy_since is not None and now - run.busy_since > WEDGED_SECONDS for run in parts.cameras):
            return False
        return new_frames or self._all_push(parts)

    @staticmethod
    def _all_push(parts: Parts) -> bool:
        return len(parts.push) == len(parts.cameras)

    @staticmethod
    def _watch_cameras(parts: Parts) -> None:
        """camera_down / camera_up events for the cameras whose frames stopped or came back."""
        for run in parts.cameras:
            change = run.watch.due(ended=run.source.ended)
            if change is None:
                continue
            extra = {"seconds": round(change.seconds, 1), "state": run.source.state}
            parts.site.camera_event(run.camera, change.kind, time.time(), extra)

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

    @staticmethod
    def _publisher(parts: Parts):
        """The live view's hand-over for the camera threads (references only: no copy, no encoding)."""

        def publish(run: CameraRun, frame: Frame, now: float) -> None:
            assert parts.dashboard is not None
            if parts.dashboard.live.wants(run.camera.name, now):
                faces = face_labels(run.processor.tracker.tracks.values(), parts.service.current.people)
                parts.dashboard.live.publish(run.camera.name, frame.image, faces, now)

        return publish

    def _site_status(self, parts: Parts) -> SiteStatus:
        cameras = [
            CameraStatus(
                run.camera.name,
                run.camera.location,
                run.source.state,
                run.source.description,
                run.current_fps(),
                run.processor.people_in_view,
            )
            for run in parts.cameras
        ]
        faults = [f for f in (parts.event_log.fault, parts.alerts.outbox.fault) if f]
        return SiteStatus(cameras, faults, self.stats.last_event)

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
        cameras = ", ".join(
            f"{run.camera.name} {run.source.state} {run.current_fps():.1f} fps" for run in parts.cameras
        )
        people = sum(run.processor.people_in_view for run in parts.cameras)
        return (
            f"{sum(run.current_fps() for run in parts.cameras):.1f} fps ({cameras}), {parts.service.current.enrolled} "
            f"people enrolled, {people} in view, last event: {self.stats.last_event}{storage}"
        )

    def _count_event(self, event: Event) -> None:
        """A listener: the count and the last event, for the status line."""
        self.stats.events += 1
        self.stats.last_event = f"{event.type} {time.strftime('%H:%M:%S', time.localtime(event.time))}"

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())


def _encoder_pool(cameras: int, configured: int) -> EncoderPool | None:
    """Worker processes for dlib's encoder when several cameras would otherwise take turns at it (it holds the
    GIL while it encodes): `configured` many, or (0) one per camera, at most one per core this process may use;
    none for a single camera.  If they cannot start, the cameras share the in-process encoder (slower, never
    blind)."""
    if cameras < 2:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    processes = configured or min(cameras, cores)
    if processes < 2 and not configured:
        return None
    try:
        return EncoderPool(processes)
    except EncoderPoolError as exc:
        log.error("%s; encoding in this process instead (the cameras take turns at it)", exc)
        return None
