"""CeleryExecutor: Task rows run on `avatarbot worker` processes through Redis.

submit sends the task id (also the Celery message id) to the Task's queue (cpu or gpu);
wait polls the Task row; cancel sets the DB flag (checked at progress points) and revokes
a message not started yet. A sweeper in the API process re-queues or fails tasks whose
worker stopped sending heartbeats, so nothing stays `running` forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from avatarbot.config import Settings
from avatarbot.errors import BackendUnavailable
from avatarbot.jobs import service
from avatarbot.jobs.celery_app import RUN_TASK_NAME, make_celery
from avatarbot.jobs.progress import ProgressBus
from avatarbot.jobs.worker import recover_stale, stale_running_ids
from avatarbot.storage.db import Database
from avatarbot.storage.models import TaskStatus

logger = logging.getLogger(__name__)

WAIT_POLL_S = 0.25
SUBMIT_KEY = "avatarbot:jobs:submitted:{task_id}:{attempt}"


class CeleryExecutor:
    name = "celery"

    def __init__(self, *, db: Database, bus: ProgressBus, settings: Settings) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self.celery = make_celery(settings)
        self._sweeper: asyncio.Task[None] | None = None
        self._redis: Any = None

    async def start(self) -> None:
        import redis

        assert self.settings.redis_url
        self._redis = redis.Redis.from_url(self.settings.redis_url)
        with contextlib.suppress(BackendUnavailable):
            await self.sweep()
        # Pending rows whose message may be gone (Redis restarted): send them again.
        async with self.db.session() as session:
            leftovers = await service.unfinished(session=session)
        try:
            for task in leftovers:
                if task.status == TaskStatus.PENDING:
                    await self.submit(task.id)
        except BackendUnavailable as exc:  # Redis down: start anyway, the sweeper retries
            logger.error("could not re-queue pending tasks at start: %s", exc.message)
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="avatarbot-job-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._redis is not None:
            self._redis.close()
        await asyncio.to_thread(self.celery.close)

    async def submit(self, task_id: str) -> None:
        async with self.db.session() as session:
            task = await service.get_or_raise(session=session, task_id=task_id)
        if task.status != TaskStatus.PENDING:
            return
        queue = task.queue if task.queue in ("cpu", "gpu") else "cpu"
        key = SUBMIT_KEY.format(task_id=task_id, attempt=task.attempts)
        await asyncio.to_thread(self._send, task_id, queue, key)

    def _send(self, task_id: str, queue: str, key: str) -> None:
        # One message per attempt: a second submit of the same pending attempt is a no-op.
        ttl = max(60, self.settings.jobs.visibility_timeout_s)
        try:
            if self._redis is not None and not self._redis.set(key, "1", nx=True, ex=ttl):
                return
            self.celery.send_task(RUN_TASK_NAME, args=[task_id], task_id=task_id, queue=queue)
        except Exception as exc:  # Redis down: the row stays pending and is re-sent later
            logger.error("could not queue task %s: %s", task_id, type(exc).__name__)
            if self._redis is not None:
                with contextlib.suppress(Exception):
                    self._redis.delete(key)
            raise BackendUnavailable("the job queue (Redis) is unreachable; try again") from None

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            async with self.db.session() as session:
                task = await service.get_or_raise(session=session, task_id=task_id)
            if task.status.finished:
                return task.status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {task_id} still {task.status.value}")
            await asyncio.sleep(WAIT_POLL_S)

    async def cancel(self, task_id: str) -> None:
        # The API already set cancel_requested (running) or cancelled the row (pending);
        # revoking keeps a queued message from starting at all.
        await asyncio.to_thread(self.celery.control.revoke, task_id)

    async def sweep(self) -> list[str]:
        """Re-queue or fail running tasks of dead workers; returns the ids handled."""
        handled = []
        for task_id in await stale_running_ids(db=self.db, settings=self.settings):
            status = await recover_stale(
                db=self.db, bus=self.bus, settings=self.settings, task_id=task_id
            )
            if status == TaskStatus.PENDING:
                await self.submit(task_id)
            if status is not None:
                handled.append(task_id)
        return handled

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.jobs.sweep_interval_s)
            try:
                await self.sweep()
            except Exception:
                logger.exception("job sweeper pass failed")
