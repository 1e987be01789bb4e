"""Leases: who runs a task, an inbox event or a delivery, and until when.

A row is claimed with a conditional UPDATE (owner id + expiry) that succeeds only when no
one holds a live lease, so two processes never work on one row at once. The holder renews
the lease with a heartbeat; another process may take the row only after it expires, or at
once when the owner is a process of this host that no longer exists (a crash and restart
on one machine need not wait for the expiry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_

from avatarbot.storage.base import utcnow

logger = logging.getLogger(__name__)

HOST = socket.gethostname()
# host:pid:nonce - unique per process, and tells whether the owner can still be alive.
PROCESS_ID = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_until(ttl_s: float) -> datetime:
    return utcnow() + timedelta(seconds=ttl_s)


def owner_is_dead(owner: str | None) -> bool:
    """True only when the owner was a process on this host that has exited."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner != PROCESS_ID  # an earlier incarnation with a reused pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def free(lease_column: Any, owner_column: Any, now: datetime, dead: list[str]) -> Any:
    """SQL: no live lease on the row (none, expired, or held by a dead local process)."""
    clauses = [lease_column.is_(None), lease_column < now]
    if dead:
        clauses.append(owner_column.in_(dead))
    return or_(*clauses)


def dead_owners(owners: Iterable[str | None]) -> list[str]:
    return sorted({o for o in owners if o and owner_is_dead(o)})


@contextlib.asynccontextmanager
async def heartbeat(
    renew: Callable[[], Awaitable[bool]], interval_s: float, what: str
) -> AsyncIterator[asyncio.Event]:
    """Call `renew` every `interval_s` while the block runs; the event is set if it was lost."""
    lost = asyncio.Event()
    stop = asyncio.Event()

    async def beat() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            if stop.is_set():
                return
            try:
                if not await renew():
                    logger.warning("lease on %s was lost", what)
                    lost.set()
                    return
            except Exception as exc:  # a DB hiccup must not kill the work; the next beat retries
                logger.warning("lease renewal for %s failed: %s", what, type(exc).__name__)

    task = asyncio.create_task(beat(), name=f"lease-{what}")
    try:
        yield lost
    finally:
        # Stopped by an event, never cancelled: a cancel in the middle of its UPDATE could
        # leave the SQLite connection inside a write transaction.
        stop.set()
        with contextlib.suppress(Exception):
            await task
