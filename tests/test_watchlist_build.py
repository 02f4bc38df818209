"""Tests for edgeguard.watchlist.build (with watchlist.cache, faces.engine, faces.photos): enrolment from real
photos, identification, problems with unusable files, CSV/folder consistency and the encoding cache."""

from __future__ import annotations

import io
import logging
import re
import shutil
import stat
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import PEOPLE, TESTDATA, Site, copy_data_key, lfw_photos
from PIL import Image

from edgeguard.common.sealing import unseal
from edgeguard.config import RecognitionConfig, load_config
from edgeguard.faces.engine import FaceEngine
from edgeguard.faces.photos import load_photo
from edgeguard.watchlist.analyze import analyze_photo
from edgeguard.watchlist.build import build_watchlist, open_cache
from edgeguard.watchlist.cache import CACHE_FILE, ROLE, EncodingCache, photo_digest

MAX_PIXELS = RecognitionConfig().max_image_pixels

ENROLLED = ["Ariel_Sharon", "Colin_Powell", "George_W_Bush", "Gerhard_Schroeder", "Tony_Blair"]
STRANGERS = ["Hugo_Chavez", "Jacques_Chirac", "Vladimir_Putin"]
STRANGER_PHOTOS = 4  # per stranger


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(RecognitionConfig())


def build(site: Site, engine: FaceEngine):
    config = site.config()
    return build_watchlist(config, engine, open_cache(config))


def central_face(results, rgb):
    """The face nearest the image centre (LFW photos may show someone else at the edge)."""
    height, width = rgb.shape[:2]
    assert results, "no face found"
    return min(
        results, key=lambda r: (r.box.center[0] - width / 2) ** 2 + (r.box.center[1] - height / 2) ** 2
    )


def who(engine, watchlist, path: Path):
    """The Id the central face of a photo is identified as (None: unknown)."""
    rgb = load_photo(path, MAX_PIXELS)
    face = central_face(analyze_photo(engine, rgb, watchlist), rgb)
    assert face.identity is not None, f"{path.name}: face too small to identify"
    return face.identity.person.id if face.identity.person else None


def new_site(base: Path) -> Site:
    return Site(base / "site")


def problems_for(watchlist, path: Path):
    return [p for p in watchlist.problems if p.where == str(path)]


