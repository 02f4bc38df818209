"""Tests for the `edgeguard` command (edgeguard.cli), run as a real process on real photos:
analyze (JSON and human output), enroll, enroll --check, config errors, example-config, logs."""

from __future__ import annotations

import csv
import json
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomllib
from conftest import PEOPLE, TESTDATA, Site, held_apart, lfw_photos
from helpers import clean_env, edgeguard
from PIL import Image

from edgeguard.config import RecognitionConfig
from edgeguard.detectors.dlib_detector import DlibDetector
from edgeguard.faces.photos import load_photo
from edgeguard.watchlist.details import read_details

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_PIXELS = RecognitionConfig().max_image_pixels
TOLERANCE = RecognitionConfig().tolerance

OBAMA, BIDEN = "11", "22"  # numeric-looking Ids: they must still come out as strings
FACE_KEYS = {"box", "id", "name", "distance", "vetoed", "mask", "mask_score"}


# --- helpers ------------------------------------------------------------------------------


def run(
    config: Path | None,
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    python: list[str] | None = None,
) -> subprocess.CompletedProcess:
    """`python -m edgeguard [--config CONFIG] ARGS` (or the `python` command line) in `cwd`, with no config
    coming from the environment."""
    environ = clean_env(**(env or {}))
    if python is not None:
        return subprocess.run(python, capture_output=True, text=True, cwd=cwd, env=environ, timeout=300)
    return edgeguard(config, *args, cwd=cwd, env=environ, timeout=300)


def phones(site: Site) -> list[str]:
    """Every phone number in the site's Details.csv (with and without the leading +)."""
    with site.details.open(encoding="utf-8", newline="") as fh:
        numbers = [
            row["phone_number"].strip()
            for row in csv.DictReader(fh)
            if (row.get("phone_number") or "").strip()
        ]
    assert numbers, "the test site should hold phone numbers"
    return numbers + [n.lstrip("+") for n in numbers]


def assert_no_phone(site: Site, *results: subprocess.CompletedProcess) -> None:
    numbers = phones(site)
    for result in results:
        for number in numbers:
            assert number not in result.stdout, f"phone number {number} on stdout"
            assert number not in result.stderr, f"phone number {number} on stderr"


def json_lines(result: subprocess.CompletedProcess) -> list[dict]:
    """stdout as JSON lines: every line must be one JSON object, nothing else."""
    assert result.stdout.endswith("\n")
    lines = result.stdout.splitlines()
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects)
    return objects


def image_size(path: Path) -> tuple[int, int]:
    height, width = load_photo(path, MAX_PIXELS).shape[:2]
    return height, width


def check_result(obj: dict, image: Path) -> list[dict]:
    """The exact schema of one analysed image; returns its faces."""
    assert set(obj) == {"image", "count", "faces"}, obj
    assert obj["image"] == str(image)
    assert type(obj["count"]) is int and type(obj["faces"]) is list
    assert obj["count"] == len(obj["faces"])
    height, width = image_size(image)
    for face in obj["faces"]:
        assert set(face) == FACE_KEYS, face
        box = face["box"]
        assert type(box) is list and len(box) == 4 and all(type(v) is int for v in box), box
        top, right, bottom, left = box
        assert 0 <= top < bottom <= height and 0 <= left < right <= width, (box, (height, width))
        assert face["id"] is None or type(face["id"]) is str
        assert face["name"] is None or type(face["name"]) is str
        assert (face["id"] is None) == (face["name"] is None)
        assert face["distance"] is None or type(face["distance"]) is float
        if face["id"] is not None:
            assert face["distance"] is not None and 0.0 <= face["distance"] <= TOLERANCE
        assert type(face["mask"]) is bool and type(face["mask_score"]) is float, face
        assert 0.0 <= face["mask_score"] <= 1.0 and face["mask"] == (face["mask_score"] >= 0.5), face
    return obj["faces"]


def by_id(faces: list[dict]) -> dict[str | None, dict]:
    return {face["id"]: face for face in faces}


