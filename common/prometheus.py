"""Prometheus text exposition (format 0.0.4), shared by the agent's and the center's
metrics pages. A sample is (name, labels, value); a name ending in `_total` is a counter,
anything else a gauge."""

from __future__ import annotations

from collections.abc import Iterable

Sample = tuple[str, dict[str, str], float]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


def render(samples: Iterable[Sample], help_text: dict[str, str]) -> str:
    lines: list[str] = []
    seen: set[str] = set()
    for name, labels, value in samples:
        if name not in seen:
            seen.add(name)
            kind = "counter" if name.endswith("_total") else "gauge"
            lines.append(f"# HELP {name} {help_text.get(name, name)}")
            lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{_labels(labels)} {value:g}")
    return "\n".join(lines) + "\n"
