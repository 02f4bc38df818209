"""Adding people and photos to the watchlist: `edgeguard enroll` from photos
(edgeguard.review: from a capture).

A photo is checked exactly as the watchlist will check it (the same loading,
detection and size rules) before it is copied in, so a photo that is added is
a photo that is used; its encoding goes into the cache at once.  The site
folders stay the single truth: the running daemon notices the new files and
reloads as it does for hand edits.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..common.files import private_folder, write_private
from ..config import Config
from ..faces.engine import FaceEngine
from ..faces.photos import is_photo_name
from . import details
from .build import encode_photo, open_cache
from .cache import EncodingCache, photo_digest
from .details import VALID_ID, read_details, upsert_person
from .negatives import NegativesError, folder_of, remove_all


class EnrolError(Exception):
    """The enrolment cannot be done at all (a bad Id, a new Id without a name, an unreadable capture)."""


@dataclass
class EnrolResult:
    added: list[Path] = field(default_factory=list)  # the copies in TrainingImage/<Id>/
    refused: list[tuple[Path, str]] = field(default_factory=list)  # (photo given, why it cannot be used)


def enrol(
    config: Config,
    engine: FaceEngine,
    person_id: str,
    photos: list[Path],
    name: str | None = None,
    category: str | None = None,
    phone: str | None = None,
) -> EnrolResult:
    """Add the usable ones of `photos` to `person_id` (a new person needs `name`); Details.csv
    gets the row, or its Name and category updated, once at least one photo was added."""
    if not VALID_ID.match(person_id):
        raise EnrolError(f"Id {person_id!r} cannot be a folder name (letters, digits, _ . - only)")
    people, _ = read_details(config.paths.details_csv)
    if person_id not in people and not name:
        raise EnrolError(f"Id {person_id} is not in {config.paths.details_csv}; give --name")
    cache = open_cache(config)
    result = EnrolResult()
    for photo in photos:
        copied = _add_photo(config, engine, cache, person_id, photo)
        if isinstance(copied, Path):
            result.added.append(copied)
        else:
            result.refused.append((photo, copied))
    if result.added:
        try:
            upsert_person(config.paths.details_csv, person_id, name, category, phone)
        except (OSError, ValueError) as exc:
            raise EnrolError(
                f"the photos were added to {config.paths.training_images / person_id}, but "
                f"{config.paths.details_csv} could not be updated: {exc}"
            ) from None
        cache.save(keep=_photo_digests(config.paths.training_images))
    return result


def _add_photo(
    config: Config, engine: FaceEngine, cache: EncodingCache, person_id: str, photo: Path
) -> Path | str:
    """Check one photo as the watchlist would, then copy it in privately; the copy, or why it is unusable."""
    if not is_photo_name(photo):
        return "not a .jpg, .jpeg, .png or .webp file"
    source = photo.resolve()  # a photo given to enrol may be a link; the copy made of it never is
    try:
        data = source.read_bytes()
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    entry = encode_photo(source, config, engine)
    if entry.encoding is None:
        return entry.error
    folder = config.paths.training_images / person_id
    private_folder(folder)
    target = _free_name(folder, photo.name)
    write_private(target, data)
    cache.put(photo_digest(data), entry)
    return target


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, suffix, n = target.stem, target.suffix, 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    return target


def _photo_digests(root: Path) -> set[str]:
    return {photo_digest(p.read_bytes()) for p in root.rglob("*") if p.is_file() and is_photo_name(p)}


def update_person(
    config: Config, person_id: str, name: str | None, category: str | None, phone: str | None
) -> None:
    """Change a person's Name, category or phone number in Details.csv."""
    try:
        upsert_person(config.paths.details_csv, person_id, name, category, phone)
    except (OSError, ValueError) as exc:
        raise EnrolError(f"{config.paths.details_csv} could not be updated: {exc}") from None


def remove_person(config: Config, person_id: str) -> None:
    """Delete a person: their photos, their negatives from feedback and their row; the running watchlist
    reloads without them."""
    if not VALID_ID.match(person_id):
        raise EnrolError(f"Id {person_id!r} is not a watchlist Id")
    folder = config.paths.training_images / person_id
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    try:
        remove_all(folder_of(config), person_id)
    except (OSError, NegativesError) as exc:
        raise EnrolError(
            f"the photos were deleted, but the negatives of Id {person_id} could not be: {exc}"
        ) from None
    try:
        details.remove_person(config.paths.details_csv, person_id)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise EnrolError(
            f"the photos were deleted, but {config.paths.details_csv} could not be updated: {exc}"
        ) from None


def drop_unused_encodings(config: Config) -> int:
    """Rewrite the encoding cache without the entries of photos that are gone (a removed person's); how many
    were dropped."""
    cache = open_cache(config)
    before = len(cache)
    cache.save(keep=_photo_digests(config.paths.training_images))
    return before - len(cache)


def person_photos(config: Config, person_id: str) -> list[Path]:
    """The photo files of a person, in name order (symlinks and other files left out)."""
    folder = config.paths.training_images / person_id
    if not VALID_ID.match(person_id) or not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if is_photo_name(p) and p.is_file() and not p.is_symlink())


def remove_photo(config: Config, person_id: str, name: str) -> None:
    """Delete one photo of a person (a plain file name of their folder only)."""
    match = [p for p in person_photos(config, person_id) if p.name == name]
    if not match:
        raise EnrolError(f"Id {person_id} has no photo {name!r}")
    match[0].unlink()
