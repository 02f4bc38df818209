"""A capture's files, owned here: saving captured faces (unknown visitors, sightings of watchlist people) to
`Unknown_Face_Captures/`, reading them back by id, and keeping that folder within limits.

Each capture is three files sharing one stem, its id: `<id>-face.jpg` (the
best crop of the track), `<id>-frame.jpg` (the whole frame it came from) and
`<id>.json`, the sidecar (time, camera, location, box, best distance, the
encodings that voted).  Only this module builds or parses those names; the web,
the image links and feedback ask for a `Capture` by id (`CaptureFolder.get`),
or by what an event or a negative stored (`CaptureFolder.of`: the face image's
path or file name, as event logs have always kept it).  An id from a URL or a
link is checked (`check_id`) before any path is made of it, and a capture is
read only from its folder and never through a symlink.

They are biometric data: files 0600 in a 0700 folder, and, with `[privacy] encrypt` (the config's
`sealer`), each file is sealed with the data key for its own name (edgeguard.common.sealing): written sealed,
read back opened, so the web, the links and feedback get plain bytes; a plain file written before encryption
was on is read as it is.  A file that does not open (truncated, bit-flipped, renamed, another key) is a
`CaptureDamaged` naming it; the other captures stay readable.  Retention deletes
whole captures older than `retention_days`, then the oldest until the folder is
under `max_mb`.  A failed write (disk full, read-only card) is logged once,
reported to the caller, and never stops the pipeline.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from ..common.files import read_regular, write_private
from ..common.sealing import Sealer, SealError, seal, unseal
from ..config import Config
from ..detect import Box

log = logging.getLogger(__name__)

JPEG_QUALITY = 90
SAFE = re.compile(r"[^A-Za-z0-9_-]+")
FACE, FRAME, SIDECAR = "-face.jpg", "-frame.jpg", ".json"
IMAGES = {"face": FACE, "frame": FRAME}
MAX_ID = 160  # a stem is about 30 characters plus the camera's name and a track number
CAPTURE_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_ID - 1}}}")

Image = Literal["face", "frame"]


class CaptureError(Exception):
    """A capture cannot be read; str() says why (for the error page, the refusal or the log line)."""


class BadCaptureId(CaptureError, ValueError):
    """Not the id or file name of a capture (empty, too long, a path, a dot, a NUL...): nothing was opened."""


class CaptureGone(CaptureError):
    """A file of the capture does not exist (retention may have deleted it)."""


class SidecarDamaged(CaptureError):
    """The sidecar is there but is not the JSON object a capture is saved with."""


class CaptureDamaged(CaptureError):
    """A file of the capture is encrypted but does not open (truncated, bit-flipped, renamed, another key)."""


def file_role(name: str) -> str:
    """What a capture file's bytes are sealed for: its name, so a file moved to another name does not open."""
    return f"capture/{name}"


def check_id(capture_id: str) -> str:
    """`capture_id` if it is a capture's id (letters, digits, _ and -, not first, at most MAX_ID); else
    BadCaptureId.  Every id from a URL, a link or a stored event goes through here before a path is made."""
    if not isinstance(capture_id, str) or not CAPTURE_ID.fullmatch(capture_id):
        raise BadCaptureId(f"{str(capture_id)[:MAX_ID]!r} is not a capture id")
    return capture_id


def parse_name(name: str) -> tuple[str, str]:
    """A capture file's name as (id, part): part "face", "frame" or "sidecar"; BadCaptureId otherwise."""
    for part, suffix in (*IMAGES.items(), ("sidecar", SIDECAR)):
        if isinstance(name, str) and name.endswith(suffix):
            return check_id(name.removesuffix(suffix)), part
    raise BadCaptureId(f"{str(name)[:MAX_ID]!r} is not the name of a capture's file")


def capture_id(stored: str | Path | None) -> str | None:
    """The id of the capture that `stored` names (a path or file name of any of its files, as an event or a
    negative keeps it), or None when it names none."""
    if not stored:
        return None
    try:
        return parse_name(Path(stored).name)[0]
    except BadCaptureId:
        return None


def name_problem(name: str) -> str:
    """Why `name` is not a plain file name of the captures folder, or "" if it is one (signed links carry one;
    whether it is a capture's image is decided when it is served, by `CaptureFolder.image_named`)."""
    if not name:
        return "empty name"
    if any(bad in name for bad in ("/", "\\", "\0")):
        return "not a plain file name"
    if name.startswith("."):
        return "starts with a dot"
    return ""