def encode_calls(monkeypatch, engine):
    """Count FaceEngine.enrolment_encoding calls on this engine instance."""
    calls = []
    original = engine.enrolment_encoding

    def counting(rgb):
        calls.append(rgb.shape)
        return original(rgb)

    monkeypatch.setattr(engine, "enrolment_encoding", counting)
    return calls


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels (8-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def downscaled(src: Path, dest: Path, side: int) -> Path:
    with Image.open(src) as img:
        img.convert("RGB").resize((side, side), Image.LANCZOS).save(dest, "JPEG", quality=95)
    return dest


# --- enrolment from LFW and identification of held-apart photos --------------------------


@pytest.fixture(scope="module")
def lfw_site(engine, tmp_path_factory):
    site = new_site(tmp_path_factory.mktemp("lfw"))
    for number, person in enumerate(ENROLLED, start=1):
        site.add_person(str(number), person.replace("_", " "), lfw_photos(person)[:3])
    watchlist = build(site, engine)
    return site, watchlist


def test_lfw_enrolment_counts(lfw_site):
    site, watchlist = lfw_site
    assert watchlist.problems == []
    assert watchlist.enrolled == 5
    assert len(watchlist.gallery) == 15
    assert watchlist.photo_counts == {str(n): 3 for n in range(1, 6)}
    assert {p.name for p in watchlist.people.values()} == {p.replace("_", " ") for p in ENROLLED}
    assert watchlist.gallery.encodings.shape == (15, 128)


def test_lfw_held_apart_photos_are_identified(engine, lfw_site):
    _, watchlist = lfw_site
    wrong = []
    total = 0
    for number, person in enumerate(ENROLLED, start=1):
        for photo in lfw_photos(person)[3:10]:
            total += 1
            got = who(engine, watchlist, photo)
            if got != str(number):
                wrong.append((photo.name, got))
    assert total == 35
    assert total - len(wrong) >= 33, f"misidentified: {wrong}"


def test_lfw_strangers_are_unknown(engine, lfw_site):
    _, watchlist = lfw_site
    named = []
    for person in STRANGERS:
        for photo in lfw_photos(person)[:STRANGER_PHOTOS]:
            got = who(engine, watchlist, photo)
            if got is not None:
                named.append((photo.name, got))
    assert len(named) <= 1, f"strangers taken for watchlist people: {named}"


def test_identify_reports_distance_and_tolerance(engine, lfw_site):
    _, watchlist = lfw_site
    rgb = load_photo(lfw_photos("Tony_Blair")[5], MAX_PIXELS)
    query = engine.enrolment_encoding(rgb)
    [identity] = watchlist.identify(query[None, :])
    assert identity.person is not None and identity.person.id == "5"
    assert 0 <= identity.distance <= watchlist.thresholds.tolerance
    assert watchlist.identify(np.empty((0, 128), dtype=np.float32)) == []
    # A vector far from every face is unknown but still has its distance.
    [far] = watchlist.identify(np.full((1, 128), 0.5, dtype=np.float32))
    assert far.person is None and far.distance > watchlist.thresholds.tolerance


# --- enrolment from people/ -----------------------------------------------------------------


@pytest.fixture(scope="module")
def people_site(engine, tmp_path_factory):
    site = new_site(tmp_path_factory.mktemp("people"))
    site.add_person("1", "Barack Obama", [PEOPLE / "obama.jpg"])
    site.add_person("2", "Joe Biden", [PEOPLE / "biden.jpg"])
    return site, build(site, engine)


def test_two_people_photo_names_both_faces(engine, people_site):
    _, watchlist = people_site
    assert watchlist.problems == []
    assert watchlist.enrolled == 2
    results = analyze_photo(engine, load_photo(PEOPLE / "two_people.jpg", MAX_PIXELS), watchlist)
    assert len(results) == 2
    left, right = sorted(results, key=lambda r: r.box.center[0])
    assert left.identity.person is not None and left.identity.person.name == "Barack Obama"
    assert right.identity.person is not None and right.identity.person.name == "Joe Biden"


def test_stranger_from_people_folder_is_unknown(engine, people_site):
    _, watchlist = people_site
    results = analyze_photo(engine, load_photo(PEOPLE / "lin-manuel-miranda.png", MAX_PIXELS), watchlist)
    assert len(results) == 1
    assert results[0].identity is not None
    assert results[0].identity.person is None
    assert results[0].identity.distance > watchlist.thresholds.tolerance


# --- tight passport-style crops ---------------------------------------------------------------


CROP_PEOPLE = ["Arnold_Schwarzenegger", "Donald_Rumsfeld", "Hugo_Chavez", "Jacques_Chirac", "Vladimir_Putin"]


def test_tight_100px_crops_enrol_and_recognise_full_photos(engine, tmp_path):
    site = new_site(tmp_path)
    crops = {}
    for number, person in enumerate(CROP_PEOPLE, start=1):
        rgb = load_photo(lfw_photos(person)[0], MAX_PIXELS)
        height, width = rgb.shape[:2]
        box = min(
            (d.box for d in engine.find_in_photo(rgb)),
            key=lambda b: (b.center[0] - width / 2) ** 2 + (b.center[1] - height / 2) ** 2,
        ).clipped(height, width)
        crop = Image.fromarray(rgb[box.top : box.bottom, box.left : box.right])
        crop = crop.resize((100, round(crop.height * 100 / crop.width)), Image.LANCZOS)
        source = tmp_path / f"crop_{person}.jpg"
        crop.save(source, "JPEG", quality=92)
        assert Image.open(source).size[0] == 100
        crops[str(number)] = site.add_person(str(number), person, [source])[0]
    watchlist = build(site, engine)
    assert watchlist.problems == []
    assert watchlist.enrolled == 5
    assert watchlist.photo_counts == {pid: 1 for pid in crops}
    wrong = []
    for number, person in enumerate(CROP_PEOPLE, start=1):
        for photo in lfw_photos(person)[1:3]:
            got = who(engine, watchlist, photo)
            if got != str(number):
                wrong.append((photo.name, got))
    assert wrong == []


# --- unusable photos become problems; usable odd formats are converted ----------------------


BAD_PHOTOS = {
    # file name in folder 1: a regular expression the reason must match
    "no_face.jpg": r"no face found",
    "two_faces.jpg": r"2 faces found",
    "small_face.jpg": r"face too small: \d+ px, at least 60 px",
    "tiny_60x60.jpg": r"face too small|no face found",
    "truncated.jpg": r"corrupt or truncated",
    "not_an_image.jpg": r"not an image file",
    "empty.jpg": r"empty file \(0 bytes\)",
    "bomb.png": r"image too large: 60000x60000.*max_image_pixels",
    "animation.gif": r"not a photo type",
}
# Files that are no pictures: passed over without a word.
NOT_PICTURES = ("notes.txt", "Thumbs.db", "desktop.ini", ".DS_Store")


@pytest.fixture(scope="module")
def problem_site(engine, tmp_path_factory):
    base = tmp_path_factory.mktemp("problems")
    site = new_site(base)
    work = base / "sources"
    work.mkdir()
    good = lfw_photos("Colin_Powell")[:2]
    site.add_person("1", "Colin Powell", good)
    folder = site.training / "1"
    shutil.copyfile(TESTDATA / "crowd" / "dogs.jpg", folder / "no_face.jpg")
    shutil.copyfile(PEOPLE / "two_people.jpg", folder / "two_faces.jpg")
    downscaled(lfw_photos("Colin_Powell")[3], folder / "small_face.jpg", 120)
    downscaled(lfw_photos("Colin_Powell")[4], folder / "tiny_60x60.jpg", 60)
    data = lfw_photos("Colin_Powell")[5].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "not_an_image.jpg").write_text(
        "Id,Name\n1,Colin Powell\nthis is not a photo\n", encoding="utf-8"
    )
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "bomb.png").write_bytes(png_bomb(60000, 60000))
    Image.open(good[0]).convert("P").save(folder / "animation.gif")
    for name in NOT_PICTURES:
        (folder / name).write_text("taken at the gate\n", encoding="utf-8")
    (site.training / "README.md").write_text("# photos go in a folder per person\n", encoding="utf-8")
    (site.training / "Thumbs.db").write_bytes(b"\0" * 16)
    # A photo dropped into TrainingImage/ itself instead of a person's folder.
    shutil.copyfile(lfw_photos("Tony_Blair")[0], site.training / "loose.jpg")
    # Formats that must be converted, each the only photo of its person.
    site.add_person("2", "RGBA portrait", [PEOPLE / "32bit.png"])
    grey_src = lfw_photos("George_W_Bush")[0]
    site.add_row("3", "Greyscale")
    (site.training / "3").mkdir()
    Image.open(grey_src).convert("L").save(site.training / "3" / "grey.jpg", quality=95)
    site.add_row("4", "Sixteen bit")
    (site.training / "4").mkdir()
    grey8 = np.asarray(Image.open(lfw_photos("Gerhard_Schroeder")[0]).convert("L"))
    Image.fromarray(grey8.astype(np.uint16) * 257).save(site.training / "4" / "grey16.png")
    return site, build(site, engine)


