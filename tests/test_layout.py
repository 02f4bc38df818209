"""The package layout's rules (ARCHITECTURE.md): no import loops, no reaching into another package's private names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgeguard"


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
