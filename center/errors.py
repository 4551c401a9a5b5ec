"""The center's small error hierarchy (config errors are `common.errors.ConfigError`)."""

from __future__ import annotations


class CenterError(Exception):
    """Root of the center's own errors."""


class TicketActionError(CenterError):
    """A person's ticket action that the ticket's state does not allow."""


class TicketNotFound(CenterError):
    """No ticket with that id."""