@pytest.mark.parametrize("name", sorted(BAD_PHOTOS))
def test_unusable_photo_is_a_problem_naming_file_and_reason(problem_site, name):
    site, watchlist = problem_site
    path = site.training / "1" / name
    found = problems_for(watchlist, path)
    assert len(found) == 1, f"{name}: {watchlist.problems}"
    assert re.search(BAD_PHOTOS[name], found[0].reason), found[0].reason
    assert str(path) in str(found[0])


def test_files_that_are_no_pictures_are_passed_over_silently(problem_site):
    site, watchlist = problem_site
    quiet = [site.training / "1" / name for name in NOT_PICTURES] + [
        site.training / "README.md",
        site.training / "Thumbs.db",
    ]
    for path in quiet:
        assert problems_for(watchlist, path) == [], path


def test_good_photos_of_the_same_person_still_enrol(problem_site):
    site, watchlist = problem_site
    assert watchlist.photo_counts["1"] == 2  # only the two real LFW photos
    assert "1" in watchlist.people and watchlist.people["1"].name == "Colin Powell"


def test_photo_directly_in_training_folder_is_a_problem(problem_site):
    site, watchlist = problem_site
    [problem] = problems_for(watchlist, site.training / "loose.jpg")
    assert "folder per person" in problem.reason
    assert "loose.jpg" not in watchlist.people and "loose" not in watchlist.people


