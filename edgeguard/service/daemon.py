"""`edgeguard run`: the supervisor that keeps the parts of one configuration going.

The parts are built by edgeguard.service.assemble (one list, started in
order, stopped in reverse); the status line is edgeguard.service.status's.
Each camera runs on a thread of its own (edgeguard.service.camera_run): source,
pipeline, events.  The main thread is the supervisor: signals, config
reloads, storage, retention, camera_down/camera_up events, systemd.  The
camera readers, the watchlist reloader, the outputs of the event bus, the
alert sender, the encoder workers and the web server have threads (or
processes) of their own.

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

import logging
import signal
import sqlite3
import threading
import time

from ..capture import SourceError
from ..common.ratelimit import EveryMinute
from ..config import Config, ConfigError, load_config
from ..detect import DetectorError
from ..faces.opencv_encoder import EncoderModelError
from ..store.audit import audit, command_user
from .assemble import Parts, assemble, overridden
from .retention import prune_records
from .status import site_status, status_line
from .systemd import Systemd

log = logging.getLogger(__name__)

RETENTION_EVERY = 600.0  # seconds between retention sweeps
STATS_EVERY = 60.0  # seconds between throughput log lines
STATUS_EVERY = 10.0  # seconds between STATUS= updates to systemd
STORAGE_EVERY = 5.0  # seconds between attempts to write back what a full disk kept in memory
SUPERVISE_EVERY = 0.2  # seconds between the supervisor's rounds
WEDGED_SECONDS = 60.0  # a pipeline busy with one frame for longer is stuck: no more watchdog pings
DRAIN_AT_END = 10.0  # seconds a finished video file leaves the outputs to deliver what is pending


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
        self._warned = EveryMinute()

    def run(self) -> int:
        """Run until every source ends (0), a stop signal (0), or a source or pipeline that cannot work
        (1)."""
        self._install_signals()
        while True:
            code = self._run_config(self.config)
            if code != 0 or not self.reload_requested.is_set() or self.stop_requested.is_set():
                self.systemd.stopping()
                return code
            self.reload_requested.clear()

    def _run_config(self, cfg: Config) -> int:
        try:
            cfg = overridden(cfg, self.source_override, self.camera_override, self.realtime)
            parts = assemble(cfg, site_status)
        except (OSError, DetectorError, EncoderModelError, ConfigError) as exc:
            log.error("cannot start: %s", exc)
            return 1
        for note in cfg.notes:
            log.warning("%s", note)
        try:
            parts.start()
        except (SourceError, OSError, DetectorError, ConfigError) as exc:
            log.error("cannot start: %s", exc)
            parts.stop(0.0)
            return 1
        code = 0
        try:
            code = self._loop(parts)
        finally:
            ended = not (self.stop_requested.is_set() or self.reload_requested.is_set())
            parts.stop(DRAIN_AT_END if ended and code == 0 else 0.0)
        self._log_totals(parts)
        return code

    @staticmethod
    def _log_totals(parts: Parts) -> None:
        for run in parts.cameras:
            log.info(
                "camera %s: stopped after %d frames (%.1f fps), %d detections, %d encodings, "
                "%d region searches",
                run.camera.name,
                run.frames,
                run.fps(),
                run.processor.detections,
                run.processor.encodings,
                run.processor.region_searches,
            )
        log.info(
            "stopped after %d frames (%.1f fps), %d events, %d detections, %d encodings, %d region searches",
            sum(run.frames for run in parts.cameras),
            sum(run.fps() for run in parts.cameras),
            parts.site.recorded,
            *(
                sum(getattr(run.processor, key) for run in parts.cameras)
                for key in ("detections", "encodings", "region_searches")
            ),
        )

    def _loop(self, parts: Parts) -> int:
        """The supervisor, until a stop, a valid reload, every source ended (0) or a camera failed (1)."""
        ready = False
        now = time.monotonic()
        next_retention, next_stats = now + RETENTION_EVERY, now + STATS_EVERY
        prune_records(self.config, parts.event_log, parts.alerts.outbox)
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
            self._take_up_logged_elsewhere(parts)
            frames = sum(run.frames for run in parts.cameras)
            if self._progress(parts, now, frames > frames_seen):
                self.systemd.watchdog()
                if not ready and (any(run.frames for run in parts.cameras) or self._all_push(parts)):
                    self.systemd.ready(status_line(parts))
                    ready = True
            frames_seen = frames
            if now >= next_status:
                self.systemd.status(status_line(parts))
                next_status = now + STATUS_EVERY
            if now >= next_retention:
                parts.captures.enforce_retention()
                parts.strangers.expire(time.time() - parts.captures.retention_seconds)
                parts.strangers.forget_gone(parts.captures.kept)
                prune_records(self.config, parts.event_log, parts.alerts.outbox)
                next_retention = now + RETENTION_EVERY
            if now >= next_stats:
                log.info("%s", status_line(parts))
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

    def _take_up_logged_elsewhere(self, parts: Parts) -> None:
        """Events other processes logged (`edgeguard forget`'s erased event) go to the outputs at once."""
        try:
            parts.site.take_up_logged_elsewhere()
        except sqlite3.Error as exc:
            if self._warned.due("logged elsewhere"):
                log.error("cannot read the event log for events logged by other processes: %s", exc)

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
        try:
            audit(new.paths.audit_db, "config reload", command_user(), "signal", str(source))
        except sqlite3.Error as exc:
            log.error("audit log: cannot record the config reload: %s", exc)
        self.systemd.reloading()
        self.config = new
        return True

    @staticmethod
    def _look_after_storage(parts: Parts) -> None:
        """Write back what a full or failing disk kept in memory, and make the space reserve anew."""
        parts.event_log.recover()
        parts.alerts.outbox.recover()
        if not (parts.event_log.fault or parts.alerts.outbox.fault):
            parts.space.keep_reserve()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_requested.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
