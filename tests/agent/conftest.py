from __future__ import annotations

import pytest

from gateway.outbox import Outbox


@pytest.fixture
def box(outbox: Outbox) -> Outbox:
    """The shared outbox fixture, under the name these tests use."""
    return outbox
