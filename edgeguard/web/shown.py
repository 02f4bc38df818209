"""What a page may show of the site's files and cameras: the one place that turns a problem, an error about a
site file, a camera's or an output's status into what the logged-in user may see.

Viewers see no file system path.  A path in one of the site's folders (the
site folder, TrainingImage/, Details/, the encoding cache with its negatives)
is shown relative to the site ("TrainingImage/11/dogs.jpg"), any other
absolute path by its file name; a camera by its name, location and state,
never its source (a file camera's clip path, a stream's address, redacted or
not).  Admins see the text as it is logged, with full paths and the
(redacted) source: they are the ones who fix the files and the cameras.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ..config import Config
from ..outputs.base import OutputStatus
from ..watchlist.details import Problem
from ..watchlist.negatives import folder_of
from .context import CameraStatus

# An absolute path in a message: a "/" at the start or after a space, quote, bracket or "=", up to a space,
# a colon, a quote or a bracket.
START = r"(?<![^\s'\"(\[=])"
END = r"[\s:;,()'\"<>\[\]]"
ABSOLUTE_PATH = re.compile(rf"{START}/(?:(?!{END}).)+")


def site_text(text: str, config: Config, admin: bool) -> str:
    """`text` (a problem, an error about a site file) as the user may see it."""
    if admin:
        return text
    for root, label in _roots(config):
        text = re.sub(
            rf"{START}{re.escape(root)}(/|(?={END}|$))",
            lambda found, label=label: (label + found.group(1)) if label else ("" if found.group(1) else "."),
            text,
        )
    return ABSOLUTE_PATH.sub(lambda found: PurePosixPath(found.group()).name or "/", text)


def problem_text(problem: Problem, config: Config, admin: bool) -> str:
    return site_text(str(problem), config, admin)


def cameras_shown(cameras: Iterable[CameraStatus], admin: bool) -> list[CameraStatus]:
    """The cameras' status without their source for a viewer."""
    return [c if admin else dataclasses.replace(c, description="") for c in cameras]


def outputs_shown(outputs: Iterable[OutputStatus], config: Config, admin: bool) -> list[OutputStatus]:
    """The outputs' status with their fault and state as the user may see them (an output's error can name a
    file, an outbox's SQLite file say)."""
    return [
        dataclasses.replace(
            o, fault=site_text(o.fault, config, admin), state=site_text(o.state, config, admin)
        )
        for o in outputs
    ]


def _roots(config: Config) -> list[tuple[str, str]]:
    """The site's folders as (absolute path, what a viewer sees instead), the deepest first, each also as
    its resolved path (a site folder reached through a symbolic link)."""
    paths = config.paths
    base = paths.base_dir
    folders = [paths.training_images, paths.details_csv.parent, paths.encodings_cache, folder_of(config)]
    roots: dict[str, str] = {}
    for folder in (*folders, base):
        label = _relative(folder, base)
        for form in (folder, folder.resolve()):
            roots.setdefault(str(form).rstrip("/"), label)
    return sorted(roots.items(), key=lambda root: len(root[0]), reverse=True)


def _relative(folder: Path, base: Path) -> str:
    """`folder` relative to the site folder ("" for the site folder itself), or its own name when it is
    elsewhere."""
    for inside, top in ((folder, base), (folder.resolve(), base.resolve())):
        if inside.is_relative_to(top):
            relative = inside.relative_to(top).as_posix()
            return "" if relative == "." else relative
    return folder.name
