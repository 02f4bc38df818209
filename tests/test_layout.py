"""The package layout's rules (ARCHITECTURE.md): imports follow the layers (none reaches a later stage), the
stages' public faces (capture.py, detect.py, mask.py) stand for the packages behind them, no import loops,
no reaching into another package's private names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgeguard"

# ARCHITECTURE.md's layers, from the bottom: a module may import from its own unit (a top-level module or
# package of edgeguard), from units of earlier layers, and from none of a later layer.
LAYERS = (
    ("edgeguard", "common"),  # the package's version; leaf helpers (common/event_types.py: the event types)
    ("configfile",),
    ("config",),
    ("sources",),
    ("capture",),
    ("detectors",),
    ("detect",),
    ("masks",),
    ("mask",),
    ("faces",),
    ("watchlist",),
    ("live",),
    ("events",),
    ("store",),
    ("outputs",),
    ("review",),
    ("alerts",),
    ("web",),
    ("client",),
    ("service",),
    ("hub",),  # the fleet hub: its own service, with the web's app factory and the MQTT client
    ("cli", "entry", "__main__"),
)
# The packages behind a stage's public face: only the face imports them.
BEHIND = {"sources": "capture", "detectors": "detect", "masks": "mask"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, str]]:
    """(module imported from, name) for every `from ... import name` and `import module` in a file,
    including those inside functions."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            out += [(source, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(alias.name, "") for alias in node.names]
    return out


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for source, imported in imports(path):
            if f"{source}.{imported}" in modules:
                targets.add(f"{source}.{imported}")
            elif source in modules:
                targets.add(source)
        edges[name] = targets - {name}
    return edges


def unit(module: str) -> str:
    """The top-level module or package of edgeguard a module is in ("edgeguard" for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of() -> dict[str, int]:
    return {name: i for i, names in enumerate(LAYERS) for name in names}


def offences(edges: dict[str, set[str]]) -> list[str]:
    """Every import against the layers or past a public face, as "importer -> imported (why)"."""
    layers = layer_of()
    out = []
    for module, targets in sorted(edges.items()):
        here = unit(module)
        for target in sorted(targets):
            there = unit(target)
            if there == here:
                continue
            if layers[there] > layers[here]:
                out.append(f"{module} -> {target} (a later layer)")
            elif there in BEHIND and BEHIND[there] != here:
                out.append(f"{module} -> {target} (use edgeguard.{BEHIND[there]})")
    return out


def test_every_unit_has_a_layer():
    units = {unit(m) for m in graph()}
    assert sorted(units - set(layer_of())) == []


def test_imports_follow_the_layers():
    assert offences(graph()) == []


def test_an_upward_import_is_caught(tmp_path, monkeypatch):
    """A planted import of a later stage (here config.py reaching events/, lazily inside a function) and an
    import past a public face both fail the check; an import of an earlier layer does not."""
    import test_layout

    planted = tmp_path / "edgeguard"
    for path in PACKAGE.rglob("*.py"):
        target = planted / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    with (planted / "config.py").open("a", encoding="utf-8") as f:
        f.write("\n\ndef _planted():\n    from .events.recorder import SiteEvents\n\n    return SiteEvents\n")
    with (planted / "live" / "track.py").open("a", encoding="utf-8") as f:
        f.write("\n\nfrom ..detectors.yunet import YuNetDetector\n")
    with (planted / "web" / "app.py").open("a", encoding="utf-8") as f:
        f.write("\n\nfrom ..events.event import Event\n")
    before = set(offences(graph()))
    monkeypatch.setattr(test_layout, "PACKAGE", planted)
    assert sorted(set(offences(test_layout.graph())) - before) == [
        "edgeguard.config -> edgeguard.events.recorder (a later layer)",
        "edgeguard.live.track -> edgeguard.detectors.yunet (use edgeguard.detect)",
    ]


def test_no_module_imports_another_in_a_loop():
    edges = graph()
    cycles = []

    def visit(node: str, path: list[str], done: set[str]) -> None:
        for target in sorted(edges[node]):
            if target in path:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in done:
                done.add(target)
                visit(target, path + [target], done)

    for start in sorted(edges):
        visit(start, [start], {start})
    assert cycles == []


def test_no_package_imports_private_names_of_another():
    offences = []
    for path in PACKAGE.rglob("*.py"):
        here = module_name(path).rpartition(".")[0]
        for source, imported in imports(path):
            if imported.startswith("_") and source.rpartition(".")[0] != here and source != here:
                offences.append(f"{module_name(path)} imports {source}.{imported}")
    assert offences == []
