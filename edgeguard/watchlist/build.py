"""The watchlist: people from Details.csv, encodings from their photos in TrainingImage/<Id>/.

`build_watchlist` turns the site folders into an immutable `Watchlist`, using
the encoding cache for photos it has seen before and recording every photo,
folder and CSV row it could not use as a `Problem` (each logged once).  The
negatives from feedback (edgeguard.watchlist.negatives) come with it: a face
nearer to one of a person's negatives than to that person's photos is not
named as them (`Identity.vetoed` says who it would have been).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.files import UnsafeFile, read_regular
from ..common.match_rule import MatchDecision, MatchThresholds
from ..config import Config
from ..faces.encode import ENCODER_SIGNATURE
from ..faces.engine import FaceEngine
from ..faces.matching import Gallery
from ..faces.photos import PHOTO_SUFFIXES, PhotoError, is_image_name, is_photo_name, load_photo
from .cache import CacheEntry, EncodingCache, photo_digest
from .details import Person, Problem, read_details
from .negatives import folder_of, load_negatives

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """Who a face is: a watchlist person, or None for unknown, with the nearest distance and the decision
    (edgeguard.common.match_rule: MATCH when `person` is named, else UNCERTAIN or UNKNOWN).

    `vetoed`: the nearest person, within the tolerance, whom feedback ruled out
    (the face is nearer to one of their negatives than to their photos); then
    `person` is None, `distance` the distance to that person's photos, and the
    decision UNCERTAIN.
    """

    person: Person | None
    distance: float | None
    vetoed: Person | None = None
    match: MatchDecision = MatchDecision.UNKNOWN


class Watchlist:
    """People, their photo encodings and the match thresholds; never changed once built."""

    def __init__(
        self,
        people: dict[str, Person],
        encodings: dict[str, list[np.ndarray]],
        problems: list[Problem],
        thresholds: MatchThresholds,
        negatives: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.people = people
        self.problems = problems
        self.thresholds = thresholds
        self.photo_counts = {pid: len(encs) for pid, encs in encodings.items() if encs}
        self._owners = [pid for pid in self.photo_counts]
        rows = [e for pid in self._owners for e in encodings[pid]]
        owner_index = [i for i, pid in enumerate(self._owners) for _ in encodings[pid]]
        self.gallery = Gallery(np.array(rows, dtype=np.float32).reshape(-1, 128), np.array(owner_index))
        # negatives of the people who can be recognised, labelled with the same owner index as their photos
        negatives = (
            {pid: negatives[pid] for pid in self._owners if len(negatives.get(pid, ()))} if negatives else {}
        )
        self.negative_counts = {pid: len(encs) for pid, encs in negatives.items()}
        owner_of = {pid: i for i, pid in enumerate(self._owners)}
        self.negatives = Gallery(
            np.concatenate(list(negatives.values())) if negatives else np.zeros((0, 128)),
            np.array([owner_of[pid] for pid, encs in negatives.items() for _ in encs], dtype=np.int64),
        )

    @property
    def enrolled(self) -> int:
        """How many people can be recognised (they have at least one usable photo)."""
        return len(self._owners)

    def identify(self, encodings: np.ndarray) -> list[Identity]:
        """Nearest person for each encoding, named when the thresholds call it a match."""
        out = []
        matches = self.gallery.nearest(encodings) if len(encodings) else []
        vetoes = self.negatives.nearest_of(encodings, [m.owner for m in matches]) if len(matches) else []
        for match, veto in zip(matches, vetoes, strict=True):
            if match.owner < 0:  # nobody to compare with
                out.append(Identity(None, None))
                continue
            decision = self.thresholds.decide(match.distance)
            nearest = self.people[self._owners[match.owner]]
            if decision is MatchDecision.MATCH and veto < match.distance:  # feedback: not this person
                out.append(Identity(None, match.distance, nearest, MatchDecision.UNCERTAIN))
            elif decision is MatchDecision.MATCH:
                out.append(Identity(nearest, match.distance, match=MatchDecision.MATCH))
            else:
                out.append(Identity(None, match.distance, match=decision))
        return out


def cache_signature(config: Config) -> str:
    """Everything that decides what a photo yields; a change invalidates the cache."""
    r = config.recognition
    return (
        f"{ENCODER_SIGNATURE}|{r.detector}|s{r.detector_score}|up{r.upsample}|min{r.enrol_min_face_size}"
        f"|side{r.max_detect_side}|px{r.max_image_pixels}|j{r.enrol_jitters}"
    )


def open_cache(config: Config) -> EncodingCache:
    cache = EncodingCache(config.paths.encodings_cache, cache_signature(config), config.sealer)
    cache.load()
    return cache


def build_watchlist(
    config: Config, engine: FaceEngine, cache: EncodingCache, logged: set[str] | None = None
) -> Watchlist:
    """Read Details.csv and every photo; unusable ones become problems, each logged once.

    With `logged` (the problems logged by earlier builds of a running daemon,
    updated here), a problem is logged again only once its photo has changed,
    or after it was gone for a build.
    """
    people, problems = read_details(config.paths.details_csv)
    folders, folder_problems = scan_photos(config.paths.training_images)
    problems += folder_problems
    for pid in sorted(set(folders) - set(people)):
        problems.append(
            Problem(
                f"{config.paths.training_images / pid}",
                f"no row for Id {pid} in Details.csv; the folder name is used as the name",
            )
        )
        people[pid] = Person(pid, pid)
    encodings: dict[str, list[np.ndarray]] = {}
    seen: set[str] = set()
    for pid, photos in sorted(folders.items()):
        encodings[pid] = []
        for photo in photos:
            result = encode_photo_cached(photo, config, engine, cache, seen)
            if isinstance(result, Problem):
                problems.append(result)
            else:
                encodings[pid].append(result)
    for pid in sorted(people):
        if not encodings.get(pid):
            problems.append(
                Problem(
                    f"{config.paths.details_csv}",
                    f"Id {pid} has no usable photo in "
                    f"{config.paths.training_images / pid}/; this person cannot be recognised",
                )
            )
    _save_cache(cache, seen)
    negatives, negative_problems = load_negatives(folder_of(config))
    problems += negative_problems
    _log_new(problems, logged if logged is not None else set())
    watchlist = Watchlist(people, encodings, problems, config.match_thresholds, negatives)
    log.info(
        "watchlist: %d people enrolled from %d photos, %d problems%s",
        watchlist.enrolled,
        len(watchlist.gallery),
        len(problems),
        f", {len(watchlist.negatives)} negatives from feedback" if len(watchlist.negatives) else "",
    )
    return watchlist


def scan_photos(root: Path) -> tuple[dict[str, list[Path]], list[Problem]]:
    """Photo files per Id folder, and the pictures that are in the wrong place or of the wrong kind.

    Files that are no pictures at all (a README, Thumbs.db, desktop.ini, hidden
    files) are passed over without a word: they are not meant for the watchlist.
    """
    folders: dict[str, list[Path]] = {}
    problems: list[Problem] = []
    if not root.is_dir():
        return folders, [Problem(str(root), "folder not found: no photos")]
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            if entry.is_dir() or is_image_name(entry):
                problems.append(
                    Problem(str(entry), "a symbolic link, not followed: put the folder or photo itself here")
                )
            continue
        if entry.is_file() and is_image_name(entry):
            problems.append(
                Problem(str(entry), f"photos belong in a folder per person: {root}/<Id>/{entry.name}")
            )
        elif entry.is_dir():
            folders[entry.name] = _photos_in(entry, problems)
    return folders, problems


def _photos_in(folder: Path, problems: list[Problem]) -> list[Path]:
    photos = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "~")) or not (path.is_file() or path.is_symlink()):
            continue  # a link is kept here so that reading it refuses it with a reason
        if is_photo_name(path):
            photos.append(path)
        elif is_image_name(path):
            problems.append(
                Problem(str(path), f"not a photo type that is read ({', '.join(sorted(PHOTO_SUFFIXES))})")
            )
    return photos


def encode_photo_cached(
    photo: Path, config: Config, engine: FaceEngine, cache: EncodingCache, seen: set[str]
) -> np.ndarray | Problem:
    """A photo's encoding from the cache, or computed (and cached) now."""
    try:
        data = read_regular(photo)
    except OSError as exc:
        return Problem(
            str(photo), exc.strerror if isinstance(exc, UnsafeFile) else f"cannot read: {exc.strerror or exc}"
        )
    digest = photo_digest(data)
    seen.add(digest)
    entry = cache.get(digest)
    if entry is None:
        entry = encode_photo(photo, config, engine)
        cache.put(digest, entry)
    if entry.encoding is None:
        return Problem(str(photo), entry.error, version=digest)
    return entry.encoding


def encode_photo(photo: Path, config: Config, engine: FaceEngine) -> CacheEntry:
    """Load a watchlist photo and encode its one face, or say why it cannot be used."""
    try:
        rgb = load_photo(photo, config.recognition.max_image_pixels)
        return CacheEntry(engine.enrolment_encoding(rgb))
    except PhotoError as exc:
        return CacheEntry(None, str(exc))


def _log_new(problems: list[Problem], logged: set[str]) -> None:
    current = {problem.key for problem in problems}
    for problem in problems:
        if problem.key not in logged:
            log.warning("watchlist: %s", problem)
    logged.clear()
    logged.update(current)


def _save_cache(cache: EncodingCache, keep: set[str]) -> None:
    try:
        cache.save(keep)
    except OSError as exc:
        log.error("encoding cache %s not saved (%s); the next start will re-encode", cache.path, exc)
