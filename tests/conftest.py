"""Shared fixtures: the real test data beside the project, and throwaway site folders."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from daemons import Daemon  # tests/daemons.py

from edgeguard.config import Config, load_config
from edgeguard.store.face_captures import CaptureFolder, parse_name

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
LFW = TESTDATA / "lfw10"
PEOPLE = TESTDATA / "people"
MASK = TESTDATA / "mask"
CLIP = (
    TESTDATA / "video" / "short_hamilton_clip.mp4"
)  # Lin-Manuel Miranda from frame 3, an unknown face at ~214
CLIP_FRAMES = 275
CLIP_FPS = 29.97
# The four people of the sites that replay the clip: (Id, Name, photo in PEOPLE)
WATCHLIST = [
    ("1", "Lin-Manuel Miranda", "lin-manuel-miranda.png"),
    ("2", "Alex Lacamoire", "alex-lacamoire.png"),
    ("3", "Barack Obama", "obama.jpg"),
    ("4", "Joe Biden", "biden.jpg"),
]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from prepare_mask import split_of  # noqa: E402  (the training split rule, so tests use photos training never saw)


def lfw_photos(person: str) -> list[Path]:
    """The LFW photos of one person, in name order (…_0001.jpg first)."""
    return sorted((LFW / person).glob("*.jpg"))


def held_apart(dataset: str, cls: str, count: int) -> list[Path]:
    """The first `count` photos by name of mask/<dataset>/<cls> in the test split training never saw."""
    paths = sorted((MASK / dataset / cls).iterdir(), key=lambda p: p.name)
    return [p for p in paths if split_of(p.name) == "test"][:count]


@pytest.fixture(scope="session", autouse=True)
def _testdata_present() -> None:
    assert TESTDATA.is_dir(), f"test data not found at {TESTDATA} (it sits beside the project root)"


class Site:
    """A site folder as on a device: TrainingImage/, Details/Details.csv, a config file."""

    HEADER = "Id,Name,phone_number,initial_deposit,category\n"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.training = base / "TrainingImage"
        self.details = base / "Details" / "Details.csv"
        self.config_path = base / "edgeguard.toml"
        self.training.mkdir(parents=True)
        self.details.parent.mkdir(parents=True)
        self.details.write_text(self.HEADER, encoding="utf-8")
        self.write_config()

    def write_config(self, extra: str = "") -> Path:
        """A config with base_dir here and `extra` TOML appended (whole sections)."""
        self.config_path.write_text(f'[paths]\nbase_dir = "{self.base}"\n{extra}', encoding="utf-8")
        return self.config_path

    def config(self) -> Config:
        return load_config(self.config_path)

    def add_row(self, pid: str, name: str, category: str = "") -> None:
        with self.details.open("a", encoding="utf-8") as fh:
            fh.write(f"{pid},{name},+15550100{pid[-2:].zfill(2)},100,{category}\n")

    def add_photos(self, pid: str, photos: list[Path]) -> list[Path]:
        folder = self.training / pid
        folder.mkdir(exist_ok=True)
        copied = []
        for photo in photos:
            target = folder / photo.name
            shutil.copyfile(photo, target)
            copied.append(target)
        return copied

    def add_person(self, pid: str, name: str, photos: list[Path], category: str = "") -> list[Path]:
        self.add_row(pid, name, category)
        return self.add_photos(pid, photos)


def copy_data_key(source: Path, target: Path) -> None:
    """The data key (and its check) of the site folder `source` given to `target`, so that the encodings or
    captures copied from there open (a site's first start would make a key of its own)."""
    for name in ("data.key", "data_key.check"):
        if (source / name).exists():
            shutil.copy2(source / name, target / name)


def make_site(base: Path, extra: str = "", people=WATCHLIST, cache_from: Site | None = None) -> Site:
    """A site with `people`, each (Id, Name, photo[, category]) with the photo a Path or a name in
    PEOPLE, and a config of `extra` TOML; `cache_from` lends another site's encodings cache
    (saves seconds)."""
    site = Site(base)
    for pid, name, photo, *category in people:
        site.add_person(pid, name, [photo if isinstance(photo, Path) else PEOPLE / photo], *category)
    if cache_from is not None:  # with the data key that sealed it (a site's first start would make another)
        shutil.copytree(cache_from.base / "TrainingImageLabel", base / "TrainingImageLabel")
        copy_data_key(cache_from.base, base)
    site.write_config(extra)
    return site


def site_capture(path: str | Path) -> tuple[CaptureFolder, str]:
    """The capture store of the site whose `Unknown_Face_Captures/` holds `path` (with that site's data key,
    as the daemon reads it), and the part of the capture `path` is."""
    path = Path(path)
    config = load_config(path.parent.parent / "edgeguard.toml")
    return CaptureFolder(path.parent, config.sealer), parse_name(path.name)[1]


def capture_image(path: str | Path) -> bytes:
    """The JPEG bytes of a capture's face or frame image, opened as the daemon reads them."""
    folder, part = site_capture(path)
    return folder.of(path).read(part)


def capture_sidecar(path: str | Path) -> dict:
    """The sidecar of the capture that `path` (any of its files) belongs to, opened as the daemon reads it."""
    folder, _ = site_capture(path)
    return folder.of(path).sidecar_data()


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path / "site")


@pytest.fixture
def daemons():
    """Start `edgeguard run` processes: daemons(config, *args, env=None); any still running
    are killed after the test."""
    started: list[Daemon] = []

    def start(config: Path, *args: str, env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(config, *args, env=env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
