"""The local executor runs Task rows off the event loop and records every transition."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest

from avatarbot.errors import Cancelled, InvalidInput
from avatarbot.jobs import service
from avatarbot.jobs.handlers import JobContext, register_handler
from avatarbot.jobs.lease import HOST
from avatarbot.jobs.progress import ProgressEvent
from avatarbot.services import Services
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import TaskStatus, TaskType

MAIN_THREAD = threading.get_ident()
GATE = threading.Event()


def _handler(ctx: JobContext) -> dict[str, Any]:
    assert threading.get_ident() != MAIN_THREAD  # never on the event loop thread
    mode = ctx.params["mode"]
    if mode == "fail":
        raise InvalidInput("text is empty")
    if mode == "crash":
        raise RuntimeError("secret details must not leak")
    for i in range(1, 5):
        ctx.report("work", i * 25.0, f"step {i}")
        if mode == "cancel" and i == 2:
            GATE.wait(5)
            if ctx.cancelled():
                raise Cancelled("cancelled")
    return {"answer": 42}


@pytest.fixture
def services(app: Any) -> Services:
    register_handler(TaskType.CUSTOM, _handler)
    return app.state.services


async def _run(services: Services, **params: Any) -> tuple[str, list[ProgressEvent]]:
    async with services.db.session() as s:
        task = await service.create(session=s, task_type=TaskType.CUSTOM, params=params)
    events: list[ProgressEvent] = []
    async with services.bus.subscribe(lambda e: e.task_id == task.id) as queue:
        await services.executor.submit(task.id)
        await services.executor.submit(task.id)  # idempotent
        await services.executor.wait(task.id, timeout=10)
        while not queue.empty():
            events.append(queue.get_nowait())
    return task.id, events


async def test_success_records_result_and_ordered_progress(services: Services) -> None:
    task_id, events = await _run(services, mode="ok")
    async with services.db.session() as s:
        task = await service.get_or_raise(session=s, task_id=task_id)
    assert task.status == TaskStatus.COMPLETED and task.progress == 100.0
    assert task.result == {"answer": 42} and task.attempts == 1
    percents = [e.percent for e in events if e.stage == "work"]
    assert percents == [25.0, 50.0, 75.0, 100.0]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert events[-1].status == "completed"


async def test_domain_error_is_recorded_for_the_user(services: Services) -> None:
    task_id, events = await _run(services, mode="fail")
    async with services.db.session() as s:
        task = await service.get_or_raise(session=s, task_id=task_id)
    assert task.status == TaskStatus.FAILED and task.error_message == "text is empty"
    assert events[-1].error == "text is empty"


async def test_unexpected_error_hides_details(services: Services) -> None:
    task_id, _ = await _run(services, mode="crash")
    async with services.db.session() as s:
        task = await service.get_or_raise(session=s, task_id=task_id)
    assert task.status == TaskStatus.FAILED
    assert task.error_message == "internal error (RuntimeError)"


async def test_cancel_running_task(services: Services) -> None:
    GATE.clear()
    async with services.db.session() as s:
        task = await service.create(session=s, task_type=TaskType.CUSTOM, params={"mode": "cancel"})
    async with services.bus.subscribe(lambda e: e.task_id == task.id) as queue:
        await services.executor.submit(task.id)
        while True:  # wait until the handler reported step 2
            event = await queue.get()
            if event.percent >= 50.0:
                break
    async with services.db.session() as s:
        await service.request_cancel(session=s, task_id=task.id)
    await services.executor.cancel(task.id)
    GATE.set()
    assert await services.executor.wait(task.id, timeout=10) == TaskStatus.CANCELLED


async def test_restart_requeues_running_tasks(services: Services) -> None:
    dead = await asyncio.create_subprocess_exec("true")  # a pid of this host, now gone
    await dead.wait()
    async with services.db.session() as s:
        task = await service.create(session=s, task_type=TaskType.CUSTOM, params={"mode": "ok"})
        await service.claim(session=s, task_id=task.id, worker=f"{HOST}:{dead.pid}:old")
    # What a fresh process does at start-up: its dead predecessor's lease counts for nothing.
    assert await services.executor.recover() == 1
    assert await services.executor.wait(task.id, timeout=10) == TaskStatus.COMPLETED
    async with services.db.session() as s:
        done = await service.get_or_raise(session=s, task_id=task.id)
    assert done.attempts == 2


async def test_a_live_lease_is_not_taken_over(services: Services) -> None:
    """A second process must not take a task another live process is rendering."""
    async with services.db.session() as s:
        task = await service.create(session=s, task_type=TaskType.CUSTOM, params={"mode": "ok"})
        await service.claim(session=s, task_id=task.id, worker="other-host:4242:x", lease_s=60)
    assert await services.executor.recover() == 0
    async with services.db.session() as s:
        row = await service.get_or_raise(session=s, task_id=task.id)
        assert row.status == TaskStatus.RUNNING and row.worker == "other-host:4242:x"
        # The other process stops renewing: once the lease has expired the task is ours.
        row.lease_until = utcnow() - timedelta(seconds=1)
        await s.commit()
    assert await services.executor.recover() == 1
    assert await services.executor.wait(task.id, timeout=10) == TaskStatus.COMPLETED


async def test_a_lost_lease_drops_the_late_result(services: Services) -> None:
    """A runner whose task was taken over must not overwrite the new runner's outcome."""
    async with services.db.session() as s:
        task = await service.create(session=s, task_type=TaskType.CUSTOM, params={"mode": "ok"})
        await service.claim(session=s, task_id=task.id, worker="old-runner")
        await service.requeue(session=s, task_id=task.id, reason="taken over")
        await service.claim(session=s, task_id=task.id, worker="new-runner")
        assert not await service.finish(
            session=s, task_id=task.id, status=TaskStatus.FAILED, error="late", worker="old-runner"
        )
        row = await service.get_or_raise(session=s, task_id=task.id)
        assert row.status == TaskStatus.RUNNING and row.worker == "new-runner"
