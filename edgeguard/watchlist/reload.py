"""Keeping the watchlist current while the daemon runs.

A watchdog observer (inotify, or polling for network and USB filesystems)
reports changes under TrainingImage/, to Details.csv and to the negatives from
feedback (TrainingImageLabel/negatives/, written by `edgeguard feedback` in
another process or by the dashboard; not the rest of TrainingImageLabel/,
which the build writes itself).  Changes are
debounced: a reload starts once nothing has changed for `debounce` seconds,
and only after the files are written: with inotify, until every file opened
for writing has been closed again (a slow copy from a network share pauses
longer than the debounce between chunks); with polling, until no file has
changed size or time stamp for SETTLE_SECONDS.  So copying 200 photos in, or
one photo slowly, gives one reload of complete files.  The reload runs on a background thread; until
it finishes, matching keeps using the previous watchlist, which is then
replaced in one assignment.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from ..config import Config
from .build import Watchlist
from .negatives import folder_of, make_folder

log = logging.getLogger(__name__)

# How long files must keep the same size and time stamp to count as written,
# and how long to wait for that before reloading anyway.
SETTLE_SECONDS = 0.5
SETTLE_LIMIT = 120.0
# A file written to and not closed counts as being written for this long after its last write: long
# enough for the pauses of a slow copy from a network share, short enough that a file whose close
# inotify never reported (it was written before the folder was watched) holds a reload only briefly.
WRITE_QUIET = 4.0
LATE_EVENT = 5.0  # seconds after a close in which a "created" for the same file is a late report


class WatchlistService:
    """Owns the current watchlist and rebuilds it when the site folders change."""

    def __init__(
        self,
        config: Config,
        build: Callable[[], Watchlist],
        on_reload: Callable[[Watchlist], None] | None = None,
    ) -> None:
        self._config = config
        self._build = build
        self._on_reload = on_reload
        self._current: Watchlist | None = None
        self._wake = threading.Condition()
        self._last_change = 0.0
        self._pending = False
        self._stopping = False
        self._observer = None
        self._thread: threading.Thread | None = None
        self._writing: dict[
            str, float
        ] = {}  # file -> when last written to, until it is closed (inotify only)
        self._closed: dict[str, float] = {}  # file -> when it was closed after writing

    @property
    def current(self) -> Watchlist:
        assert self._current is not None, "start() first"
        return self._current

    def start(self) -> Watchlist:
        """Build the first watchlist (in the caller's thread), then watch for changes."""
        self._current = self._build()
        if self._config.watchlist.watch:
            self._start_observer()
        self._thread = threading.Thread(target=self._run, name="watchlist-reload", daemon=True)
        self._thread.start()
        return self._current

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def request_reload(self) -> None:
        """Note a change; the reload follows after the debounce interval."""
        with self._wake:
            self._last_change = time.monotonic()
            self._pending = True
            self._wake.notify_all()

    def _start_observer(self) -> None:
        cfg = self._config
        training = cfg.paths.training_images
        details = cfg.paths.details_csv
        negatives = folder_of(cfg)
        for folder in (training, details.parent):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            make_folder(negatives)  # watched from the start, so that the first correction is seen
        except OSError as exc:
            log.warning(
                "cannot create %s (%s): corrections made from now on are seen at the next reload",
                negatives,
                exc,
            )
        if cfg.watchlist.polling:
            observer = PollingObserver(timeout=cfg.watchlist.poll_interval)
        else:
            observer = Observer()
        writes = self._note_write if isinstance(observer, InotifyObserver) else None  # polling sees no closes
        observer.schedule(
            _ChangeHandler(self.request_reload, lambda p: True, writes), str(training), recursive=True
        )
        if details.parent.resolve() != training.resolve():
            observer.schedule(
                _ChangeHandler(self.request_reload, lambda p: p == details, writes), str(details.parent)
            )
        if negatives.is_dir():
            observer.schedule(_ChangeHandler(self.request_reload, _is_negatives_file, writes), str(negatives))
        observer.daemon = True
        observer.start()
        self._observer = observer
        log.info(
            "watching %s, %s and %s for changes (%s)",
            training,
            details,
            negatives,
            "polling" if cfg.watchlist.polling else "inotify",
        )

    def _run(self) -> None:
        while self._wait_for_quiet():
            self._wait_until_settled()
            if self._stopping:
                return
            try:
                watchlist = self._build()
            except Exception:  # a bug in one reload must not end reloading
                log.exception("watchlist reload failed; keeping the previous watchlist")
                continue
            if self._stopping:  # stop() returned while this was being built: it must not land
                return
            self._current = watchlist
            log.info("watchlist reloaded: %d people, %d photos", watchlist.enrolled, len(watchlist.gallery))
            if self._on_reload:
                self._on_reload(watchlist)

    def _wait_for_quiet(self) -> bool:
        """Block until a change is pending and `debounce` seconds have passed since the last one."""
        debounce = self._config.watchlist.debounce
        with self._wake:
            while not self._stopping:
                if self._pending:
                    remaining = self._last_change + debounce - time.monotonic()
                    if remaining <= 0:
                        self._pending = False
                        return True
                    self._wake.wait(remaining)
                else:
                    self._wake.wait()
            return False

    def _note_write(self, path: str, kind: str) -> None:
        """A file was created or written to, or closed after writing, deleted or moved away.

        Watchdog reports the files of a newly made folder as "created" once it
        watches the folder, which can be after they were closed: such a late
        "created" (within LATE_EVENT seconds of the close) starts no write.
        """
        now = time.monotonic()
        with self._wake:
            if kind == "modified" or (
                kind == "created" and now - self._closed.get(path, -LATE_EVENT) >= LATE_EVENT
            ):
                self._writing[path] = now
            elif kind != "created":
                self._writing.pop(path, None)
                self._closed[path] = now
                self._closed = {p: t for p, t in self._closed.items() if now - t < LATE_EVENT}

    def _being_written(self) -> bool:
        """Whether a file was written to, and not closed, within WRITE_QUIET seconds.

        The limit covers a writer that keeps a file open without writing, and an
        event that inotify delivers out of order (a late "created" after the "closed").
        """
        with self._wake:
            now = time.monotonic()
            return any(now - t < WRITE_QUIET for t in self._writing.values())

    def _wait_until_settled(self) -> None:
        """Wait while any watched file is open for writing or still changing size or time stamp."""
        deadline = time.monotonic() + SETTLE_LIMIT
        before = _snapshot(self._config)
        while time.monotonic() < deadline and not self._stopping:
            time.sleep(SETTLE_SECONDS)
            after = _snapshot(self._config)
            if after == before and not self._being_written():
                return
            before = after
        if not self._stopping:
            log.warning(
                "files under %s are still changing; reloading anyway", self._config.paths.training_images
            )


def _snapshot(config: Config) -> dict[str, tuple[int, int]]:
    state = {}
    paths = [config.paths.details_csv]
    for root, _dirs, files in os.walk(config.paths.training_images):
        paths += [Path(root, name) for name in files]
    negatives = folder_of(config)
    if negatives.is_dir():
        paths += [p for p in negatives.iterdir() if _is_negatives_file(p)]
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        state[str(path)] = (st.st_size, st.st_mtime_ns)
    return state


def _is_negatives_file(path: Path) -> bool:
    """A person's negatives file (not a writer's hidden temporary file, which is renamed
    into place when whole)."""
    return path.suffix == ".json" and not path.name.startswith(".")


class _ChangeHandler(FileSystemEventHandler):
    def __init__(
        self,
        notify: Callable[[], None],
        wanted: Callable[[Path], bool],
        writes: Callable[[str, str], None] | None,
    ) -> None:
        self._notify = notify
        self._wanted = wanted
        self._writes = writes

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        src = os.fsdecode(event.src_path)
        paths = [src, os.fsdecode(getattr(event, "dest_path", "") or "")]
        if not any(p and self._wanted(Path(p)) for p in paths):
            return
        if self._writes is not None and not event.is_directory:
            # inotify may fold a new file's first write into its "created" event: both start a write.
            self._writes(src, event.event_type)
        self._notify()
