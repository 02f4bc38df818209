"""Tests for edgeguard.watchlist.reload: the watchlist follows the site folders while running
(real watchdog observers, real files, real face encodings)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable

import pytest
from conftest import Site, lfw_photos
from helpers import wait_for
from watchdog.observers.api import BaseObserver

from edgeguard.config import RecognitionConfig
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.photos import load_photo
from edgeguard.watchlist.build import build_watchlist, open_cache
from edgeguard.watchlist.details import upsert_person
from edgeguard.watchlist.reload import SETTLE_SECONDS, WatchlistService

MAX_PIXELS = RecognitionConfig().max_image_pixels
DEBOUNCE = 0.3
WAIT = 10.0

BLAIR, POWELL, BUSH = "Tony_Blair", "Colin_Powell", "George_W_Bush"


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(RecognitionConfig())


@pytest.fixture(scope="module")
def held_apart(engine):
    """Encodings of photos never enrolled in these tests, to ask 'who is this?'."""
    return {
        person: engine.enrolment_encoding(load_photo(lfw_photos(person)[5], MAX_PIXELS))
        for person in (BLAIR, POWELL, BUSH)
    }


def who(watchlist, encoding):
    [identity] = watchlist.identify(encoding[None, :])
    return identity.person.id if identity.person else None


def wait_until_quiet(run, quiet=DEBOUNCE + SETTLE_SECONDS * 2 + 0.3, timeout=30):
    """Wait until no build has been running and no reload has happened for `quiet` seconds."""
    state = {"reloads": -1, "since": 0.0}

    def quiet_for_long_enough() -> bool:
        busy = len(run.builds) > 1 + len(run.reloaded)  # a rebuild is running right now
        if busy or len(run.reloaded) != state["reloads"]:
            state["reloads"], state["since"] = len(run.reloaded), time.monotonic()
        return not busy and time.monotonic() - state["since"] >= quiet

    wait_for(quiet_for_long_enough, timeout, "the watchlist service quiet", poll=0.1)


def service_threads(start: Callable[[], Running]) -> tuple[Running, threading.Thread, list[threading.Thread]]:
    """Start a service; its reload thread and every thread it started (the watchdog observer's among them)."""
    before = set(threading.enumerate())
    run = start()
    threads = [t for t in threading.enumerate() if t not in before]
    [reload_thread] = [t for t in threads if t.name == "watchlist-reload"]
    return run, reload_thread, threads


class Running:
    """A started WatchlistService on a site, with every build and reload recorded."""

    def __init__(self, site: Site, engine: FaceEngine, extra: str = "", gate=None) -> None:
        site.write_config(f"[watchlist]\ndebounce = {DEBOUNCE}\n{extra}")
        self.config = site.config()
        self.cache = open_cache(self.config)
        self.engine = engine
        self.builds: list[float] = []  # start times (monotonic)
        self.reloaded = []
        self.gate = gate
        self.service = WatchlistService(self.config, self._build, self.reloaded.append)

    def _build(self):
        self.builds.append(time.monotonic())
        if self.gate is not None and len(self.builds) > 1:
            self.gate()
        return build_watchlist(self.config, self.engine, self.cache)

    def start(self):
        return self.service.start()


@pytest.fixture
def running(engine):
    started = []

    def start(site: Site, extra: str = "", gate=None) -> Running:
        run = Running(site, engine, extra, gate)
        started.append(run)
        run.start()
        return run

    yield start
    for run in started:
        run.service.stop()


@pytest.fixture
def two_people(site):
    site.add_person("1", "Tony Blair", lfw_photos(BLAIR)[:1])
    site.add_person("2", "Colin Powell", lfw_photos(POWELL)[:1])
    return site


# --- adding, removing, replacing ------------------------------------------------------------


def test_added_person_is_picked_up_and_old_watchlist_keeps_working(two_people, running, held_apart):
    site = two_people
    in_build, release = threading.Event(), threading.Event()

    def gate():  # hold the first reload's build until the test has looked at the old watchlist
        in_build.set()
        assert release.wait(WAIT)

    run = running(site, gate=gate)
    old = run.service.current
    assert old.enrolled == 2
    assert who(old, held_apart[BUSH]) is None

    site.add_person("3", "George W Bush", lfw_photos(BUSH)[:2])
    assert in_build.wait(WAIT), "no reload started after adding a person"
    # during the reload the previous watchlist is still the current one, and still works
    assert run.service.current is old
    assert who(run.service.current, held_apart[BLAIR]) == "1"
    assert who(run.service.current, held_apart[POWELL]) == "2"
    release.set()

    assert wait_for(lambda: run.service.current.enrolled == 3, WAIT)
    new = run.service.current
    assert new is not old
    assert who(new, held_apart[BUSH]) == "3"
    assert new.people["3"].name == "George W Bush"
    assert new.photo_counts["3"] == 2
    # the old object is unchanged and still usable by anyone holding it
    assert old.enrolled == 2
    assert who(old, held_apart[BLAIR]) == "1"
    assert who(old, held_apart[BUSH]) is None
    assert run.reloaded and run.reloaded[-1] is new


def test_removed_person_disappears(two_people, running, held_apart):
    site = two_people
    run = running(site)
    assert who(run.service.current, held_apart[POWELL]) == "2"
    shutil.rmtree(site.training / "2")
    lines = site.details.read_text(encoding="utf-8").splitlines(keepends=True)
    site.details.write_text("".join(line for line in lines if not line.startswith("2,")), encoding="utf-8")

    assert wait_for(lambda: "2" not in run.service.current.people, WAIT)
    current = run.service.current
    assert current.enrolled == 1
    assert "2" not in current.photo_counts
    assert who(current, held_apart[POWELL]) is None
    assert who(current, held_apart[BLAIR]) == "1"


def test_replaced_photo_changes_identification(two_people, running, held_apart):
    site = two_people
    run = running(site)
    assert who(run.service.current, held_apart[BLAIR]) == "1"
    [photo] = (site.training / "1").iterdir()
    shutil.copyfile(lfw_photos(BUSH)[0], photo)  # same file name, someone else's face

    assert wait_for(lambda: who(run.service.current, held_apart[BUSH]) == "1", WAIT)
    current = run.service.current
    assert who(current, held_apart[BLAIR]) is None
    assert current.photo_counts == {"1": 1, "2": 1}


# --- debounce and half-written files ----------------------------------------------------------


def test_burst_of_30_photos_gives_one_reload(site, running):
    site.add_person("1", "Tony Blair", lfw_photos(BLAIR)[:1])
    run = running(site)
    newcomers = ["Ariel_Sharon", "Gerhard_Schroeder", "Jacques_Chirac"]
    for number, person in enumerate(newcomers, start=2):
        site.add_row(str(number), person)
    copied = 0
    for number, person in enumerate(newcomers, start=2):
        for photo in lfw_photos(person)[:10]:
            site.add_photos(str(number), [photo])
            copied += 1
            time.sleep(0.01)
    assert copied == 30

    assert wait_for(lambda: run.service.current.enrolled == 4, 30)
    wait_until_quiet(run)
    current = run.service.current
    assert sum(current.photo_counts.values()) >= 30  # at most one of the 30 photos unusable
    assert 1 <= len(run.reloaded) <= 2, f"{len(run.reloaded)} reloads for one burst"
    assert len(run.builds) == 1 + len(run.reloaded)


def test_photo_written_slowly_is_enrolled_complete(site, running):
    site.add_person("1", "Tony Blair", lfw_photos(BLAIR)[:1])
    site.add_row("2", "Colin Powell")
    (site.training / "2").mkdir()
    run = running(site)
    data = lfw_photos(POWELL)[0].read_bytes()
    target = site.training / "2" / "arriving.jpg"
    chunks = 6
    size = -(-len(data) // chunks)
    pause = (DEBOUNCE + SETTLE_SECONDS) / 2  # longer than the debounce, shorter than the settle interval
    with target.open("wb") as fh:
        for i in range(chunks):
            fh.write(data[i * size : (i + 1) * size])
            fh.flush()
            if i < chunks - 1:
                time.sleep(pause)
    complete = time.monotonic()
    assert target.read_bytes() == data

    assert wait_for(lambda: run.service.current.photo_counts.get("2") == 1, WAIT)
    # Only a rebuild that started before the photo was complete could see it half written: wait until each
    # of those has finished (rebuilds run one at a time, so the first N reloads are the first N rebuilds).
    started_early = len([t for t in run.builds[1:] if t < complete])
    wait_for(lambda: len(run.reloaded) >= started_early, WAIT, "the rebuilds that started during the write")
    assert run.reloaded, "no reload after the photo arrived"
    for watchlist in run.reloaded:
        half = [p for p in watchlist.problems if p.where == str(target)]
        assert half == [], f"a reload saw the photo half written: {half}"
    assert run.service.current.problems == []


# --- observers and Details.csv ------------------------------------------------------------------


def test_polling_observer_picks_up_added_person(two_people, running, held_apart):
    site = two_people
    run = running(site, extra="polling = true\npoll_interval = 0.5\n")
    assert run.config.watchlist.polling
    assert run.service.current.enrolled == 2
    site.add_person("3", "George W Bush", lfw_photos(BUSH)[:1])
    assert wait_for(lambda: run.service.current.enrolled == 3, WAIT)
    assert who(run.service.current, held_apart[BUSH]) == "3"


def test_details_csv_edited_in_place_renames(two_people, running, held_apart):
    site = two_people
    run = running(site)
    assert run.service.current.people["1"].name == "Tony Blair"
    text = site.details.read_text(encoding="utf-8")
    with site.details.open("r+", encoding="utf-8") as fh:  # same file, rewritten in place
        fh.seek(0)
        fh.write(text.replace("Tony Blair", "Anthony Blair"))
        fh.truncate()
    assert wait_for(lambda: run.service.current.people["1"].name == "Anthony Blair", WAIT)
    [identity] = run.service.current.identify(held_apart[BLAIR][None, :])
    assert identity.person.name == "Anthony Blair"


def test_details_csv_replaced_by_rename_is_picked_up(two_people, running):
    """upsert_person (and most editors) write a temporary file and rename it over Details.csv."""
    site = two_people
    run = running(site)
    upsert_person(site.details, "2", "General Colin Powell", "vip")
    assert wait_for(lambda: run.service.current.people["2"].name == "General Colin Powell", WAIT)
    assert run.service.current.people["2"].category == "vip"


def test_files_elsewhere_in_details_folder_do_not_reload(two_people, running):
    site = two_people
    run = running(site)
    (site.details.parent / "notes.txt").write_text("not the watchlist\n", encoding="utf-8")
    (site.details.parent / "Details-backup.csv").write_text("Id,Name\n", encoding="utf-8")
    # Pacing, not the check: a reload these files caused would be over before the change below, not merged
    # into its reload by the debounce.
    time.sleep(DEBOUNCE + SETTLE_SECONDS + 0.6)
    # Then a change to Details.csv in the same folder: the observer reports it after the files above, so once
    # its reload is done, any reload they caused would have happened as well.
    upsert_person(site.details, "2", "Colin L. Powell", None)
    assert wait_for(lambda: run.reloaded and run.reloaded[-1].people["2"].name == "Colin L. Powell", WAIT)
    assert len(run.reloaded) == 1  # only that change's reload: none for the files elsewhere


# --- stopping -----------------------------------------------------------------------------------


@pytest.mark.slow  # asserts on how long stop() took
def test_stop_returns_promptly_and_ends_watching(two_people, running):
    site = two_people
    run, reload_thread, threads = service_threads(lambda: running(site))
    observers = [t for t in threads if isinstance(t, BaseObserver)]
    assert len(observers) == 1, threads
    service = run.service
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 2.0  # generous, but short of the 2 s each of its joins may wait
    assert not reload_thread.is_alive()
    assert not observers[0].is_alive()
    assert [t for t in threads if t.is_alive()] == []  # the observer's emitters too
    # With the reload thread gone nothing can reload: a change now is never picked up.
    site.add_person("3", "George W Bush", lfw_photos(BUSH)[:1])
    assert len(run.reloaded) == 0
    assert len(run.builds) == 1


@pytest.mark.slow  # asserts on how long stop() took
def test_stop_while_a_reload_is_pending_returns_promptly(two_people, running):
    site = two_people
    run, reload_thread, _ = service_threads(lambda: running(site))
    site.add_person("3", "George W Bush", lfw_photos(BUSH)[:1])
    # a change noted for certain (the observer's may come later), the debounce running
    run.service.request_reload()
    started = time.monotonic()
    run.service.stop()
    assert time.monotonic() - started < 2.0  # generous, but short of the 2 s its join may wait
    wait_for(lambda: not reload_thread.is_alive(), WAIT, "the reload thread ended")  # nothing can reload now
    assert len(run.reloaded) == 0
    assert len(run.builds) == 1


@pytest.mark.slow  # asserts on how long stop() took
def test_stop_while_files_are_settling_does_not_start_a_reload(two_people, running):
    """A copy still in progress when the daemon stops: stop() must not run a rebuild first."""
    site = two_people
    run, reload_thread, _ = service_threads(lambda: running(site, extra="watch = false\n"))
    growing = site.training / "1" / "copying.jpg.part"
    done = threading.Event()

    def writer():
        with growing.open("wb") as fh:
            while not done.is_set():
                fh.write(b"\0" * 512)
                fh.flush()
                time.sleep(0.1)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        run.service.request_reload()
        # Pacing: the copy goes on past the debounce and two settle intervals; no signal tells
        # that the service is waiting for it to settle, so this only checks that it has not
        # reloaded meanwhile.
        time.sleep(DEBOUNCE + 2 * SETTLE_SECONDS + 0.2)
        assert len(run.reloaded) == 0
        stop_at = time.monotonic()
        run.service.stop()
        stopped_in = time.monotonic() - stop_at
    finally:
        done.set()
        thread.join()
    assert stopped_in < 2.0  # generous, but short of the 2 s its join may wait
    wait_for(lambda: not reload_thread.is_alive(), WAIT, "the reload thread ended")  # nothing can rebuild now
    assert [t for t in run.builds if t >= stop_at] == [], "a watchlist rebuild ran after stop()"
    assert len(run.reloaded) == 0
