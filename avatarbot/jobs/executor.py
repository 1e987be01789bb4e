"""The executor interface and the in-process implementation (default, no Redis needed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Protocol

from avatarbot.config import Settings
from avatarbot.jobs import service
from avatarbot.jobs.lease import owner_is_dead
from avatarbot.jobs.progress import ProgressBus, ProgressEvent
from avatarbot.jobs.runner import run_task
from avatarbot.storage.base import utcnow
from avatarbot.storage.db import Database
from avatarbot.storage.models import Task, TaskStatus

logger = logging.getLogger(__name__)


class JobExecutor(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, task_id: str) -> None:
        """Queue a pending Task row for execution (idempotent by task id)."""
        ...

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus: ...

    async def cancel(self, task_id: str) -> None:
        """Tell a running task to stop (it stops at its next progress check)."""
        ...


JOB_NICENESS = 10
STOP_GRACE_S = 10.0  # how long stop() waits for cancelled jobs to clean up


def lease_expired(task: Task, now: datetime, timeout_s: float) -> bool:
    """Nobody runs this task any more: lease past, or its runner process is gone."""
    if owner_is_dead(task.worker):
        return True
    if task.lease_until is not None:
        return task.lease_until < now
    beat = task.heartbeat_at or task.started_at or task.updated_at  # rows from before leases
    return beat is None or (now - beat).total_seconds() > timeout_s


def lower_thread_priority() -> None:
    """Run job threads (and the ffmpeg they start, which inherits it) at a lower CPU priority.

    On a small machine a render would otherwise compete with the event loop for the cores
    and push webhook answers past the platforms' deadlines. Linux applies nice per thread.
    """
    import os

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICENESS)
    except (AttributeError, OSError, PermissionError):  # not Linux, or not allowed: run as is
        logger.debug("could not lower the job thread priority")


class LocalExecutor:
    """Runs tasks in a thread pool of this process; the event loop only awaits them."""

    name = "local"

    def __init__(self, *, db: Database, bus: ProgressBus, settings: Settings) -> None:
        self.db = db
        self.bus = bus
        self.settings = settings
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, settings.jobs.local_workers),
            thread_name_prefix="avatarbot-job",
            initializer=lower_thread_priority,
        )
        self._running: dict[str, asyncio.Task[TaskStatus | None]] = {}
        self._cancel_flags: dict[str, threading.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Recover work a previous process left behind, then keep sweeping for orphans."""
        await self.recover()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="task-sweeper")

    async def recover(self) -> int:
        """Queue pending tasks and take over running ones whose lease is gone.

        A running task whose runner still renews its lease (another live process) is left
        alone; one whose lease expired, or whose runner was a process of this host that no
        longer exists, is re-queued, or failed once it used up its attempts.
        """
        async with self.db.session() as session:
            leftovers = await service.unfinished(session=session)
        now = utcnow()
        queued = 0
        for task in leftovers:
            if task.id in self._running:
                continue
            if task.status == TaskStatus.RUNNING:
                if not lease_expired(task, now, self.settings.jobs.heartbeat_timeout_s):
                    continue
                async with self.db.session() as session:
                    status = await service.release_expired(
                        session=session,
                        task=task,
                        max_attempts=self.settings.jobs.max_attempts,
                        reason="the server stopped while making it",
                    )
                logger.warning("task %s: its runner %s stopped -> %s", task.id, task.worker, status)
                if status == TaskStatus.FAILED:
                    self.bus.publish(
                        ProgressEvent(
                            task_id=task.id,
                            status="failed",
                            stage="failed",
                            message="the server stopped while this task was running",
                            user_id=task.user_id,
                            error="the server stopped while this task was running",
                        )
                    )
                if status != TaskStatus.PENDING:
                    continue
            await self.submit(task.id)
            queued += 1
        return queued

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.jobs.sweep_interval_s)
            try:
                await self.recover()
            except Exception:  # the next sweep tries again
                logger.exception("sweeping for orphaned tasks failed")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sweeper
        jobs = list(self._running.values())
        for job in jobs:
            job.cancel()
        if jobs:
            # Let cancelled jobs finish their own clean-up (their DB writes) before the
            # database is closed; a job cut off inside a query left SQLAlchemy's shielded
            # connection close waiting forever, and shutdown hung.
            await asyncio.wait(jobs, timeout=STOP_GRACE_S)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, task_id: str) -> None:
        if task_id in self._running and not self._running[task_id].done():
            return
        flag = threading.Event()
        job = asyncio.create_task(
            run_task(
                db=self.db,
                bus=self.bus,
                settings=self.settings,
                task_id=task_id,
                pool=self._pool,
                cancel_flag=flag,
            ),
            name=f"task-{task_id}",
        )
        self._running[task_id] = job
        self._cancel_flags[task_id] = flag

        def _forget(_job: object) -> None:
            self._running.pop(task_id, None)
            self._cancel_flags.pop(task_id, None)

        job.add_done_callback(_forget)

    async def cancel(self, task_id: str) -> None:
        flag = self._cancel_flags.get(task_id)
        if flag is not None:
            flag.set()

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus:
        job = self._running.get(task_id)
        if job is not None:
            await asyncio.wait_for(asyncio.shield(job), timeout)
        async with self.db.session() as session:
            task = await service.get_or_raise(session=session, task_id=task_id)
            return task.status

    @property
    def active(self) -> int:
        return len(self._running)
