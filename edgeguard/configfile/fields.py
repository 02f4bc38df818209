"""Config fields and their validation: each dataclass field carries its default, help and limits.

`option()` declares a field; `build_section()` turns a TOML table into the
section's dataclass, checking every key against its declared type and limits
and raising `ConfigError` that names the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from .reading import ConfigError


def option(default: Any, help: str, **limits: Any) -> Any:
    """A config field: its default, a one-line help text and optional limits.

    Limits: `min`, `max` (inclusive), `choices`, and `pattern` with its `pattern_help`.
    """
    return field(default=default, metadata={"help": help, **limits})


def build_section(cls: type, table: dict[str, Any], where: str, section: str | None) -> Any:
    """One section (or, with section None, one entry of an array of tables) from its TOML table."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}: [{section}]" if section else where
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix} {unknown[0]}: unknown key (known: {', '.join(fields)})")
    values = {
        key: _check_value(value, hints[key], fields[key].metadata, f"{prefix} {key}")
        for key, value in table.items()
    }
    return cls(**values)


def table_item(kind: Any) -> type | None:
    """The dataclass of an array-of-tables field, or None for a plain value."""
    if get_origin(kind) is tuple and dataclasses.is_dataclass(get_args(kind)[0]):
        return get_args(kind)[0]
    return None


def _check_value(value: Any, kind: Any, limits: Any, where: str) -> Any:
    """Check one value against its declared type and limits; return it typed."""
    if get_origin(kind) is tuple:
        return _check_list(value, get_args(kind)[0], limits, where)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind in (str, Path):
        ok = isinstance(value, str)
    else:  # pragma: no cover - a new field type without a rule here is a bug
        raise TypeError(f"no validation rule for {kind!r}")
    if not ok:
        raise ConfigError(f"{where}: expected {_type_name(kind)}, got {type(value).__name__} {value!r}")
    if "choices" in limits and value not in limits["choices"]:
        raise ConfigError(f"{where}: must be one of {', '.join(map(repr, limits['choices']))}, got {value!r}")
    if "pattern" in limits and not re.fullmatch(limits["pattern"], value):
        raise ConfigError(f"{where}: {limits['pattern_help']}, got {value!r}")
    if kind is float and math.isnan(value):
        raise ConfigError(f"{where}: must be a number, got nan")
    if "min" in limits and value < limits["min"]:
        raise ConfigError(f"{where}: must be at least {limits['min']}, got {value!r}")
    if "max" in limits and value > limits["max"]:
        raise ConfigError(f"{where}: must be at most {limits['max']}, got {value!r}")
    return Path(value) if kind is Path else value


def _check_list(value: Any, item: Any, limits: Any, where: str) -> tuple[Any, ...]:
    """A TOML array of strings, or an array of tables ([[section.key]]) of a dataclass."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
    if dataclasses.is_dataclass(item):
        out = []
        for n, table in enumerate(value, start=1):
            if not isinstance(table, dict):
                raise ConfigError(f"{where} #{n}: expected a table")
            out.append(build_section(item, table, f"{where} #{n}", None))
        return tuple(out)
    return tuple(_check_value(v, item, limits, f"{where}[{n}]") for n, v in enumerate(value))


def _type_name(kind: Any) -> str:
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "a string",
        Path: "a path string",
    }[kind]
