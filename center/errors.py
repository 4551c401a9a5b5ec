"""The center's small error hierarchy."""

from __future__ import annotations


class CenterError(Exception):
    """Root of the center's own errors."""


class ConfigError(CenterError):
    """A config file that cannot be used; every problem names the file, key and expectation."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {p}" for p in problems))


class TicketActionError(CenterError):
    """A person's ticket action that the ticket's state does not allow."""


class TicketNotFound(CenterError):
    """No ticket with that id."""