@pytest.mark.parametrize(
    "pid,name,mode", [("2", "32bit.png", "RGBA"), ("3", "grey.jpg", "L"), ("4", "grey16.png", "I")]
)
def test_rgba_greyscale_and_16bit_photos_enrol(engine, problem_site, pid, name, mode):
    site, watchlist = problem_site
    path = site.training / pid / name
    with Image.open(path) as img:
        assert img.mode.startswith(mode)
    assert problems_for(watchlist, path) == []
    assert watchlist.photo_counts.get(pid) == 1


@pytest.mark.parametrize("pid,person", [("3", "George_W_Bush"), ("4", "Gerhard_Schroeder")])
def test_converted_photos_still_match_their_person(engine, problem_site, pid, person):
    _, watchlist = problem_site
    rgb = load_photo(lfw_photos(person)[1], MAX_PIXELS)
    [identity] = watchlist.identify(engine.enrolment_encoding(rgb)[None, :])
    assert identity.person is not None and identity.person.id == pid


def test_problem_set_is_exactly_the_bad_files(problem_site):
    site, watchlist = problem_site
    expected = {str(site.training / "1" / n) for n in BAD_PHOTOS} | {str(site.training / "loose.jpg")}
    assert {p.where for p in watchlist.problems} == expected
    assert watchlist.enrolled == 4


# --- Details.csv and folders ----------------------------------------------------------------


PHONES = ["+44 7700 900123", "+1-202-555-0143", "0049 30 901820"]
DEPOSITS = ["98765.43", "31337", "4242.42"]


def test_folder_without_row_and_row_without_folder(engine, tmp_path, caplog):
    site = new_site(tmp_path)
    with site.details.open("a", encoding="utf-8") as fh:
        fh.write(f"1,Tony Blair,{PHONES[0]},{DEPOSITS[0]},vip\n")
        fh.write(f"9,Nobody Here,{PHONES[1]},{DEPOSITS[1]},\n")
        fh.write(f"1,Duplicate Row,{PHONES[2]},{DEPOSITS[2]},\n")
    site.add_photos("1", lfw_photos("Tony_Blair")[:1])
    site.add_photos("7", lfw_photos("Colin_Powell")[:1])
    with caplog.at_level(logging.DEBUG):
        watchlist = build(site, engine)

    # folder 7 has no row: enrolled under its folder name, and reported
    assert watchlist.photo_counts == {"1": 1, "7": 1}
    assert watchlist.people["7"].name == "7"
    folder_problems = problems_for(watchlist, site.training / "7")
    assert len(folder_problems) == 1 and "no row" in folder_problems[0].reason
    # row 9 has no folder: reported, not enrolled
    assert "9" not in watchlist.photo_counts
    assert [p for p in watchlist.problems if "Id 9 " in p.reason]
    assert watchlist.enrolled == 2
    assert watchlist.people["1"].category == "vip"

    # each problem logged exactly once, at WARNING
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(watchlist.problems) >= 3
    for problem in watchlist.problems:
        hits = [r for r in warnings if str(problem) in r.getMessage()]
        assert len(hits) == 1, f"{problem} logged {len(hits)} times"
    assert len(warnings) == len(watchlist.problems)
    # no phone number or deposit anywhere in the log
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    for secret in PHONES + DEPOSITS:
        assert secret not in text


