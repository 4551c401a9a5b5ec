"""No product module is over 400 lines: a module that size has more than one reason to
exist, and is split along its seams before it grows further.

Migrations are exempt (each is one generated, append-only step). No other exception.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 400
PRODUCT_PACKAGES = (
    "agent",
    "gateway",
    "protocols",
    "center",
    "simulator",
    "demo",
    "profiles",
    "common",
)
EXEMPT_DIRS = ("migrations",)


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def product_modules() -> dict[str, int]:
    """Every product module (posix path from the repository root) and its line count."""
    sizes: dict[str, int] = {}
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if any(part in EXEMPT_DIRS for part in relative.parts):
                continue
            sizes[relative.as_posix()] = _line_count(path)
    return sizes


def oversize(sizes: dict[str, int]) -> dict[str, int]:
    return {name: lines for name, lines in sizes.items() if lines > LIMIT}


def test_the_scan_finds_the_product() -> None:
    sizes = product_modules()
    assert "agent/daemon.py" in sizes
    assert "center/tickets/engine.py" in sizes
    assert not any("migrations" in name for name in sizes)


def test_no_product_module_is_over_the_limit() -> None:
    unexpected = oversize(product_modules())
    assert not unexpected, f"over {LIMIT} lines, split along their seams: {unexpected}"
