"""A delivery of a task whose worker died: re-queued and run again, or failed with the reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from avatarbot.config import Settings
from avatarbot.jobs import service
from avatarbot.jobs.handlers import JobContext, register_handler
from avatarbot.jobs.progress import LocalProgressBus
from avatarbot.jobs.worker import execute_in_worker
from avatarbot.storage import migrate
from avatarbot.storage.base import utcnow
from avatarbot.storage.db import Database
from avatarbot.storage.models import Task, TaskStatus, TaskType
from tests.conftest import make_settings


def _quick(ctx: JobContext) -> dict[str, Any]:
    ctx.report("work", 50.0, "half")
    return {"attempt": ctx.attempt}


@pytest.fixture
async def env(tmp_path: Path) -> Any:
    register_handler(TaskType.CUSTOM, _quick)
    settings: Settings = make_settings(tmp_path, jobs={"heartbeat_timeout_s": 5, "max_attempts": 2})
    settings.ensure_dirs()
    migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    bus = LocalProgressBus()
    await bus.start()
    yield db, bus, settings
    await db.dispose()


async def _running(db: Database, *, attempts: int, beat_age_s: float) -> str:
    async with db.session() as s:
        task = await service.create(session=s, task_type=TaskType.CUSTOM, params={})
        row = await s.get(Task, task.id)
        assert row is not None
        row.status, row.attempts, row.worker = TaskStatus.RUNNING, attempts, "gone:123"
        row.heartbeat_at = utcnow() - timedelta(seconds=beat_age_s)
        await s.commit()
        return task.id


async def _row(db: Database, task_id: str) -> Task:
    async with db.session() as s:
        return await service.get_or_raise(session=s, task_id=task_id)


async def test_stale_task_with_attempts_left_is_rerun(env: Any) -> None:
    db, bus, settings = env
    task_id = await _running(db, attempts=1, beat_age_s=60)
    async with bus.subscribe() as events:
        outcome = await execute_in_worker(db=db, bus=bus, settings=settings, task_id=task_id)
        first = events.get_nowait()
    assert outcome == "completed"
    row = await _row(db, task_id)
    assert row.status == TaskStatus.COMPLETED and row.attempts == 2
    assert row.result == {"attempt": 2}
    assert first.stage == "recovered" and "gone:123" in first.message


async def test_stale_task_out_of_attempts_fails_with_reason(env: Any) -> None:
    db, bus, settings = env
    task_id = await _running(db, attempts=2, beat_age_s=60)
    outcome = await execute_in_worker(db=db, bus=bus, settings=settings, task_id=task_id)
    assert outcome == "failed after worker loss"
    row = await _row(db, task_id)
    assert row.status == TaskStatus.FAILED
    assert row.error_message == "the worker (gone:123) stopped during attempt 2 of 2; giving up"


async def test_live_task_is_left_to_its_worker_and_finished_one_is_not_rerun(env: Any) -> None:
    db, bus, settings = env
    task_id = await _running(db, attempts=1, beat_age_s=1)
    assert await execute_in_worker(db=db, bus=bus, settings=settings, task_id=task_id) == (
        "running elsewhere"
    )
    assert (await _row(db, task_id)).status == TaskStatus.RUNNING
    async with db.session() as s:
        await service.finish(session=s, task_id=task_id, status=TaskStatus.COMPLETED)
    assert await execute_in_worker(db=db, bus=bus, settings=settings, task_id=task_id) == (
        "already completed"
    )
    assert await execute_in_worker(db=db, bus=bus, settings=settings, task_id="nope") == "missing"


def _slow(ctx: JobContext) -> dict[str, Any]:
    import time

    from avatarbot.errors import Cancelled

    for _ in range(100):
        if ctx.cancelled():
            raise Cancelled("cancelled")
        time.sleep(0.05)
    return {}


async def test_time_limit_fails_the_task_and_stops_the_handler(tmp_path: Path) -> None:
    register_handler(TaskType.BATCH_PROCESSING, _slow)
    settings = make_settings(tmp_path, jobs={"task_time_limit_s": 1})
    settings.ensure_dirs()
    migrate.upgrade(settings.database_url)
    db = Database(settings.database_url)
    bus = LocalProgressBus()
    await bus.start()
    try:
        async with db.session() as s:
            task = await service.create(session=s, task_type=TaskType.BATCH_PROCESSING, params={})
        outcome = await execute_in_worker(db=db, bus=bus, settings=settings, task_id=task.id)
        assert outcome == "timed out"
        row = await _row(db, task.id)
        assert row.status == TaskStatus.FAILED
        assert row.error_message == "time limit exceeded (1 s)"
    finally:
        await db.dispose()


async def test_submit_with_redis_down_is_a_clear_error(env: Any) -> None:
    from avatarbot.errors import BackendUnavailable
    from avatarbot.jobs.celery_executor import CeleryExecutor

    db, bus, settings = env
    settings = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    executor = CeleryExecutor(db=db, bus=bus, settings=settings)
    await executor.start()  # starts anyway: nothing to re-queue, the sweeper keeps trying
    try:
        async with db.session() as s:
            task = await service.create(session=s, task_type=TaskType.CUSTOM, params={})
        with pytest.raises(BackendUnavailable, match="job queue \\(Redis\\) is unreachable"):
            await executor.submit(task.id)
        assert (await _row(db, task.id)).status == TaskStatus.PENDING  # re-sent later
    finally:
        await executor.stop()