def test_identification_uses_csv_name_and_category(engine, lfw_site):
    site, watchlist = lfw_site
    rgb = load_photo(lfw_photos("George_W_Bush")[4], MAX_PIXELS)
    face = central_face(analyze_photo(engine, rgb, watchlist), rgb)
    assert face.identity.person.name == "George W Bush"
    assert face.to_json()["name"] == "George W Bush"


# --- the encoding cache -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_template(engine, tmp_path_factory):
    """A small site built once (cold): two people, three good photos, one face-too-small photo."""
    site = new_site(tmp_path_factory.mktemp("cache-template"))
    site.add_person("1", "Tony Blair", lfw_photos("Tony_Blair")[:2])
    site.add_person("2", "Colin Powell", lfw_photos("Colin_Powell")[:1])
    site.add_row("3", "Small Face")
    (site.training / "3").mkdir()
    downscaled(lfw_photos("Vladimir_Putin")[0], site.training / "3" / "small.jpg", 120)
    watchlist = build(site, engine)
    assert watchlist.photo_counts == {"1": 2, "2": 1}
    assert len(problems_for(watchlist, site.training / "3" / "small.jpg")) == 1
    return site, watchlist


@pytest.fixture
def warm_site(cache_template, tmp_path):
    """A copy of the template site, its cache file included (entries are keyed by content)."""
    template, _ = cache_template
    site = new_site(tmp_path)
    shutil.rmtree(site.training)
    shutil.copytree(template.training, site.training)
    shutil.copyfile(template.details, site.details)
    shutil.copytree(template.base / "TrainingImageLabel", site.base / "TrainingImageLabel")
    copy_data_key(template.base, site.base)
    return site


def cache_path(site: Site) -> Path:
    return site.config().paths.encodings_cache / CACHE_FILE


def open_npz(path: Path):
    """The cache file's arrays, opened with its site's data key (the file is sealed on disk)."""
    sealer = load_config(path.parent.parent / "edgeguard.toml").sealer
    return np.load(io.BytesIO(unseal(sealer, path.read_bytes(), ROLE)), allow_pickle=False)


def cached_digests(site: Site) -> set[str]:
    with open_npz(cache_path(site)) as data:
        return {str(d) for d in data["digests"]}


def test_second_build_encodes_nothing_and_gives_identical_encodings(
    engine, cache_template, warm_site, monkeypatch
):
    """A restart: the cache is read back from its file; nothing is detected or encoded again."""
    _, cold = cache_template
    calls = encode_calls(monkeypatch, engine)
    warm = build(warm_site, engine)
    assert calls == []  # failures (the small face) are cached too
    assert warm.photo_counts == cold.photo_counts
    assert np.array_equal(warm.gallery.encodings, cold.gallery.encodings)
    assert np.array_equal(warm.gallery.owners, cold.gallery.owners)
    template, _ = cache_template
    assert [str(p).replace(str(warm_site.base), "") for p in warm.problems] == [
        str(p).replace(str(template.base), "") for p in cold.problems
    ]


def test_cold_build_does_encode(engine, tmp_path, monkeypatch):
    """The counter used above does see encodings when there is no cache."""
    site = new_site(tmp_path)
    site.add_person("1", "Tony Blair", lfw_photos("Tony_Blair")[:2])
    calls = encode_calls(monkeypatch, engine)
    watchlist = build(site, engine)
    assert len(calls) == 2
    assert watchlist.photo_counts == {"1": 2}
    assert cache_path(site).is_file()


def test_renamed_photo_stays_cached(engine, warm_site, monkeypatch):
    folder = warm_site.training / "1"
    first = sorted(folder.iterdir())[0]
    first.rename(folder / "renamed passport photo.jpg")
    calls = encode_calls(monkeypatch, engine)
    watchlist = build(warm_site, engine)
    assert calls == []
    assert watchlist.photo_counts == {"1": 2, "2": 1}


def test_photo_moved_to_another_person_stays_cached(engine, warm_site, monkeypatch):
    photo = sorted((warm_site.training / "1").iterdir())[0]
    photo.rename(warm_site.training / "2" / photo.name)
    calls = encode_calls(monkeypatch, engine)
    watchlist = build(warm_site, engine)
    assert calls == []
    assert watchlist.photo_counts == {"1": 1, "2": 2}


