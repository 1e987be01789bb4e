"""Runs one task: claim the row, call its handler off the event loop, record the outcome.

Both executors (local thread pool and Celery worker) go through `run_task`, so status
transitions, progress throttling and error handling exist once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import Any

from avatarbot.config import Settings
from avatarbot.errors import AvatarbotError, Cancelled
from avatarbot.jobs import service
from avatarbot.jobs.handlers import JobContext, get_handler
from avatarbot.jobs.lease import PROCESS_ID, heartbeat
from avatarbot.jobs.progress import ProgressBus, ProgressEvent
from avatarbot.killpoint import kill_point
from avatarbot.storage.db import Database
from avatarbot.storage.models import TaskStatus

logger = logging.getLogger(__name__)

WORKER_NAME = PROCESS_ID
PROGRESS_DB_INTERVAL_S = 0.5


def user_message(exc: BaseException) -> str:
    """A short, safe description of a failure for the Task row and the user."""
    if isinstance(exc, AvatarbotError):
        return exc.message
    return f"internal error ({type(exc).__name__})"


async def run_task(
    *,
    db: Database,
    bus: ProgressBus,
    settings: Settings,
    task_id: str,
    pool: Executor | None = None,
    worker: str = WORKER_NAME,
    cancel_flag: threading.Event | None = None,
) -> TaskStatus | None:
    """Run the task if it is pending. Returns its final status, or None when not claimed."""
    lease_s = settings.jobs.heartbeat_timeout_s
    async with db.session() as session:
        task = await service.claim(session=session, task_id=task_id, worker=worker, lease_s=lease_s)
    if task is None:
        return None
    async with heartbeat(
        lambda: _renew(db, task_id, worker, lease_s),
        settings.jobs.heartbeat_interval_s,
        f"task {task_id}",
    ):
        return await _run_claimed(
            db=db, bus=bus, settings=settings, task=task, pool=pool, worker=worker,
            cancel_flag=cancel_flag,
        )  # fmt: skip


async def _renew(db: Database, task_id: str, worker: str, lease_s: float) -> bool:
    async with db.session() as session:
        return await service.renew_lease(
            session=session, task_id=task_id, worker=worker, lease_s=lease_s
        )


async def _run_claimed(
    *,
    db: Database,
    bus: ProgressBus,
    settings: Settings,
    task: Any,
    pool: Executor | None,
    worker: str,
    cancel_flag: threading.Event | None,
) -> TaskStatus | None:
    task_id = task.id
    loop = asyncio.get_running_loop()
    # Set by the executor's cancel() or when a progress write finds cancel_requested in the DB.
    cancel_flag = cancel_flag or threading.Event()
    last_write = [0.0, ""]

    def publish(status: str, **kwargs: Any) -> None:
        bus.publish(ProgressEvent(task_id=task_id, status=status, user_id=task.user_id, **kwargs))

    def _schedule(coro_factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        asyncio.run_coroutine_threadsafe(coro_factory(), loop)

    async def _write_progress(stage: str, percent: float, message: str) -> None:
        async with db.session() as s:
            await service.set_progress(
                session=s, task_id=task_id, stage=stage, percent=percent, message=message
            )
            if await service.is_cancel_requested(session=s, task_id=task_id):
                cancel_flag.set()

    def report(stage: str, percent: float, message: str = "") -> None:
        kill_point("render")
        publish("running", stage=stage, percent=round(float(percent), 1), message=message)
        now = time.monotonic()
        # Throttle DB writes; stage changes are always written so a restart sees them.
        if now - last_write[0] >= PROGRESS_DB_INTERVAL_S or stage != last_write[1]:
            last_write[0], last_write[1] = now, stage
            _schedule(lambda: _write_progress(stage, percent, message))

    ctx = JobContext(
        task_id=task_id,
        params=dict(task.params or {}),
        settings=settings,
        report=report,
        cancelled=cancel_flag.is_set,
        attempt=task.attempts,
    )
    publish("running", stage="start", percent=0.0, message="started")
    status = TaskStatus.FAILED
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        handler = get_handler(task.task_type)
        result = await loop.run_in_executor(pool, handler, ctx)
        status = TaskStatus.COMPLETED
    except Cancelled:
        status, error = TaskStatus.CANCELLED, "cancelled"
    except Exception as exc:
        error = user_message(exc)
        if not isinstance(exc, AvatarbotError):
            logger.exception("task %s failed", task_id)
        else:
            logger.info("task %s failed: %s", task_id, error)
    async with db.session() as session:
        mine = await service.finish(
            session=session,
            task_id=task_id,
            status=status,
            result=result,
            error=error,
            worker=worker,
        )
    if not mine:  # our lease ran out and another runner took the task: its outcome counts
        logger.warning("task %s finished here after its lease was lost; result dropped", task_id)
        return None
    publish(
        status.value,
        stage="done" if status == TaskStatus.COMPLETED else status.value,
        percent=100.0 if status == TaskStatus.COMPLETED else 0.0,
        message="done" if status == TaskStatus.COMPLETED else (error or ""),
        result=_public_result(task_id, result) if result else None,
        error=error,
    )
    return status


def _public_result(task_id: str, result: dict[str, Any]) -> dict[str, Any]:
    public = {k: v for k, v in result.items() if k != "path"}
    if result.get("path"):
        public["url"] = f"/api/v1/tasks/{task_id}/result"
    return public