def stderr_levels(result: subprocess.CompletedProcess) -> set[str]:
    """The level of each log line ("date time LEVEL name: message")."""
    return {line.split(" ", 3)[2] for line in result.stderr.splitlines() if line.strip()}


# --- a watchlist with Obama and Biden, built once for the analyze tests ----------------------


@pytest.fixture(scope="module")
def watch(tmp_path_factory) -> Site:
    site = Site(tmp_path_factory.mktemp("watch") / "site")
    site.add_person(OBAMA, "Barack Obama", [PEOPLE / "obama.jpg"], "vip")
    site.add_person(BIDEN, "Joe Biden", [PEOPLE / "biden.jpg"], "staff")
    # An unusable watchlist photo: a warning on every start, so there is a log line to look at.
    site.add_photos(OBAMA, [TESTDATA / "crowd" / "dogs.jpg"])
    return site


GOOD = [
    PEOPLE / "obama2.jpg",
    PEOPLE / "two_people.jpg",
    PEOPLE / "lin-manuel-miranda.png",
    TESTDATA / "crowd" / "dogs.jpg",
]


@pytest.fixture(scope="module")
def analyzed(watch, tmp_path_factory) -> subprocess.CompletedProcess:
    return run(watch.config_path, "analyze", "--json", *map(str, GOOD), cwd=tmp_path_factory.mktemp("cwd"))


def test_analyze_json_one_object_per_image(watch, analyzed):
    assert analyzed.returncode == 0, analyzed.stderr
    objects = json_lines(analyzed)
    assert [o["image"] for o in objects] == [str(p) for p in GOOD]  # one per image, argument order
    obama2, two, lin, dogs = (check_result(o, p) for o, p in zip(objects, GOOD))

    assert len(obama2) == 1
    assert obama2[0]["id"] == OBAMA and obama2[0]["name"] == "Barack Obama"

    assert len(two) == 2
    faces = by_id(two)
    assert set(faces) == {OBAMA, BIDEN}
    assert faces[BIDEN]["name"] == "Joe Biden"
    biden_left = faces[BIDEN]["box"][3]
    obama_right = faces[OBAMA]["box"][1]
    assert biden_left > obama_right, "Biden stands on the right in two_people.jpg"

    assert len(lin) == 1
    assert lin[0]["id"] is None and lin[0]["name"] is None
    assert lin[0]["distance"] is not None and lin[0]["distance"] > TOLERANCE

    assert objects[3]["count"] == 0 and dogs == []
    assert [f["mask"] for f in obama2 + two + lin] == [False] * 4