def test_changed_photo_bytes_reencode_only_that_photo(engine, warm_site, monkeypatch):
    photo = sorted((warm_site.training / "1").iterdir())[0]
    old = load_photo(photo, MAX_PIXELS)
    Image.fromarray(old).save(photo, "JPEG", quality=70)  # same picture, other bytes
    calls = encode_calls(monkeypatch, engine)
    watchlist = build(warm_site, engine)
    assert len(calls) == 1
    assert watchlist.photo_counts == {"1": 2, "2": 1}
    assert photo_digest(photo.read_bytes()) in cached_digests(warm_site)


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _foreign_npz(path: Path) -> None:
    with path.open("wb") as fh:
        np.savez(fh, weights=np.ones((3, 3)), labels=np.array(["a", "b", "c"]))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _misaligned(path: Path) -> None:
    with open_npz(path) as data:
        parts = {k: data[k] for k in data.files}
    parts["encodings"] = parts["encodings"][:, :64]
    with path.open("wb") as fh:
        np.savez(fh, **parts)


def _nan(path: Path) -> None:
    with open_npz(path) as data:
        parts = {k: data[k] for k in data.files}
    parts["encodings"] = parts["encodings"].copy()
    parts["encodings"][0, 0] = np.nan
    with path.open("wb") as fh:
        np.savez(fh, **parts)


def _plain_npy(path: Path) -> None:
    with path.open("wb") as fh:
        np.save(fh, np.zeros((3, 128), dtype=np.float32))


BROKEN_CACHES = {
    "garbage": _garbage,
    "foreign-npz": _foreign_npz,
    "truncated": _truncated,
    "empty": _empty,
    "misaligned": _misaligned,
    "nan": _nan,
    "plain-npy": _plain_npy,
}


@pytest.mark.parametrize("kind", sorted(BROKEN_CACHES))
def test_broken_cache_file_is_rebuilt_not_trusted(engine, cache_template, warm_site, monkeypatch, kind):
    _, cold = cache_template
    path = cache_path(warm_site)
    BROKEN_CACHES[kind](path)
    calls = encode_calls(monkeypatch, engine)
    watchlist = build(warm_site, engine)
    assert len(calls) == 4  # every photo encoded again
    assert watchlist.photo_counts == cold.photo_counts
    np.testing.assert_allclose(watchlist.gallery.encodings, cold.gallery.encodings, atol=1e-6)
    # the file was rewritten and is trusted again on the next start
    reopened = open_cache(warm_site.config())
    assert len(reopened) == 4
    calls.clear()
    build(warm_site, engine)
    assert calls == []


def test_cache_from_other_settings_is_rebuilt(cache_template, warm_site, monkeypatch):
    _, cold = cache_template
    warm_site.write_config("[recognition]\nenrol_jitters = 2\n")
    config = warm_site.config()
    assert config.recognition.enrol_jitters == 2
    other_engine = FaceEngine(config.recognition)
    calls = encode_calls(monkeypatch, other_engine)
    watchlist = build_watchlist(config, other_engine, open_cache(config))
    assert len(calls) == 4
    assert watchlist.photo_counts == cold.photo_counts
    # jittered encodings differ a little from the plain ones: they were really recomputed
    assert not np.array_equal(watchlist.gallery.encodings, cold.gallery.encodings)
    assert np.abs(watchlist.gallery.encodings - cold.gallery.encodings).max() < 0.2
    assert len(open_cache(config)) == 4


