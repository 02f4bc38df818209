"""Enrolling the face of a capture: `edgeguard enroll --capture`, the detection log's "add as a photo"."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..config import Config
from ..faces.engine import FaceEngine
from ..store.face_captures import capture_to_photo
from ..watchlist.enrol import EnrolError, EnrolResult, enrol


def enrol_from_capture(
    config: Config,
    engine: FaceEngine,
    person_id: str,
    capture: Path,
    name: str | None = None,
    category: str | None = None,
) -> EnrolResult:
    """Enrol the face of a capture (cut from its full frame around the recorded box)."""
    with tempfile.TemporaryDirectory(prefix="edgeguard-") as tmp:  # the cut-out face must not linger
        try:
            photo = capture_to_photo(capture, Path(tmp), config.sealer)
        except ValueError as exc:
            raise EnrolError(str(exc)) from None
        return enrol(config, engine, person_id, [photo], name, category)