@dataclass(frozen=True)
class Capture:
    """One capture in its folder, by id; its files are read only through `read` and `sidecar_data`."""

    id: str
    folder: Path
    sealer: Sealer | None = field(default=None, repr=False, compare=False)

    @property
    def face(self) -> Path:
        return self.folder / f"{self.id}{FACE}"

    @property
    def frame(self) -> Path:
        return self.folder / f"{self.id}{FRAME}"

    @property
    def sidecar(self) -> Path:
        return self.folder / f"{self.id}{SIDECAR}"

    def image(self, which: Image) -> Path:
        return self.face if which == "face" else self.frame

    def check(self) -> None:
        """CaptureGone unless its face image is there; CaptureError if it is a symlink or not a regular
        file."""
        try:
            mode = os.lstat(self.face).st_mode
        except FileNotFoundError:
            raise CaptureGone(f"{self.face.name} is missing") from None
        except OSError as exc:
            raise CaptureError(f"{self.face.name}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(mode):
            raise CaptureError(f"{self.face.name}: a symbolic link, not followed")
        if not stat.S_ISREG(mode):
            raise CaptureError(f"{self.face.name}: not a regular file")

    def exists(self) -> bool:
        """Whether its face image is there as a regular file (a symlink is not)."""
        try:
            self.check()
        except CaptureError:
            return False
        return True

    def read(self, which: Image) -> bytes:
        """The bytes of its face or frame image; CaptureGone, or CaptureError for a symlink or a non-file."""
        return self._bytes(self.image(which))

    def sidecar_data(self) -> dict[str, Any]:
        """Its sidecar, parsed: CaptureGone if missing, CaptureError if unsafe or unreadable, else
        SidecarDamaged if it is not a JSON object."""
        data = self._bytes(self.sidecar)
        try:
            meta = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SidecarDamaged(str(exc)) from None
        if not isinstance(meta, dict):
            raise SidecarDamaged("not an object")
        return meta

    def frame_image(self) -> np.ndarray:
        """Its frame, decoded (BGR); CaptureError if it is missing, unsafe or not an image."""
        image = cv2.imdecode(np.frombuffer(self.read("frame"), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise CaptureError(f"its frame image {self.frame.name} is not a readable image")
        return image

    def _bytes(self, path: Path) -> bytes:
        try:
            data = read_regular(path)
        except FileNotFoundError:
            raise CaptureGone(f"{path.name} is missing") from None
        except OSError as exc:
            raise CaptureError(f"{path.name}: {exc.strerror or exc}") from None
        try:
            return unseal(self.sealer, data, file_role(path.name))
        except SealError as exc:
            raise CaptureDamaged(f"{path.name}: {exc}") from None


class CaptureFolder:
    """The captures of one folder, read by id; nothing outside this folder is ever opened."""

    def __init__(self, folder: Path, sealer: Sealer | None = None) -> None:
        self.folder = folder
        self.sealer = sealer

    @classmethod
    def of_config(cls, config: Config) -> CaptureFolder:
        """The captures folder of a configuration, with its data key (when encryption is on)."""
        return cls(config.paths.captures, config.sealer)

    def get(self, capture_id: str) -> Capture:
        """The capture `capture_id` (BadCaptureId for anything but a capture's id); its files may be gone."""
        return Capture(check_id(capture_id), self.folder, self.sealer)

    def kept(self, stored: str) -> bool:
        """Whether the capture an event or a sighting names (its face image's path) is still there."""
        capture = self.of(stored)
        return capture is not None and capture.exists()

    def of(self, stored: str | Path | None) -> Capture | None:
        """The capture an event or a negative names (the path or file name it stored), or None."""
        found = capture_id(stored)
        return None if found is None else Capture(found, self.folder, self.sealer)

    def image_named(self, name: str) -> bytes:
        """The bytes of the capture image file `name` (`<id>-face.jpg` or `<id>-frame.jpg`) in this folder:
        BadCaptureId for any other name, CaptureGone or CaptureError when it cannot be read."""
        found, part = parse_name(name)
        if part not in IMAGES:
            raise BadCaptureId(f"{name} is not a capture's image")
        return Capture(found, self.folder, self.sealer).read(part)  # type: ignore[arg-type]

    def delete(self, capture: Capture) -> list[str]:
        """Delete the files of `capture` (never through a symlink: a link itself is removed); their names."""
        removed = []
        for path in (capture.face, capture.frame, capture.sidecar):
            if os.path.lexists(path):
                path.unlink()
                removed.append(path.name)
        return removed

    def of_person(self, person_id: str) -> list[Capture]:
        """The captures whose sidecar names the watchlist person `person_id` (sightings); a sidecar that
        cannot be read is logged by name and passed over."""
        found = []
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob(f"*{SIDECAR}")):
            capture = self.of(path)
            if capture is None:
                continue
            try:
                person = capture.sidecar_data().get("person")
            except CaptureError as exc:
                log.warning("%s: passed over: %s", path.name, exc)
                continue
            if isinstance(person, dict) and str(person.get("id")) == person_id:
                found.append(capture)
        return found

    def image_name(self, path: Path) -> str | None:
        """The file name of `path` if it is a capture's face or frame image in this folder, else None."""
        try:
            part = parse_name(path.name)[1]
        except BadCaptureId:
            return None
        same_folder = path.parent.resolve() == self.folder.resolve()
        return path.name if same_folder and part in IMAGES else None


@dataclass(frozen=True)
class SavedCapture:
    face: Path
    frame: Path
    sidecar: Path


class CaptureStore(CaptureFolder):
    """The captures folder of the daemon: saving, and retention."""

    def __init__(
        self, folder: Path, retention_days: float, max_mb: float, sealer: Sealer | None = None
    ) -> None:
        super().__init__(folder, sealer)
        self.retention_seconds = retention_days * 86400
        self.max_bytes = int(max_mb * 1024 * 1024)
        self._failing = False

    def save(
        self, when: float, camera: str, crop: np.ndarray, frame: np.ndarray, sidecar: dict[str, Any]
    ) -> SavedCapture | str:
        """Write a capture; returns its files, or the reason it could not be written."""
        stamp = datetime.fromtimestamp(when).strftime("%Y%m%d-%H%M%S")
        stem = f"{stamp}-{int(when * 1000) % 1000:03d}-{SAFE.sub('_', camera)}"[:MAX_ID]
        capture = Capture(stem, self.folder)
        if os.path.lexists(capture.sidecar):  # two faces decided on one frame: never overwrite
            capture = Capture(f"{stem}-{SAFE.sub('_', str(sidecar.get('track', 'x')))}"[:MAX_ID], self.folder)
        saved = SavedCapture(capture.face, capture.frame, capture.sidecar)
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._write(saved.face, encode_jpeg(crop))
            self._write(saved.frame, encode_jpeg(frame))
            self._write(saved.sidecar, json.dumps(sidecar, indent=2).encode())
        except (OSError, ValueError, cv2.error) as exc:
            for path in (saved.face, saved.frame, saved.sidecar):
                try:
                    path.unlink(missing_ok=True)
                except OSError:
                    pass  # the folder itself is unusable: nothing was written
            reason = f"capture not saved: {exc}"
            if not self._failing:
                log.error(
                    "%s (%s); events go on without captures until writing works again", reason, self.folder
                )
            self._failing = True
            return reason
        if self._failing:
            log.info("captures are being saved again in %s", self.folder)
            self._failing = False
        return saved

    def _write(self, path: Path, data: bytes) -> None:
        write_private(path, seal(self.sealer, data, file_role(path.name)))

    def enforce_retention(self, now: float | None = None) -> int:
        """Delete captures past the age limit, then the oldest over the size limit; returns how many.

        The newest capture is kept whatever its size: it is the one a guard may be looking at.
        """
        now = time.time() if now is None else now
        groups = self._groups()
        removed = 0
        total = sum(size for _, size, _ in groups)
        for mtime, size, files in groups[:-1]:  # oldest first, never the newest
            if now - mtime <= self.retention_seconds and total <= self.max_bytes:
                break
            for path in files:
                path.unlink(missing_ok=True)
            total -= size
            removed += 1
        if groups and now - groups[-1][0] > self.retention_seconds:  # the newest is past the age limit too
            for path in groups[-1][2]:
                path.unlink(missing_ok=True)
            removed += 1
        if removed:
            log.info("retention: deleted %d old capture(s) from %s", removed, self.folder)
        return removed

    def prune_for_space(self, free_bytes: int) -> int:
        """Delete the oldest captures (never the newest) until the disk has `free_bytes` free; how many."""
        removed = 0
        for _, _, files in self._groups()[:-1]:
            if shutil.disk_usage(self.folder).free >= free_bytes:
                break
            for path in files:
                path.unlink(missing_ok=True)
            removed += 1
        return removed

    def _groups(self) -> list[tuple[float, int, list[Path]]]:
        """Captures as (time, bytes, files), oldest first."""
        by_stem: dict[str, list[Path]] = {}
        if not self.folder.is_dir():
            return []
        for path in self.folder.iterdir():
            found = capture_id(path.name)
            if found is not None and not path.is_dir():
                by_stem.setdefault(found, []).append(path)
        groups = []
        for files in by_stem.values():
            stats = [p.lstat() for p in files]
            groups.append((min(s.st_mtime for s in stats), sum(s.st_size for s in stats), files))
        return sorted(groups, key=lambda g: g[0])


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """`image` (BGR) as JPEG bytes; ValueError if it cannot be encoded (empty, wrong shape)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def capture_to_photo(path: Path, folder: Path, sealer: Sealer | None = None) -> Path:
    """The full frame of the capture `path` names (any of its files), cut to the face with a generous margin,
    as a photo in `folder`.

    The saved face crop is tight and small; enrolment gets a better encoding from
    the frame, cut around the box recorded in the sidecar.
    """
    capture = CaptureFolder(path.parent, sealer).of(path)
    if capture is None:
        raise ValueError(f"{path}: not a capture's file (<id>-face.jpg, <id>-frame.jpg or <id>.json)")
    try:
        top, right, bottom, left = capture.sidecar_data()["box"]
    except (CaptureError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{path}: not a capture with a readable sidecar {capture.sidecar.name} ({exc})"
        ) from None
    try:
        frame = capture.frame_image()
    except CaptureError as exc:
        raise ValueError(f"{path}: its frame image {capture.frame.name} cannot be used ({exc})") from None
    box = Box(top, right, bottom, left)
    cut = box.grown(max(box.width, box.height)).crop(frame)
    target = folder / f"{capture.id}.jpg"
    write_private(target, encode_jpeg(cut))
    return target
