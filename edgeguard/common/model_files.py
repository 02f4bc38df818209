"""The one check of a model file shipped in the package: its SHA-256 against the one recorded beside it."""

from __future__ import annotations

import hashlib
from pathlib import Path


def model_problem(path: Path, sha256: str, what: str) -> str | None:
    """Why `path` is not the packaged `what` model, byte for byte, in one line; None when it is."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return f"{what} model {path}: {exc.strerror or exc}; reinstall EdgeGuard"
    if digest != sha256:
        return (
            f"{what} model {path}: checksum {digest[:12]}... is not {sha256[:12]}... "
            "(damaged or replaced); reinstall EdgeGuard"
        )
    return None