def test_analyze_tells_masked_faces_and_finds_those_hog_misses(watch, tmp_path):
    """Held-apart photos training never saw: masked portraits (half of them HOG alone misses)
    and real bare faces.  Each masked portrait's subject is found and called masked."""
    masked = held_apart("synthetic", "with_mask", 10)
    bare = held_apart("real", "without_mask", 10)
    detector = DlibDetector("hog")
    missed = [p for p in masked if not detector.find(load_photo(p, MAX_PIXELS), 1)]
    assert len(missed) >= 3, "the masked portraits should include some HOG misses"

    result = run(watch.config_path, "analyze", "--json", *map(str, masked + bare), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    objects = json_lines(result)
    found = {Path(o["image"]): check_result(o, Path(o["image"])) for o in objects}
    subject = {
        path: max(faces, key=lambda f: f["box"][2] - f["box"][0]) for path, faces in found.items() if faces
    }
    assert sum(path in subject and subject[path]["mask"] for path in masked) >= 9
    assert all(path in subject for path in missed)
    called_bare = [not subject[path]["mask"] for path in bare if path in subject]
    assert len(called_bare) >= 5 and sum(called_bare) >= len(called_bare) - 1
    assert all(f["id"] is None for faces in found.values() for f in faces)


def test_analyze_without_the_mask_model(watch, tmp_path):
    config = tmp_path / "nomask.toml"
    config.write_text(
        watch.config_path.read_text(encoding="utf-8") + "\n[mask]\nenabled = false\n", encoding="utf-8"
    )
    masked = held_apart("synthetic", "with_mask", 10)
    result = run(config, "analyze", "--json", str(PEOPLE / "obama2.jpg"), *map(str, masked), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    objects = json_lines(result)
    faces = [f for o in objects for f in o["faces"]]
    assert faces[0]["id"] == OBAMA
    assert all(f["mask"] is None and f["mask_score"] is None for f in faces)
    # YuNet finds masked faces itself: without the model only the mask verdict is missing
    assert sum(o["count"] >= 1 for o in objects[1:]) >= 8, [o["count"] for o in objects]


def test_analyze_json_logs_warnings_only(watch, analyzed):
    """With --json, stderr has the watchlist warning (the dog photo) and no INFO lines."""
    assert stderr_levels(analyzed) == {"WARNING"}, analyzed.stderr
    assert "dogs.jpg" in analyzed.stderr
    assert_no_phone(watch, analyzed)


def test_analyze_unreadable_files_are_reported_and_the_rest_analysed(watch, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n", encoding="utf-8")
    missing = tmp_path / "missing.jpg"
    truncated = tmp_path / "truncated.jpg"
    data = (PEOPLE / "obama2.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    partial = PEOPLE / "obama_partial_face.jpg"  # the face box reaches past the left edge
    images = [PEOPLE / "obama2.jpg", text, missing, PEOPLE / "biden.jpg", truncated, partial]

    result = run(watch.config_path, "analyze", "--json", *map(str, images), cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    objects = json_lines(result)
    assert [o["image"] for o in objects] == [str(p) for p in images]
    for obj in (objects[1], objects[2], objects[4]):
        assert set(obj) == {"image", "error"}, obj
        assert type(obj["error"]) is str and obj["error"].strip()
    assert "not an image" in objects[1]["error"]
    assert "No such file" in objects[2]["error"]
    assert "truncated" in objects[4]["error"].lower()
    assert [f["id"] for f in check_result(objects[0], images[0])] == [OBAMA]
    assert [f["id"] for f in check_result(objects[3], images[3])] == [BIDEN]
    [edge] = check_result(objects[5], partial)  # clipped to the image
    assert edge["box"][3] == 0
    assert stderr_levels(result) <= {"WARNING"}
    assert_no_phone(watch, result)


def test_analyze_human_output_names_the_person(watch, tmp_path):
    images = [PEOPLE / "two_people.jpg", PEOPLE / "lin-manuel-miranda.png"]
    result = run(watch.config_path, "analyze", *map(str, images), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Barack Obama" in out and f"Id {OBAMA}" in out
    assert "Joe Biden" in out and f"Id {BIDEN}" in out
    assert "unknown" in out
    assert out.count(", no mask (0.") == 3
    assert f"{images[0]}: 2 face(s)" in out and f"{images[1]}: 1 face(s)" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.splitlines()[0])
    # Without --json the configured level (INFO) applies: the summary line is logged.
    assert "INFO" in stderr_levels(result)
    assert_no_phone(watch, result)


def test_config_selects_the_watchlist(watch, tmp_path):
    other = Site(tmp_path / "other")
    other.add_person("33", "Mr. President", [PEOPLE / "obama.jpg"])
    image = str(PEOPLE / "obama2.jpg")

    first = run(watch.config_path, "analyze", "--json", image, cwd=tmp_path)
    # --config wins over $EDGEGUARD_CONFIG
    second = run(
        other.config_path,
        "analyze",
        "--json",
        image,
        cwd=tmp_path,
        env={"EDGEGUARD_CONFIG": str(watch.config_path)},
    )

    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    [a] = json_lines(first)[0]["faces"]
    [b] = json_lines(second)[0]["faces"]
    assert (a["id"], a["name"]) == (OBAMA, "Barack Obama")
    assert (b["id"], b["name"]) == ("33", "Mr. President")
    assert_no_phone(watch, first, second)
    assert_no_phone(other, second)

    # A clean site: --check says so (the cache is warm from the analyze run).
    check = run(other.config_path, "enroll", "--check", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No problems found." in check.stdout
    assert "1 people enrolled from 1 photos" in check.stdout


# --- tight passport-style crops ----------------------------------------------------------------


# person -> which of their photos becomes the passport crop (the others are enrolled).
# Vladimir_Putin_0004's tight crop is missed by the detector without PHOTO_MARGIN.
PASSPORT = {"George_W_Bush": 0, "Tony_Blair": 0, "Colin_Powell": 0, "Vladimir_Putin": 3}
PASSPORT_PEOPLE = list(PASSPORT)


def passport_crop(photo: Path, target: Path) -> Path:
    """The central face of an LFW photo cropped to its detector box, resized to 100 px wide."""
    rgb = load_photo(photo, MAX_PIXELS)
    height, width = rgb.shape[:2]
    boxes = [d.box for d in DlibDetector("hog").find(rgb, 1)]
    assert boxes, photo
    box = min(boxes, key=lambda b: (b.center[0] - width / 2) ** 2 + (b.center[1] - height / 2) ** 2)
    box = box.clipped(height, width)
    crop = rgb[box.top : box.bottom, box.left : box.right]
    resized = cv2.resize(
        crop, (100, round(crop.shape[0] * 100 / crop.shape[1])), interpolation=cv2.INTER_AREA
    )
    Image.fromarray(np.ascontiguousarray(resized)).save(target, quality=95)
    return target


def test_tight_passport_crop_is_recognised(tmp_path):
    site = Site(tmp_path / "site")
    crops = []
    for i, person in enumerate(PASSPORT_PEOPLE):
        photos = lfw_photos(person)
        crop_from = photos.pop(PASSPORT[person])
        site.add_person(f"p{i}", person.replace("_", " "), photos[:4])
        crops.append(passport_crop(crop_from, tmp_path / f"{person}_passport.jpg"))
    assert all(Image.open(c).size[0] == 100 for c in crops)

    result = run(site.config_path, "analyze", "--json", *map(str, crops), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    for i, (obj, crop) in enumerate(zip(json_lines(result), crops)):
        faces = check_result(obj, crop)
        assert len(faces) == 1, (crop.name, faces)
        assert faces[0]["id"] == f"p{i}", (crop.name, faces)
        assert faces[0]["name"] == PASSPORT_PEOPLE[i].replace("_", " ")
    assert_no_phone(site, result)


# --- enroll --------------------------------------------------------------------------------


def test_enroll_flow(site, tmp_path):
    site.add_row(BIDEN, "Joe Biden", "staff")  # a row without photos yet
    text = tmp_path / "bad.jpg"
    text.write_text("not a photo\n", encoding="utf-8")
    good = [PEOPLE / "obama.jpg", PEOPLE / "obama_small.jpg"]
    photos = [good[0], text, PEOPLE / "two_people.jpg", good[1]]

    # A new Id with a name and category: the usable photos are copied in, the bad ones reported.
    first = run(
        site.config_path,
        "enroll",
        "7",
        *map(str, photos),
        "--name",
        "Barack Obama",
        "--category",
        "VIP",
        cwd=tmp_path,
    )
    assert first.returncode == 1, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert any(line.startswith(f"{text}: not added: ") and "not an image" in line for line in lines), (
        first.stdout
    )
    assert any(
        line.startswith(f"{PEOPLE / 'two_people.jpg'}: not added: ") and "2 faces" in line for line in lines
    ), first.stdout
    assert not any(str(p) in first.stdout for p in good), "usable photos are not reported as problems"
    assert "2 of 4" in first.stdout
    folder = site.training / "7"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in good)
    for photo in good:
        copy = folder / photo.name
        assert copy.read_bytes() == photo.read_bytes()
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    people, problems = read_details(site.details)
    assert people["7"].name == "Barack Obama"
    assert people["7"].category == "vip"
    assert people[BIDEN].name == "Joe Biden"  # the other row is kept
    assert not problems

    # An existing Id needs no --name, and its row keeps its name, phone and category.
    second = run(site.config_path, "enroll", BIDEN, str(PEOPLE / "biden.jpg"), cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 of 1" in second.stdout
    assert (site.training / BIDEN / "biden.jpg").is_file()
    people, problems = read_details(site.details)
    assert people[BIDEN].name == "Joe Biden" and people[BIDEN].category == "staff"
    assert people[BIDEN].details["phone_number"] == f"+15550100{BIDEN}"
    assert not problems

    # A new Id without --name, and an Id that is no folder name, are refused before anything is done.
    before = site.details.read_bytes()
    no_name = run(site.config_path, "enroll", "99", str(PEOPLE / "obama3.jpg"), cwd=tmp_path)
    assert no_name.returncode == 2
    assert "--name" in no_name.stderr and "99" in no_name.stderr
    assert len(no_name.stderr.strip().splitlines()) == 1
    bad_id = run(site.config_path, "enroll", "../x", str(PEOPLE / "obama3.jpg"), "--name", "X", cwd=tmp_path)
    assert bad_id.returncode == 2
    assert "../x" in bad_id.stderr
    assert site.details.read_bytes() == before
    assert not (site.training / "99").exists()
    assert not (site.base / "x").exists() and not (site.training.parent / "x").exists()
    assert sorted(p.name for p in site.training.iterdir()) == sorted(["7", BIDEN])

    # Enrolling warmed the cache: --check encodes nothing (dlib is never even imported) and
    # leaves the cache file as it is.
    cache_file = site.base / "TrainingImageLabel" / "encodings.npz"
    cached = cache_file.stat()
    script = (
        "import sys; from edgeguard.cli import main; rc = main(sys.argv[1:]); "
        "print('dlib imported' if 'dlib' in sys.modules else 'dlib not imported', file=sys.stderr); "
        "sys.exit(rc)"
    )
    check = run(
        None,
        cwd=tmp_path,
        python=[sys.executable, "-c", script, "--config", str(site.config_path), "enroll", "--check"],
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No problems found." in check.stdout
    assert "2 people enrolled from 3 photos" in check.stdout
    assert "dlib not imported" in check.stderr
    after = cache_file.stat()
    assert (after.st_ino, after.st_mtime_ns) == (cached.st_ino, cached.st_mtime_ns)

    # The enrolled people are recognised.
    analyze = run(
        site.config_path,
        "analyze",
        "--json",
        str(PEOPLE / "obama2.jpg"),
        str(PEOPLE / "two_people.jpg"),
        cwd=tmp_path,
    )
    assert analyze.returncode == 0, analyze.stderr
    obama2, two = json_lines(analyze)
    assert [(f["id"], f["name"]) for f in obama2["faces"]] == [("7", "Barack Obama")]
    assert set(by_id(two["faces"])) == {"7", BIDEN}

    assert_no_phone(site, first, second, no_name, bad_id, check, analyze)


def test_enroll_with_category_into_a_csv_without_that_column_leaves_it_clean(site, tmp_path):
    """The original 4-column Details.csv: enrolling with --category adds the column, and the
    rows already there must not turn into problems ("missing category") because of it."""
    site.details.write_text(
        "Id,Name,phone_number,initial_deposit\n12,Tony Blair,+1555010012,100\n", encoding="utf-8"
    )
    site.add_photos("12", [lfw_photos("Tony_Blair")[1]])

    enroll = run(
        site.config_path,
        "enroll",
        "7",
        str(PEOPLE / "obama_small.jpg"),
        "--name",
        "Barack Obama",
        "--category",
        "vip",
        cwd=tmp_path,
    )
    assert enroll.returncode == 0, enroll.stdout + enroll.stderr
    check = run(site.config_path, "enroll", "--check", cwd=tmp_path)

    people, problems = read_details(site.details)
    assert people["7"].category == "vip" and people["12"].name == "Tony Blair"
    assert people["12"].details["phone_number"] == "+1555010012"
    assert [str(p) for p in problems] == [], "enroll made the existing rows of Details.csv short"
    assert check.returncode == 0 and "No problems found." in check.stdout, check.stdout
    assert_no_phone(site, enroll, check)


def test_enroll_needs_an_id_and_photos(site, tmp_path):
    result = run(site.config_path, "enroll", "7", cwd=tmp_path)
    assert result.returncode == 2
    assert "PHOTO" in result.stderr
    assert not (site.training / "7").exists()


# --- enroll --check ------------------------------------------------------------------------


def test_enroll_check_lists_every_problem(site, tmp_path):
    site.add_person(OBAMA, "Barack Obama", [PEOPLE / "obama.jpg", TESTDATA / "crowd" / "dogs.jpg"])
    site.add_person(BIDEN, "Joe Biden", [PEOPLE / "biden.jpg", PEOPLE / "two_people.jpg"])
    broken = site.training / BIDEN / "broken.jpg"
    broken.write_text("not a photo\n", encoding="utf-8")
    with site.details.open("a", encoding="utf-8") as fh:
        fh.write(",Nobody,+15550177,100,\n")  # line 4: no Id
        fh.write(f"{OBAMA},Someone Else,+15550166,100,\n")  # line 5: duplicate Id
    site.add_photos("33", [lfw_photos("Tony_Blair")[0]])  # a folder without a row

    result = run(site.config_path, "enroll", "--check", cwd=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    lines = out.splitlines()

    def line_with(*parts: str) -> str:
        found = [line for line in lines if all(p in line for p in parts)]
        assert found, f"no line with {parts} in:\n{out}"
        return found[0]

    line_with(str(site.training / OBAMA / "dogs.jpg"), "no face found")
    line_with(str(site.training / BIDEN / "two_people.jpg"), "2 faces found")
    line_with(str(broken), "not an image")
    line_with(f"{site.details} line 4", "no Id")
    line_with(f"{site.details} line 5", "duplicate Id", OBAMA)
    line_with(str(site.training / "33"), "no row")
    assert "6 problem(s)" in out
    assert "No problems found." not in out
    assert "3 people enrolled from 3 photos" in out
    assert not any(str(PEOPLE / "obama.jpg") in line or line.endswith("biden.jpg") for line in lines)
    assert_no_phone(site, result)


# --- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, key",
    [
        ("[recognition]\nno_such_key = 1\n", "no_such_key"),
        ('[recognition]\ntolerance = "high"\n', "tolerance"),
        ("[camera]\nfps = 2.5\n", "fps"),
    ],
    ids=["unknown-key", "wrong-type-str", "wrong-type-float"],
)
def test_config_error_exits_78_with_one_line(site, tmp_path, extra, key):
    site.write_config(extra)
    for args in (["analyze", str(PEOPLE / "obama.jpg")], ["enroll", "--check"]):
        result = run(site.config_path, *args, cwd=tmp_path)
        assert result.returncode == 78, result.stderr
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert str(site.config_path) in lines[0] and key in lines[0]


def test_missing_config_file_exits_78(tmp_path):
    missing = tmp_path / "nowhere" / "edgeguard.toml"
    result = run(missing, "analyze", str(PEOPLE / "obama.jpg"), cwd=tmp_path)
    assert result.returncode == 78
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0]


# --- example-config --------------------------------------------------------------------------


def test_example_config_matches_the_committed_file(tmp_path):
    result = run(None, "example-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    committed = (REPO_ROOT / "edgeguard.example.toml").read_text(encoding="utf-8")
    assert tomllib.loads(result.stdout) == tomllib.loads(committed)
    assert result.stdout == committed
    # It is a config the command accepts as it is.
    example = tmp_path / "example.toml"
    example.write_text(result.stdout, encoding="utf-8")
    events = run(example, "events", cwd=tmp_path)
    assert events.returncode == 0, events.stderr
    # And it needs no config itself.
    assert run(tmp_path / "missing.toml", "example-config", cwd=tmp_path).stdout == committed


def test_enroll_takes_photos_after_its_options():
    from edgeguard.cli import _parse, _parser

    args = _parse(_parser(), ["enroll", "7", "--name", "Jane", "a.jpg", "--category", "staff", "b.jpg"])
    assert (args.id, args.name, args.category, args.photos) == ("7", "Jane", "staff", ["a.jpg", "b.jpg"])
    with pytest.raises(SystemExit):
        _parse(_parser(), ["events", "stray"])
