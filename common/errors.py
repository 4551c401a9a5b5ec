"""Errors shared by every layer that reads a config or profile file."""

from __future__ import annotations


class ConfigError(Exception):
    """A config or profile file is invalid. The message names the file, the key path, and
    what was expected against what was found; `problems` holds one line per problem."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {p}" for p in problems))
