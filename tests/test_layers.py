"""The import rules between the product's packages hold: the layering written once in
docs/contributing.md, checked on every product module with `ast`, plus no cycle between
packages. Where a rule cannot hold yet, the exception is listed here with its reason."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The records (`gateway.wire`, written in `wire_records` and `wire_acks`), their COMTRADE
# payload, and the poll contract with its one rendering for people (`gateway.poll_view`:
# relay-agent poll, relay-center poll and the console's device page print the same text):
# both daemons import them.
CONTRACT = {
    "gateway.wire",
    "gateway.wire_records",
    "gateway.wire_acks",
    "gateway.comtrade",
    "gateway.rpc",
    "gateway.poll_view",
}

# (importing module, imported module) -> why the rule cannot hold yet. Each must still
# occur: an exception that is no longer needed fails the test, so the list only shrinks.
# Empty: every import follows the layers.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def read_layers() -> dict[str, set[str]]:
    """The `layers` block of docs/contributing.md: package -> the packages it may import."""
    text = (ROOT / "docs" / "contributing.md").read_text()
    block = re.search(r"<!-- layers:.*?-->\n```text\n(.*?)```", text, re.S)
    assert block is not None, "docs/contributing.md lost its layers block"
    layers: dict[str, set[str]] = {}
    for line in block[1].splitlines():
        unit, _, allowed = line.partition("->")
        layers[unit.strip()] = {a.strip() for a in allowed.split(",") if a.strip()}
    return layers


def unit_of(module: str) -> str:
    """The layer a module belongs to: its top-level package, the contracts apart."""
    if module in CONTRACT or any(module.startswith(c + ".") for c in CONTRACT):
        return "gateway.contract"
    return module.split(".", 1)[0]


def product_modules(packages: set[str]) -> Iterator[tuple[str, Path]]:
    for package in sorted(packages):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def imports_of(path: Path, module: str) -> Iterator[str]:
    """Every module `path` imports, wherever the import stands; `from a import b` yields
    `a.b` when that is a module of ours, else `a`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                where = ROOT / Path(*candidate.split("."))
                is_module = where.with_suffix(".py").exists() or (where / "__init__.py").exists()
                yield candidate if is_module else base


def graph(layers: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """(importer's module, imported module) edges across units, with the importer's file."""
    packages = {unit.split(".")[0] for unit in layers}
    edges: dict[tuple[str, str], list[str]] = {}
    for module, path in product_modules(packages):
        for target in imports_of(path, module):
            if target.split(".")[0] in packages and unit_of(target) != unit_of(module):
                edges.setdefault((module, target), []).append(str(path.relative_to(ROOT)))
    return edges


def test_every_package_has_its_rule() -> None:
    layers = read_layers()
    for unit, allowed in layers.items():
        assert allowed <= set(layers), f"{unit} may import an unknown layer: {allowed}"
    tops = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests"}
    assert tops == {unit.split(".")[0] for unit in layers}, "a package without a rule"


def test_imports_follow_the_layers() -> None:
    layers = read_layers()
    edges = graph(layers)
    broken = sorted(
        f"{importer} imports {target}"
        for importer, target in edges
        if unit_of(target) not in layers[unit_of(importer)] and (importer, target) not in EXCEPTIONS
    )
    assert broken == [], "imports against docs/contributing.md's layers:\n" + "\n".join(broken)
    stale = sorted(f"{a} -> {b}" for a, b in EXCEPTIONS if (a, b) not in edges)
    assert stale == [], "exceptions no longer needed (remove them): " + ", ".join(stale)
    for importer, target in EXCEPTIONS:
        assert unit_of(target) not in layers[unit_of(importer)], f"{importer}: not an exception"


def test_no_cycle_between_packages() -> None:
    edges = graph(read_layers())
    deps: dict[str, set[str]] = {}
    for importer, target in edges:
        deps.setdefault(unit_of(importer), set()).add(unit_of(target))

    def cycle_from(unit: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(deps.get(unit, ())):
            if nxt in path:
                return [*path[path.index(nxt) :], nxt]
            found = cycle_from(nxt, [*path, nxt])
            if found:
                return found
        return None

    for unit in sorted(deps):
        cycle = cycle_from(unit, [unit])
        assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def read_center_directions() -> list[tuple[str, str]]:
    """The `center parts` block of docs/contributing.md: (a, b) where a may import b."""
    text = (ROOT / "docs" / "contributing.md").read_text()
    block = re.search(r"<!-- center parts:.*?-->\n```text\n(.*?)```", text, re.S)
    assert block is not None, "docs/contributing.md lost its center parts block"
    pairs = [line.split("->") for line in block[1].splitlines() if line.strip()]
    return [(a.strip(), b.strip()) for a, b in pairs]


def in_part(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


def center_graph() -> dict[str, set[str]]:
    """center module -> the center modules it imports; importing a module runs its
    packages' `__init__` too, so those count as imported."""
    modules = dict(product_modules({"center"}))
    deps: dict[str, set[str]] = {}
    for module, path in modules.items():
        for target in imports_of(path, module):
            parts = target.split(".")
            deps.setdefault(module, set()).update(
                name
                for name in (".".join(parts[:n]) for n in range(2, len(parts) + 1))
                if name in modules and name != module
            )
    return deps


def import_path(deps: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The modules through which a module of part `start` imports one of part `goal`."""
    queue = [[m] for m in sorted(deps) if in_part(m, start)]
    seen = {trail[0] for trail in queue}
    while queue:
        trail = queue.pop(0)
        for nxt in sorted(deps.get(trail[-1], ())):
            if in_part(nxt, goal):
                return [*trail, nxt]
            if nxt not in seen:
                seen.add(nxt)
                queue.append([*trail, nxt])
    return None


@pytest.mark.parametrize(("lower", "upper"), read_center_directions())
def test_center_parts_import_one_way(lower: str, upper: str) -> None:
    """`lower -> upper`: lower may import upper; upper never reaches lower, directly or
    through the center's other modules, so the two form no cycle."""
    deps = center_graph()
    assert any(in_part(m, lower) for m in deps), f"{lower}: no such center part"
    assert any(in_part(m, upper) for m in deps), f"{upper}: no such center part"
    back = import_path(deps, upper, lower)
    assert back is None, f"{upper} imports {lower}: " + " -> ".join(back or [])
