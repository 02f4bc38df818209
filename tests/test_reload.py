"""Tests for edgeguard.reload: the watchlist follows the site folders while running
(real watchdog observers, real files, real face encodings)."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from conftest import Site, lfw_photos
from edgeguard.config import RecognitionConfig
from edgeguard.watchlist.details import upsert_person
from edgeguard.faces.photos import load_photo
from edgeguard.faces.engine import FaceEngine
from edgeguard.watchlist.reload import SETTLE_SECONDS, WatchlistService
from edgeguard.watchlist.build import build_watchlist, open_cache

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
    return {person: engine.enrolment_encoding(load_photo(lfw_photos(person)[5], MAX_PIXELS))
            for person in (BLAIR, POWELL, BUSH)}


def who(watchlist, encoding):
    [identity] = watchlist.identify(encoding[None, :])
    return identity.person.id if identity.person else None


def wait_for(predicate, timeout=WAIT, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_until_quiet(run, quiet=DEBOUNCE + SETTLE_SECONDS * 2 + 0.3, timeout=WAIT):
    """Wait until no reload has happened for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = len(run.reloaded), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if len(run.reloaded) != last:
            last, since = len(run.reloaded), time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


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

    assert wait_for(lambda: run.service.current.enrolled == 3)
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

    assert wait_for(lambda: "2" not in run.service.current.people)
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

    assert wait_for(lambda: who(run.service.current, held_apart[BUSH]) == "1")
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

    assert wait_for(lambda: run.service.current.enrolled == 4, timeout=30)
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
            fh.write(data[i * size:(i + 1) * size])
            fh.flush()
            if i < chunks - 1:
                time.sleep(pause)
    assert target.read_bytes() == data

    assert wait_for(lambda: run.service.current.photo_counts.get("2") == 1)
    wait_until_quiet(run)
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
    assert wait_for(lambda: run.service.current.enrolled == 3)
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
    assert wait_for(lambda: run.service.current.people["1"].name == "Anthony Blair")
    [identity] = run.service.current.identify(held_apart[BLAIR][None, :])
    assert identity.person.name == "Anthony Blair"


def test_details_csv_replaced_by_rename_is_picked_up(two_people, running):
    """upsert_person (and most editors) write a temporary file and rename it over Details.csv."""
    site = two_people
    run = running(site)
    upsert_person(site.details, "2", "General Colin Powell", "vip")
    assert wait_for(lambda: run.service.current.people["2"].name == "General Colin Powell")
    assert run.service.current.people["2"].category == "vip"


def test_files_elsewhere_in_details_folder_do_not_reload(two_people, running):
    site = two_people
    run = running(site)
    (site.details.parent / "notes.txt").write_text("not the watchlist\n", encoding="utf-8")
    (site.details.parent / "Details-backup.csv").write_text("Id,Name\n", encoding="utf-8")
    time.sleep(DEBOUNCE + SETTLE_SECONDS + 0.6)
    assert len(run.reloaded) == 0


# --- stopping -----------------------------------------------------------------------------------


def test_stop_returns_promptly_and_ends_watching(two_people, running):
    site = two_people
    run = running(site)
    service = run.service
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 1.0
    assert not service._thread.is_alive()
    assert not service._observer.is_alive()
    site.add_person("3", "George W Bush", lfw_photos(BUSH)[:1])
    time.sleep(DEBOUNCE + SETTLE_SECONDS + 0.6)
    assert len(run.reloaded) == 0
    assert len(run.builds) == 1


def test_stop_while_a_reload_is_pending_returns_promptly(two_people, running):
    site = two_people
    run = running(site)
    site.add_person("3", "George W Bush", lfw_photos(BUSH)[:1])
    time.sleep(0.1)  # a change noted, the debounce still running
    started = time.monotonic()
    run.service.stop()
    assert time.monotonic() - started < 1.0
    time.sleep(DEBOUNCE + 0.5)
    assert len(run.reloaded) == 0


def test_stop_while_files_are_settling_does_not_start_a_reload(two_people, running):
    """A copy still in progress when the daemon stops: stop() must not run a rebuild first."""
    site = two_people
    run = running(site, extra="watch = false\n")
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
        time.sleep(DEBOUNCE + 2 * SETTLE_SECONDS + 0.2)  # past the debounce: waiting for the copy to settle
        assert len(run.reloaded) == 0
        stop_at = time.monotonic()
        run.service.stop()
        stopped_in = time.monotonic() - stop_at
    finally:
        done.set()
        thread.join()
    assert stopped_in < 1.5
    assert [t for t in run.builds if t >= stop_at] == [], "a watchlist rebuild ran after stop()"
    assert len(run.reloaded) == 0
