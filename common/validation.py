"""Turn TOML files into typed models, with errors a person can act on.

Every problem reads `FILE: key.path: what was expected (found: …)`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from common.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None


def _path(loc: tuple[int | str, ...], tags: frozenset[str], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in tags:
            continue  # the discriminated-union tag pydantic inserts, e.g. "iec104"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def describe(
    exc: ValidationError, tags: frozenset[str] = frozenset(), prefix: str = ""
) -> list[str]:
    """One line per problem; `prefix` is the key path of the validated value, `tags` the
    discriminator values pydantic puts into locations (dropped: they are not keys)."""
    problems = []
    for err in exc.errors(include_url=False):
        where = _path(err["loc"], tags, prefix)
        kind = err["type"]
        msg = _MESSAGES.get(kind, err["msg"]).removeprefix("Value error, ")
        if kind == "missing":
            problems.append(f"{where}: {msg}")
        elif kind == "union_tag_invalid":
            ctx = err.get("ctx", {})
            problems.append(
                f"{where}: expected one of {ctx.get('expected_tags')} (found: {ctx.get('tag')!r})"
            )
        elif isinstance(err["input"], dict):  # a rule across keys: the table is the input
            problems.append(f"{where}: {msg}")
        else:
            problems.append(
                f"{where}: {msg.removeprefix('Value error, ')} (found: {err['input']!r})"
            )
    return problems


def validate(model: type[M], data: Any, file: str, tags: frozenset[str] = frozenset()) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(file, describe(exc, tags)) from None
