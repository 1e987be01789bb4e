"""Task rows: create, read, and the status transitions every executor uses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.errors import NotFound
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Task, TaskStatus, TaskType

MAX_ERROR_CHARS = 2000


async def create(
    *,
    session: AsyncSession,
    task_type: TaskType,
    params: dict[str, Any],
    user_id: int | None = None,
    name: str = "",
    queue: str = "cpu",
    task_id: str | None = None,
) -> Task:
    task = Task(
        task_type=task_type,
        params=params,
        user_id=user_id,
        name=name,
        queue=queue,
        status=TaskStatus.PENDING,
    )
    if task_id:
        task.id = task_id
    session.add(task)
    await session.commit()
    await session.refresh(task)
    return task


async def get(*, session: AsyncSession, task_id: str) -> Task | None:
    return await session.get(Task, task_id)


async def get_or_raise(*, session: AsyncSession, task_id: str) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


async def list_tasks(
    *,
    session: AsyncSession,
    user_id: int | None = None,
    status: TaskStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Task]:
    stmt = select(Task).order_by(Task.created_at.desc()).limit(limit).offset(offset)
    if user_id is not None:
        stmt = stmt.where(Task.user_id == user_id)
    if status is not None:
        stmt = stmt.where(Task.status == status)
    return list((await session.scalars(stmt)).all())


async def claim(
    *, session: AsyncSession, task_id: str, worker: str, lease_s: float = 60.0
) -> Task | None:
    """Move a pending task to running; None when it is finished, cancelled or already running.

    The conditional UPDATE makes claiming atomic, so a task is never run twice at once; the
    lease (worker + lease_until, renewed by the runner's heartbeat) tells other processes
    that it is in hand.
    """
    now = utcnow()
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.PENDING)
        .values(
            status=TaskStatus.RUNNING,
            attempts=Task.attempts + 1,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
            lease_until=now + timedelta(seconds=lease_s),
            updated_at=now,
            error_message=None,
        )
    )
    await session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    task = await session.get(Task, task_id)
    if task is not None:
        await session.refresh(task)
    return task


async def renew_lease(*, session: AsyncSession, task_id: str, worker: str, lease_s: float) -> bool:
    """Extend the runner's lease; False when the task is no longer ours (taken over, finished)."""
    now = utcnow()
    result = await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.RUNNING, Task.worker == worker)
        .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease_s))
    )
    await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


async def release_expired(
    *, session: AsyncSession, task: Task, max_attempts: int, reason: str
) -> TaskStatus | None:
    """Take back a running task whose runner is gone: re-queue it, or fail it for good.

    Conditional on the lease it was seen with, so a runner that renewed in the meantime
    keeps its task. Returns the new status, or None when nothing changed.
    """
    if task.attempts >= max_attempts:
        values: dict[str, Any] = {
            "status": TaskStatus.FAILED,
            "error_message": f"{reason} ({task.attempts} attempts); giving up",
            "message": "failed",
            "completed_at": utcnow(),
        }
    else:
        values = {"status": TaskStatus.PENDING, "message": f"re-queued: {reason}"[:500]}
    seen = (
        Task.lease_until.is_(None)
        if task.lease_until is None
        else (Task.lease_until == task.lease_until)
    )
    result = await session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status == TaskStatus.RUNNING, seen)
        .values(worker=None, lease_until=None, updated_at=utcnow(), **values)
    )
    await session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return TaskStatus(values["status"])


async def set_progress(
    *, session: AsyncSession, task_id: str, stage: str, percent: float, message: str
) -> None:
    now = utcnow()
    await session.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.RUNNING)
        .values(
            stage=stage[:32],
            progress=max(0.0, min(100.0, percent)),
            message=message[:500],
            heartbeat_at=now,
            updated_at=now,
        )
    )
    await session.commit()


async def finish(
    *,
    session: AsyncSession,
    task_id: str,
    status: TaskStatus,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    worker: str | None = None,
) -> bool:
    """Record the outcome; with `worker`, only while that runner still holds the task."""
    values: dict[str, Any] = {
        "status": status,
        "completed_at": utcnow(),
        "updated_at": utcnow(),
        "lease_until": None,
    }
    if status == TaskStatus.COMPLETED:
        values.update(progress=100.0, stage="done", message="done", result=result or {})
        if result and result.get("path"):
            values["result_path"] = str(result["path"])
    if error is not None:
        values["error_message"] = error[:MAX_ERROR_CHARS]
        values["message"] = error[:500]
    stmt = update(Task).where(Task.id == task_id)
    if worker is not None:
        stmt = stmt.where(Task.worker == worker, Task.status == TaskStatus.RUNNING)
    result = await session.execute(stmt.values(**values))
    await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


async def requeue(*, session: AsyncSession, task_id: str, reason: str) -> None:
    await session.execute(
        update(Task)
        .where(Task.id == task_id)
        .values(
            status=TaskStatus.PENDING,
            message=reason[:500],
            worker=None,
            lease_until=None,
            updated_at=utcnow(),
        )
    )
    await session.commit()


async def request_cancel(*, session: AsyncSession, task_id: str) -> Task:
    task = await get_or_raise(session=session, task_id=task_id)
    if task.status == TaskStatus.PENDING:
        await finish(
            session=session,
            task_id=task_id,
            status=TaskStatus.CANCELLED,
            error="cancelled before it started",
        )
    elif task.status == TaskStatus.RUNNING:
        task.cancel_requested = True
        await session.commit()
    await session.refresh(task)
    return task


async def is_cancel_requested(*, session: AsyncSession, task_id: str) -> bool:
    value = await session.scalar(select(Task.cancel_requested).where(Task.id == task_id))
    return bool(value)


async def unfinished(*, session: AsyncSession) -> list[Task]:
    stmt = select(Task).where(Task.status.in_([TaskStatus.PENDING, TaskStatus.RUNNING]))
    return list((await session.scalars(stmt.order_by(Task.created_at))).all())
