"""c104's general interrogation, asked again when c104 does not see it confirmed.

c104 refuses an interrogation at once while it still counts the previous one as running
(its termination is processed on c104's own thread, which under load comes after the
previous call returned), and under load it can miss a confirmation that arrives before it
has registered the command: seen at a raw outstation on loopback, where the relay had
received the command and confirmed it at once while c104 waited out its command timeout
(2 of 25 connects under CPU load; 0 of 25 with the repeat). An interrogation is a read,
so asking again is harmless; its answers are marked interrogated either way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

ATTEMPTS = 3


async def interrogation(connection: Any, ca: int, name: str) -> bool:
    """True once c104 reports the interrogation of station `ca` confirmed."""
    for attempt in range(ATTEMPTS):
        if attempt:
            log.info("device %s: interrogation not confirmed, asking again", name)
            await asyncio.sleep(0.2)
        if await asyncio.to_thread(connection.interrogation, ca):
            return True
    return False
