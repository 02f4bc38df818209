"""Finding and reading the TOML config file; every failure is a `ConfigError` naming the file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ENV_CONFIG = "EDGEGUARD_CONFIG"
DEFAULT_LOCATIONS = (Path("edgeguard.toml"), Path("/etc/edgeguard/edgeguard.toml"))


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and key."""


def find_config_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The config file to use: --config, then $EDGEGUARD_CONFIG, then the default locations."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    for candidate in DEFAULT_LOCATIONS:
        if candidate.is_file():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
