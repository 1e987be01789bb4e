"""Task status and results."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from avatarbot.api.deps import CurrentUser, ServicesDep, SessionDep
from avatarbot.auth.access import Caller, may_read_task
from avatarbot.errors import Conflict, NotFound
from avatarbot.jobs import service as task_service
from avatarbot.storage.models import Task, TaskStatus, User

router = APIRouter(prefix="/tasks", tags=["tasks"])

MEDIA_TYPES = {".mp4": "video/mp4", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}


class TaskPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    task_type: str
    status: str
    progress: float
    stage: str
    message: str
    error_message: str | None
    attempts: int
    result: dict[str, Any] | None
    result_url: str | None = None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def of(cls, task: Task) -> TaskPublic:
        public = cls.model_validate(task)
        if public.result:
            # Server file paths are internal layout; clients fetch results by URL.
            public.result = {
                k: v for k, v in public.result.items() if k != "path" and not k.endswith("_path")
            }
        if task.status == TaskStatus.COMPLETED and task.result_path:
            public.result_url = f"/api/v1/tasks/{task.id}/result"
        return public


async def _visible_task(session: SessionDep, task_id: str, user: User) -> Task:
    task = await task_service.get(session=session, task_id=task_id)
    # Other users' tasks (and chat-made ones, for non-superusers) look exactly like missing ones.
    if task is None or not may_read_task(task, Caller.of(user)):
        raise NotFound(f"task {task_id} not found")
    return task


# Beyond this no page exists anyway, and SQLite/PostgreSQL integers overflow at 2**63.
MAX_OFFSET = 2**31 - 1


@router.get("", response_model=list[TaskPublic])
async def read_tasks(
    user: CurrentUser,
    session: SessionDep,
    status: TaskStatus | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> list[TaskPublic]:
    """List tasks (your own; all for superusers), newest first."""
    tasks = await task_service.list_tasks(
        session=session,
        user_id=None if user.is_superuser else user.id,
        status=status,
        limit=limit,
        offset=offset,
    )
    return [TaskPublic.of(t) for t in tasks]


@router.get("/{task_id}", response_model=TaskPublic)
async def read_task(task_id: str, user: CurrentUser, session: SessionDep) -> TaskPublic:
    """A task's status, progress, error and result."""
    return TaskPublic.of(await _visible_task(session, task_id, user))


@router.get(
    "/{task_id}/result",
    responses={
        200: {"content": {"video/mp4": {}, "audio/wav": {}, "application/octet-stream": {}}}
    },
)
async def read_task_result(task_id: str, user: CurrentUser, session: SessionDep) -> FileResponse:
    """The task's output file (the MP4 for video tasks)."""
    task = await _visible_task(session, task_id, user)
    if task.status != TaskStatus.COMPLETED or not task.result_path:
        raise Conflict(f"task {task_id} has no result yet (status: {task.status.value})")
    path = Path(task.result_path)
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("the result file no longer exists")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
        filename=path.name,
    )


@router.post("/{task_id}/cancel", response_model=TaskPublic)
async def cancel_task(
    task_id: str, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> TaskPublic:
    """Ask a pending or running task to stop."""
    await _visible_task(session, task_id, user)
    task = await task_service.request_cancel(session=session, task_id=task_id)
    await services.executor.cancel(task_id)
    return TaskPublic.of(task)


@router.post("/{task_id}/retry", response_model=TaskPublic)
async def retry_task(
    task_id: str, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> TaskPublic:
    """Run a failed or cancelled task again."""
    task = await _visible_task(session, task_id, user)
    if task.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        raise Conflict(f"only failed or cancelled tasks can be retried (status: {task.status})")
    task.status = TaskStatus.PENDING
    task.cancel_requested = False
    task.progress = 0.0
    await session.commit()
    await services.executor.submit(task.id)
    await session.refresh(task)
    return TaskPublic.of(task)
