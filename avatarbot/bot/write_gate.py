"""The SQLite write gate: one writer at a time in this process, and the intake goes first.

SQLite's busy handler sleeps in growing steps (up to tens of ms) when a write finds the
database locked; a webhook's insert landing during the bot's own short transactions would
pay that. An asyncio lock hands the turn over at once instead.

The platform waits for the intake's commit (its 200 or ack frame); nobody waits for the
bot's own bookkeeping (claiming an event, closing it, outbox rows). So an intake never
queues behind background writes: it waits at most for the one transaction in progress,
and background writers wait while any intake is waiting. Under a burst of 50 events the
50 inserts go first and the handling of the first events follows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class WriteGate:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._urgent = 0  # intakes waiting for the gate or holding it
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        """For a write somebody waits on (the intake's insert)."""
        self._urgent += 1
        self._no_urgent.clear()
        try:
            async with self._lock:
                yield
        finally:
            self._urgent -= 1
            if self._urgent == 0:
                self._no_urgent.set()

    async def __aenter__(self) -> None:
        """A background write: only when no intake is waiting."""
        while True:
            await self._no_urgent.wait()
            await self._lock.acquire()
            if self._urgent == 0:
                return
            self._lock.release()  # an intake came while we queued: it goes first

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()