def test_a_cache_made_by_one_encoder_is_kept_by_the_other(engine, cache_template, warm_site, monkeypatch):
    """The opencv and dlib encoders give the same encodings (within 1e-5; test_encode holds them to 1e-3 on
    real photos), so switching encoder keeps the cache: nothing is encoded again, and what is served is
    what the other encoder would have computed."""
    _, cold = cache_template  # built by the default encoder, opencv
    assert engine.encoder.name == "opencv"
    warm_site.write_config('[recognition]\nencoder = "dlib"\n')
    config = warm_site.config()
    dlib_engine = FaceEngine(config.recognition)
    assert dlib_engine.encoder.name == "dlib"
    calls = encode_calls(monkeypatch, dlib_engine)
    served = build_watchlist(config, dlib_engine, open_cache(config))
    assert calls == []
    assert np.array_equal(served.gallery.encodings, cold.gallery.encodings)
    fresh = build_watchlist(config, dlib_engine, EncodingCache(warm_site.base / "no-cache", "fresh"))
    assert len(calls) == 4 and fresh.photo_counts == cold.photo_counts
    assert np.linalg.norm(fresh.gallery.encodings - served.gallery.encodings, axis=1).max() < 1e-3


def test_changing_enrol_min_face_size_is_not_served_from_cache(engine, warm_site, monkeypatch):
    """The 120 px photo's 43-52 px face is refused at enrol_min_face_size 60; at 40 it must enrol."""
    warm_site.write_config("[recognition]\nenrol_min_face_size = 40\n")
    config = warm_site.config()
    lower = FaceEngine(config.recognition)
    photo = warm_site.training / "3" / "small.jpg"
    # the photo is usable under the new setting ...
    assert lower.enrolment_encoding(load_photo(photo, MAX_PIXELS)).shape == (128,)
    # ... so the watchlist built under it must enrol it, not repeat the cached refusal
    watchlist = build_watchlist(config, lower, open_cache(config))
    assert problems_for(watchlist, photo) == []
    assert watchlist.photo_counts.get("3") == 1


def test_removed_person_is_dropped_from_cache_file(engine, warm_site):
    removed = {photo_digest(p.read_bytes()) for p in (warm_site.training / "1").iterdir()}
    assert removed <= cached_digests(warm_site)
    shutil.rmtree(warm_site.training / "1")
    watchlist = build(warm_site, engine)
    assert "1" not in watchlist.photo_counts
    digests = cached_digests(warm_site)
    assert not removed & digests
    assert len(digests) == 2  # Colin Powell's photo and the small-face refusal
    # nothing of the removed person's encodings is left in the file either
    with open_npz(cache_path(warm_site)) as data:
        assert data["encodings"].shape == (2, 128)


def test_cache_file_and_folder_are_private(cache_template):
    site, _ = cache_template
    path = cache_path(site)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if p.name != CACHE_FILE]  # no temp files left


def test_cache_folder_made_private_when_it_already_exists(engine, tmp_path):
    """Sites upgraded from the old layout already have TrainingImageLabel/ (0755)."""
    site = new_site(tmp_path)
    folder = site.base / "TrainingImageLabel"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    site.add_person("1", "Tony Blair", lfw_photos("Tony_Blair")[:1])
    build(site, engine)
    assert stat.S_IMODE((folder / CACHE_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# --- warm rebuild speed -------------------------------------------------------------------------


@pytest.mark.slow  # compares elapsed times (and a cold build of 30 photos takes a while)
def test_warm_rebuild_is_much_faster_than_cold(engine, tmp_path):
    site = new_site(tmp_path)
    people = [
        "Ariel_Sharon",
        "Arnold_Schwarzenegger",
        "Colin_Powell",
        "Donald_Rumsfeld",
        "George_W_Bush",
        "Gerhard_Schroeder",
        "Hugo_Chavez",
        "Jacques_Chirac",
        "Tony_Blair",
        "Vladimir_Putin",
    ]
    for number, person in enumerate(people, start=1):
        site.add_person(str(number), person, lfw_photos(person)[4:7])
    started = time.perf_counter()
    cold = build(site, engine)
    cold_seconds = time.perf_counter() - started
    started = time.perf_counter()
    warm = build(site, engine)  # a restart: the cache is read from its file again
    warm_seconds = time.perf_counter() - started
    assert len(cold.gallery) >= 28
    assert len(warm.gallery) == len(cold.gallery)
    assert np.array_equal(warm.gallery.encodings, cold.gallery.encodings)
    assert warm_seconds < cold_seconds / 5, (cold_seconds, warm_seconds)
