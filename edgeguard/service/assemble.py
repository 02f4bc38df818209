"""Building what one configuration runs: the long-lived parts in one list, started in the order they were
built and stopped in reverse.

The parts, in order: the encoder pool (two or more cameras), the watchlist
service, the event log, the outputs on the event bus (`build_outputs`), the
web server (with the push cameras' feeds) and the cameras.  Captures and the
space reserve hold no thread and need no stop.  A part that fails to build
stops the ones built before it; the daemon (edgeguard.service.daemon) starts
them, reads them for its supervision and stops them.

Adding an output of events (MQTT, a hub link) means adding it to
`build_outputs`; nothing else here or in the daemon changes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import cv2

from ..alerts.service import AlertService
from ..capture import Frame, FrameSource, PushFeed, push_token
from ..config import CameraConfig, Config, ConfigError
from ..events.camera_watch import CameraWatch
from ..events.recorder import SiteEvents
from ..faces.encoder_pool import EncoderPool, EncoderPoolError
from ..faces.engine import FaceEngine
from ..live.pipeline import FrameProcessor
from ..outputs.base import Output
from ..outputs.bus import EventBus
from ..outputs.face_index import FaceIndexOutput
from ..outputs.mqtt.output import MqttOutput
from ..outputs.strangers import StrangersOutput
from ..store.event_log import EventLog
from ..store.face_captures import CaptureStore
from ..store.face_index import FaceIndex
from ..store.space import DiskSpace
from ..store.strangers import StrangerStore, open_strangers
from ..watchlist.build import Watchlist, build_watchlist, open_cache
from ..watchlist.reload import WatchlistService
from ..watchlist.sync import HubSync
from ..web.context import Dashboard, SiteStatus
from ..web.events import EventHub
from ..web.server import WebServer
from ..web.site import build_dashboard, make_search_index
from ..web.video import face_labels
from .camera_run import CameraRun
from .erasure import forget_person

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 5.0  # seconds a camera thread gets to finish its frame at a stop


@dataclass
class Part:
    """One long-lived part: how it starts (None: ready once built) and how it stops, given the seconds it may
    take to finish the work in hand (the event bus: texts still to send at the end of a video file)."""

    name: str
    stop: Callable[[float], None]
    start: Callable[[], None] | None = None


@dataclass
class Parts:
    """Everything one configuration builds, in build order; torn down and rebuilt on a reload.  The named
    fields are what the supervisor and the status read."""

    service: WatchlistService
    event_log: EventLog
    captures: CaptureStore
    space: DiskSpace
    alerts: AlertService
    bus: EventBus
    site: SiteEvents
    strangers: StrangerStore
    cameras: list[CameraRun] = field(default_factory=list)
    push: dict[str, PushFeed] = field(default_factory=dict)
    dashboard: Dashboard | None = None
    web: WebServer | None = None
    order: list[Part] = field(default_factory=list)
    camera_stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Start every part in build order (on an error the caller stops them all)."""
        for part in self.order:
            if part.start is not None:
                part.start()

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop every part in reverse build order (a part's stop is safe whether or not it started)."""
        _stop_all(self.order, drain_seconds)


def _stop_all(order: list[Part], drain_seconds: float) -> None:
    for part in reversed(order):
        try:
            part.stop(drain_seconds)
        except Exception:  # one part's failure must not leave the others running
            log.exception("stopping %s failed", part.name)


def build_outputs(
    config: Config,
    alerts: AlertService,
    live_updates: EventHub | None,
    people_in_view: Callable[[], Mapping[str, int]],
    watchlist: Callable[[], Watchlist],
    search_index: FaceIndex | None = None,
    strangers: StrangerStore | None = None,
    hub_sync: HubSync | None = None,
) -> list[Output]:
    """The outputs every recorded event goes to, in the order they start (they stop in reverse)."""
    outputs: list[Output] = [alerts]
    if live_updates is not None:
        outputs.append(live_updates)
    if search_index is not None:
        outputs.append(FaceIndexOutput(search_index))
    if strangers is not None:
        outputs.append(StrangersOutput(strangers))
    if config.mqtt.enabled:
        links = alerts.links.link_for if alerts.links is not None else None
        outputs.append(
            MqttOutput(
                config,
                links=links,
                people_in_view=people_in_view,
                watchlist=watchlist,
                new_watchlist=hub_sync.poke if hub_sync is not None else None,
            )
        )
    return outputs


def overridden(cfg: Config, source: str | None, camera: str | None, realtime: bool | None) -> Config:
    """The configuration with `run --source/--camera/--realtime` applied: --source runs only the camera
    named by --camera (else the first), with that source."""
    cameras = cfg.cameras
    if camera is not None:
        cameras = tuple(c for c in cameras if c.name == camera)
        if not cameras:
            raise ConfigError(
                f"--camera {camera!r}: no such camera (configured: {', '.join(c.name for c in cfg.cameras)})"
            )
    if source is not None:
        cameras = (dataclasses.replace(cameras[0], source=source),)
    if realtime is not None:
        cameras = tuple(dataclasses.replace(c, realtime=realtime) for c in cameras)
    return dataclasses.replace(cfg, cameras=cameras)


def assemble(cfg: Config, site_status: Callable[[Parts], SiteStatus]) -> Parts:
    """Build every part of one configuration (none started yet); `site_status` what the dashboard shows of
    them."""
    for folder in (cfg.paths.training_images, cfg.paths.captures):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:  # the daemon can still recognise and alert; captures report their failure
            log.warning("cannot create %s: %s", folder, exc)
    # With several cameras OpenCV works on the calling camera thread (0: no worker threads of its own, which
    # would make the cameras compete for the cores); for one camera its threads gain ~3% fps for a third of
    # a core more (measured on the clip).
    cv2.setNumThreads(0 if len(cfg.cameras) > 1 else -1)
    built: list[Part] = []
    try:
        return _assemble(cfg, site_status, built)
    except BaseException:
        _stop_all(built, 0.0)
        raise


def _assemble(cfg: Config, site_status: Callable[[Parts], SiteStatus], order: list[Part]) -> Parts:
    pool = _encoder_pool(cfg.recognition.encoder, len(cfg.cameras), cfg.recognition.encoder_processes)
    if pool is not None:
        order.append(Part("encoder pool", lambda _: pool.close()))
    engines = [FaceEngine(cfg.recognition, cfg.mask, pool=pool) for _ in cfg.cameras]
    for engine in engines:
        engine.warm_up()
    cache = open_cache(cfg)
    logged: set[str] = set()  # problems logged by earlier builds: each is logged once
    service = WatchlistService(cfg, lambda: build_watchlist(cfg, engines[0], cache, logged))
    order.append(Part("watchlist", lambda _: service.stop(), service.start))
    hub_sync = HubSync(cfg, service.request_reload) if cfg.watchlist.hub_url else None
    if hub_sync is not None:
        order.append(Part("hub watchlist", lambda _: hub_sync.stop(), hub_sync.start))
    captures = CaptureStore(cfg.paths.captures, cfg.captures.retention_days, cfg.captures.max_mb, cfg.sealer)
    captures.enforce_retention()
    space = DiskSpace(cfg.paths.events_db.parent, captures)
    event_log = EventLog(cfg.paths.events_db, space.make_room, cfg.sealer)
    order.append(Part("event log", lambda _: event_log.close()))
    alerts = AlertService(cfg, space.make_room)
    space.keep_reserve()
    live_updates = EventHub() if cfg.web.enabled else None
    # The dashboard's Search page: loaded from the event log at its first search, then kept current.
    search_index = make_search_index(cfg, event_log) if cfg.web.enabled else None
    strangers = open_strangers(cfg)
    strangers.expire(time.time() - captures.retention_seconds)
    strangers.forget_gone(captures.kept)
    order.append(Part("strangers", lambda _: strangers.close()))
    # `parts` is made below; the outputs ask for people in view only once they run, after it exists.
    outputs = build_outputs(
        cfg,
        alerts,
        live_updates,
        lambda: _people_in_view(parts),
        lambda: service.current,
        search_index,
        strangers,
        hub_sync,
    )
    bus = EventBus(event_log, outputs)
    order.append(Part("outputs", bus.stop, bus.start))
    site = SiteEvents(cfg, event_log, captures, bus, strangers)
    parts = Parts(service, event_log, captures, space, alerts, bus, site, strangers, order=order)
    for camera, engine in zip(cfg.cameras, engines, strict=True):
        feed = _push_feed(cfg, camera)
        if feed is not None:
            parts.push[camera.name] = feed
        source = FrameSource(camera, push=feed)
        processor = FrameProcessor(cfg, engine, lambda: service.current, camera)
        watch = CameraWatch(cfg.events.camera_down_seconds)
        parts.cameras.append(CameraRun(camera, source, processor, site.recorder(camera), watch))
    if cfg.web.enabled:
        parts.dashboard, parts.web = build_dashboard(
            cfg,
            status=lambda: site_status(parts),
            watchlist=lambda: service.current,
            event_log=event_log,
            outbox=alerts.outbox,
            engine=lambda: engines[0],
            signer=alerts.signer,
            reload_watchlist=service.request_reload,
            push=parts.push,
            erase=lambda person_id: forget_person(cfg, person_id),
            events=live_updates,
            search=search_index,
            strangers=strangers,
        )
        for run in parts.cameras:
            run.publish = _publisher(parts)
        order.append(Part("web server", lambda _: _stop_web(parts), lambda: _start_web(parts)))
    order.append(Part("cameras", lambda _: _stop_cameras(parts), lambda: _start_cameras(parts)))
    return parts


def _people_in_view(parts: Parts) -> dict[str, int]:
    return {run.camera.name: run.processor.people_in_view for run in parts.cameras}


def _push_feed(cfg: Config, camera: CameraConfig) -> PushFeed | None:
    """The hand-over from the web server for a push camera, with its token; None for other sources."""
    if not camera.pushed:
        return None
    return PushFeed(camera, cfg.push, push_token(camera.name, cfg.paths.state_dir))


def _start_web(parts: Parts) -> None:
    """Start the dashboard; if it cannot listen, the camera runs on without it (never blind for a port)."""
    assert parts.web is not None
    try:
        parts.web.start()
    except OSError as exc:
        log.error("%s; the camera runs without the dashboard and image links", exc)
        parts.web = None


def _stop_web(parts: Parts) -> None:
    """End the live views and event streams first, so that their worker threads are free, then the server."""
    if parts.dashboard is not None:
        parts.dashboard.live.close()
        parts.dashboard.events.close()
    if parts.web is not None:
        parts.web.stop()


def _start_cameras(parts: Parts) -> None:
    """Open every camera's source (SourceError if one cannot be), then start their threads."""
    for run in parts.cameras:
        run.source.start()
    for run in parts.cameras:
        log.info(
            "running: camera %s (%s) at %s", run.camera.name, run.source.description, run.camera.location
        )
    for run in parts.cameras:
        run.start(parts.camera_stop)


def _stop_cameras(parts: Parts) -> None:
    parts.camera_stop.set()
    for run in parts.cameras:
        run.join(JOIN_TIMEOUT)
    for run in parts.cameras:
        run.source.stop()


def _publisher(parts: Parts) -> Callable[[CameraRun, Frame, float], None]:
    """The live view's hand-over for the camera threads (references only: no copy, no encoding)."""

    def publish(run: CameraRun, frame: Frame, now: float) -> None:
        assert parts.dashboard is not None
        if parts.dashboard.live.wants(run.camera.name, now):
            faces = face_labels(run.processor.tracker.tracks.values(), parts.service.current.people)
            parts.dashboard.live.publish(run.camera.name, frame.image, faces, now)

    return publish


def _encoder_pool(encoder: str, cameras: int, configured: int) -> EncoderPool | None:
    """Worker processes for dlib's encoder when several cameras would otherwise take turns at it (it holds
    the GIL while it encodes): `configured` many, or (0) one per camera, at most one per core this process may
    use; none for a single camera, nor for the opencv encoder (OpenCV releases the GIL: each camera's thread
    runs its own network).  If they cannot start, the cameras share the in-process encoder (slower, never
    blind)."""
    if encoder != "dlib" or cameras < 2:
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
