"""Progress events and the in-process bus that carries them to WebSockets and chat channels.

Publishing is thread-safe (pipeline stages run in worker threads); subscribers are asyncio
queues on the app's event loop. A Redis pub/sub bus with the same interface is used when
AVATARBOT_REDIS_URL is set (jobs/redis_progress.py).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class ProgressEvent:
    task_id: str
    status: str  # pending | running | completed | failed | cancelled
    stage: str = ""
    percent: float = 0.0
    message: str = ""
    user_id: int | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    seq: int = 0
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "progress", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressEvent:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


EventFilter = Callable[[ProgressEvent], bool]


class ProgressBus(Protocol):
    def publish(self, event: ProgressEvent) -> None: ...

    def subscribe(self, accept: EventFilter | None = None) -> Any: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalProgressBus:
    """Fans events out to subscribers in this process."""

    def __init__(self, max_queue: int = 1000) -> None:
        self._subscribers: dict[int, tuple[asyncio.Queue[ProgressEvent], EventFilter | None]] = {}
        self._ids = itertools.count()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_queue = max_queue

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        self._subscribers.clear()

    def publish(self, event: ProgressEvent) -> None:
        with self._lock:
            if not event.seq:
                event.seq = next(self._seq)
        self.deliver(event)

    def deliver(self, event: ProgressEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._fan_out(event)
        else:
            loop.call_soon_threadsafe(self._fan_out, event)

    def _fan_out(self, event: ProgressEvent) -> None:
        for queue, accept in list(self._subscribers.values()):
            if accept is not None and not accept(event):
                continue
            if queue.full():  # a stalled consumer loses its oldest event, never blocks workers
                queue.get_nowait()
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(
        self, accept: EventFilter | None = None
    ) -> AsyncIterator[asyncio.Queue[ProgressEvent]]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        key = next(self._ids)
        queue: asyncio.Queue[ProgressEvent] = asyncio.Queue(self._max_queue)
        self._subscribers[key] = (queue, accept)
        try:
            yield queue
        finally:
            self._subscribers.pop(key, None)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
