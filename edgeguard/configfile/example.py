"""The example config file, written from the sections' own defaults and help texts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

from .fields import table_item

HEADER = [
    "# EdgeGuard configuration. Every key is shown with its default; delete what you",
    "# do not change. Unknown keys and wrong values stop the daemon with a message.",
    "# Location: --config PATH, else $EDGEGUARD_CONFIG, else ./edgeguard.toml,",
    "# else /etc/edgeguard/edgeguard.toml.",
]


def example_text(sections: dict[str, type], arrays: dict[str, tuple[str, ...]] | None = None) -> str:
    """Every key of every section with its default and a one-line comment.

    `arrays` names the sections written as an array of tables (`[[camera]]`), each with the keys shown
    commented out because their default comes from another section.
    """
    arrays = arrays or {}
    lines = list(HEADER)
    for name, cls in sections.items():
        lines += ["", f"[[{name}]]" if name in arrays else f"[{name}]"]
        tables = []
        for f in dataclasses.fields(cls):
            item = table_item(get_type_hints(cls)[f.name])
            if item is None:
                key = "# " if f.name in arrays.get(name, ()) else ""
                lines += [f"# {f.metadata['help']}", f"{key}{f.name} = {_toml_value(f.default)}"]
            else:
                tables.append((f, item))
        for f, item in tables:
            lines += ["", f"# {f.metadata['help']}. For example:", f"# [[{name}.{f.name}]]"]
            for sub in dataclasses.fields(item):
                lines += [f"# # {sub.metadata['help']}", f"# {sub.name} = {_toml_value(sub.default)}"]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return f"{value:_}" if value >= 10_000 else str(value)
    return repr(value)
