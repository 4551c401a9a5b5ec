"""The one rule every test uses to tell CI, where a missing tool fails instead of skipping."""

from __future__ import annotations

import os


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
