"""What a Celery worker does with one message, and the recovery of tasks dead workers left.

A message can arrive twice (redelivery after a worker died, a re-submit by the sweeper);
the Task row decides: finished -> nothing to do; running with a fresh heartbeat -> another
worker has it; running with a stale heartbeat -> its worker died: re-queue it (attempts
left) or fail it with the reason; pending -> claim and run it through jobs.runner.run_task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from avatarbot.config import Settings
from avatarbot.jobs import service
from avatarbot.jobs.progress import ProgressBus, ProgressEvent
from avatarbot.jobs.runner import run_task
from avatarbot.storage.base import utcnow
from avatarbot.storage.db import Database
from avatarbot.storage.models import Task, TaskStatus

logger = logging.getLogger(__name__)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_stale(task: Task, settings: Settings, now: datetime | None = None) -> bool:
    beat = _aware(task.heartbeat_at or task.started_at or task.updated_at)
    if beat is None:
        return True
    return (now or utcnow()) - beat > timedelta(seconds=settings.jobs.heartbeat_timeout_s)


async def recover_stale(
    *, db: Database, bus: ProgressBus, settings: Settings, task_id: str
) -> TaskStatus | None:
    """Re-queue (-> PENDING) or fail a running task whose worker died; None if not stale."""
    async with db.session() as session:
        task = await service.get(session=session, task_id=task_id)
        if task is None or task.status != TaskStatus.RUNNING or not is_stale(task, settings):
            return None
        who = task.worker or "unknown worker"
        if task.attempts >= settings.jobs.max_attempts:
            reason = (
                f"the worker ({who}) stopped during attempt {task.attempts} of "
                f"{settings.jobs.max_attempts}; giving up"
            )
            await service.finish(
                session=session, task_id=task_id, status=TaskStatus.FAILED, error=reason
            )
            status = TaskStatus.FAILED
        else:
            reason = f"re-queued: the worker ({who}) stopped during attempt {task.attempts}"
            await service.requeue(session=session, task_id=task_id, reason=reason)
            status = TaskStatus.PENDING
        user_id = task.user_id
    logger.warning("task %s: %s", task_id, reason)
    bus.publish(
        ProgressEvent(
            task_id=task_id,
            status=status.value,
            stage="recovered",
            message=reason,
            user_id=user_id,
            error=reason if status == TaskStatus.FAILED else None,
        )
    )
    return status


async def stale_running_ids(*, db: Database, settings: Settings) -> list[str]:
    async with db.session() as session:
        rows = await session.scalars(select(Task).where(Task.status == TaskStatus.RUNNING))
        return [t.id for t in rows if is_stale(t, settings)]


async def execute_in_worker(
    *, db: Database, bus: ProgressBus, settings: Settings, task_id: str
) -> str:
    """Run one delivery of `task_id`; returns what happened (for logs and tests)."""
    async with db.session() as session:
        task = await service.get(session=session, task_id=task_id)
    if task is None:
        return "missing"
    if task.status.finished:
        return f"already {task.status.value}"
    if task.status == TaskStatus.RUNNING:
        recovered = await recover_stale(db=db, bus=bus, settings=settings, task_id=task_id)
        if recovered is None:
            return "running elsewhere"  # the sweeper takes over if that worker dies
        if recovered == TaskStatus.FAILED:
            return "failed after worker loss"
    cancel_flag = threading.Event()
    stop_beating = asyncio.Event()
    heartbeat = asyncio.create_task(_heartbeat(db, settings, task_id, stop_beating))
    try:
        status = await asyncio.wait_for(
            run_task(
                db=db,
                bus=bus,
                settings=settings,
                task_id=task_id,
                worker=f"{socket.gethostname()}:{os.getpid()}",
                cancel_flag=cancel_flag,
            ),
            timeout=settings.jobs.task_time_limit_s,
        )
    except TimeoutError:
        cancel_flag.set()  # the handler thread stops at its next progress check
        reason = f"time limit exceeded ({settings.jobs.task_time_limit_s} s)"
        async with db.session() as session:
            await service.finish(
                session=session, task_id=task_id, status=TaskStatus.FAILED, error=reason
            )
        bus.publish(ProgressEvent(task_id=task_id, status="failed", message=reason, error=reason))
        return "timed out"
    finally:
        # Stopped by an event, never cancelled: a cancel in the middle of its UPDATE could
        # leave the SQLite connection inside a write transaction, locking out everyone else.
        stop_beating.set()
        with contextlib.suppress(Exception):
            await heartbeat
    return status.value if status is not None else "not claimed"


async def _heartbeat(db: Database, settings: Settings, task_id: str, stop: asyncio.Event) -> None:
    """Touch heartbeat_at while the task runs, even when the handler reports nothing."""
    from sqlalchemy import update

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.jobs.heartbeat_interval_s)
        if stop.is_set():
            return
        try:
            async with db.session() as session:
                await session.execute(
                    update(Task)
                    .where(Task.id == task_id, Task.status == TaskStatus.RUNNING)
                    .values(heartbeat_at=utcnow())
                )
                await session.commit()
        except Exception as exc:  # a DB hiccup must not kill the task; the next beat retries
            logger.warning("heartbeat for %s failed: %s", task_id, type(exc).__name__)
