"""Run records: a slow run-now answers "running" and finishes later; interrupted runs fail."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from avatarbot.scheduler import service as schedule_service
from avatarbot.scheduler.reports import Report
from avatarbot.scheduler.runner import STALE_RUN_S, SchedulerService
from avatarbot.services import Services
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Agent, ScheduleRun
from tests.helpers.stub_agents import StubAgents


class GatedSender:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, target: dict[str, Any], report: Report, *, key: str) -> dict[str, Any]:
        await self.gate.wait()
        self.sent.append(report.text)
        return {"fake": True}


@pytest.fixture
async def services(app: Any) -> Services:
    services = app.state.services
    services.agents = StubAgents(services.agents)
    async with services.db.session() as session:
        session.add(Agent(name="reporter"))
        await session.commit()
    return services


async def _schedule(services: Services) -> str:
    async with services.db.session() as session:
        schedule = await schedule_service.create(
            session=session,
            values={
                "name": "slow",
                "cron": "0 9 * * *",
                "agent": "reporter",
                "prompt": "weekly digest",
                "target": {"platform": "feishu", "chat_id": "oc_1"},
            },
            user_id=None,
        )
    return schedule.id


async def test_slow_run_now_answers_running_then_finishes(services: Services) -> None:
    sender = GatedSender()
    scheduler = SchedulerService(services, senders={"feishu": sender}, use_apscheduler=False)
    sid = await _schedule(services)
    run = await scheduler.run_now(sid, wait_s=0.2)
    assert run.status == "running" and run.finished_at is None
    sender.gate.set()
    async with asyncio.timeout(5):
        while True:
            async with services.db.session() as session:
                row = await session.get(ScheduleRun, run.id)
            if row is not None and row.status != "running":
                break
            await asyncio.sleep(0.05)
    assert row.status == "done" and row.result is not None and row.result["fake"] is True
    assert sender.sent == ["Report: weekly digest"]
    await scheduler.stop()


async def test_runs_left_running_by_a_dead_process_are_failed_on_start(services: Services) -> None:
    sid = await _schedule(services)
    async with services.db.session() as session:
        old = ScheduleRun(
            schedule_id=sid,
            fire_time=utcnow() - timedelta(days=1),
            created_at=utcnow() - timedelta(seconds=STALE_RUN_S + 60),
        )
        recent = ScheduleRun(schedule_id=sid, fire_time=utcnow() - timedelta(minutes=1))
        session.add_all([old, recent])
        await session.commit()
        ids = (old.id, recent.id)
    scheduler = SchedulerService(services, use_apscheduler=False)
    await scheduler.start()
    async with services.db.session() as session:
        old_row = await session.get(ScheduleRun, ids[0])
        recent_row = await session.get(ScheduleRun, ids[1])
    assert old_row is not None and old_row.status == "failed"
    assert old_row.error == "interrupted: the server stopped during this run"
    assert recent_row is not None and recent_row.status == "running"  # maybe still working
    await scheduler.stop()
