"""Two app instances on one DB fire each schedule time exactly once; missed fires catch up once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from avatarbot.app import create_app
from avatarbot.scheduler import service as schedule_service
from avatarbot.scheduler.runner import SchedulerService
from avatarbot.services import Services
from avatarbot.storage.models import Agent, ScheduleRun
from tests.conftest import make_settings
from tests.helpers.fake_robot import FakeRobotServer
from tests.helpers.stub_agents import StubAgents


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def robot() -> Any:
    with FakeRobotServer() as server:
        yield server


@pytest.fixture
async def two_instances(
    tmp_path: Path, any_database_url: str
) -> AsyncIterator[tuple[Services, Services]]:
    # One shared database (SQLite file or PostgreSQL) for both apps.
    settings = make_settings(
        tmp_path, database_url=any_database_url, scheduler={"allow_private_urls": True}
    )
    apps = [create_app(settings), create_app(settings, run_migrations=False)]
    async with (
        apps[0].router.lifespan_context(apps[0]),
        apps[1].router.lifespan_context(apps[1]),
    ):
        for application in apps:
            services = application.state.services
            services.agents = StubAgents(services.agents)
        yield apps[0].state.services, apps[1].state.services


async def _use_clock(services: Services, clock: FakeClock, name: str) -> SchedulerService:
    await services.scheduler.stop()  # the real-clock scheduler of the lifespan
    scheduler = SchedulerService(services, clock=clock, instance=name, use_apscheduler=False)
    services.scheduler = scheduler
    return scheduler


async def _every_minute_schedule(services: Services, url: str) -> str:
    async with services.db.session() as session:
        session.add(Agent(name="reporter"))
        await session.commit()
        schedule = await schedule_service.create(
            session=session,
            values={
                "name": "minutely",
                "cron": "* * * * *",
                "timezone": "Asia/Shanghai",
                "agent": "reporter",
                "prompt": "status report",
                "output": "text",
                "target": {"platform": "webhook", "url": url},
            },
            user_id=None,
        )
    return schedule.id


def _next_minute() -> datetime:
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def test_two_replicas_push_once_per_fire_time(
    two_instances: tuple[Services, Services], robot: FakeRobotServer
) -> None:
    a, b = two_instances
    sid = await _every_minute_schedule(a, robot.wecom_url)
    start = _next_minute()
    clock = FakeClock(start + timedelta(seconds=1))
    sched_a = await _use_clock(a, clock, "replica-a")
    sched_b = await _use_clock(b, clock, "replica-b")

    for minute in range(3):
        # Both replicas wake for the same fire time, several times, concurrently.
        results = await asyncio.gather(
            sched_a.tick(), sched_b.tick(), sched_a.tick(), sched_b.tick()
        )
        assert sum(len(r) for r in results) == 1, f"minute {minute}: {results}"
        assert len(robot.received()) == minute + 1
        clock.advance(seconds=60)

    async with a.db.session() as session:
        runs = list(
            (await session.scalars(select(ScheduleRun).order_by(ScheduleRun.fire_time))).all()
        )
    fire_times = [r.fire_time.replace(tzinfo=UTC) for r in runs]
    assert fire_times == [start + timedelta(minutes=i) for i in range(3)]
    assert all(r.schedule_id == sid and r.status == "done" for r in runs)
    assert {r.instance for r in runs} <= {"replica-a", "replica-b"}
    assert [p["body"] for p in robot.received()] == [
        {"msgtype": "text", "text": {"content": "Report: status report"}}
    ] * 3


async def test_missed_fires_within_grace_run_once_after_restart(
    two_instances: tuple[Services, Services], robot: FakeRobotServer
) -> None:
    a, _b = two_instances
    await _every_minute_schedule(a, robot.feishu_url)
    start = _next_minute()
    clock = FakeClock(start + timedelta(seconds=2))
    scheduler = await _use_clock(a, clock, "replica-a")
    assert len(await scheduler.tick()) == 1
    await scheduler.stop()

    # Down for three fire times, back within the grace period: one coalesced run, the latest.
    clock.advance(minutes=3, seconds=10)
    restarted = SchedulerService(a, clock=clock, misfire_grace_s=600, use_apscheduler=False)
    await restarted.start()
    assert restarted.catch_up is not None
    assert len(await restarted.catch_up) == 1
    assert len(robot.received()) == 2
    async with a.db.session() as session:
        latest = await session.scalar(select(ScheduleRun).order_by(ScheduleRun.fire_time.desc()))
    assert latest is not None and latest.fire_time.replace(tzinfo=UTC) == start + timedelta(
        minutes=3
    )
    await restarted.stop()

    # Down longer than the grace period: nothing stale is pushed on start.
    clock.advance(minutes=30)
    late = SchedulerService(a, clock=clock, misfire_grace_s=30, use_apscheduler=False)
    clock.advance(seconds=45)  # the latest fire time is now 45 s old, beyond 30 s of grace
    await late.start()
    assert late.catch_up is not None and await late.catch_up == []
    assert len(robot.received()) == 2
    await late.stop()


async def test_apscheduler_jobs_follow_the_shared_db(
    two_instances: tuple[Services, Services], robot: FakeRobotServer
) -> None:
    a, b = two_instances
    sid = await _every_minute_schedule(a, robot.feishu_url)
    # Replica b learns about a schedule created through replica a on its next sync.
    await b.scheduler.sync()
    next_run = b.scheduler.next_run_time(sid)
    assert next_run is not None
    assert timedelta(0) < next_run - datetime.now(UTC) <= timedelta(seconds=61)
    async with a.db.session() as session:
        schedule = await schedule_service.get(session=session, schedule_id=sid)
        await schedule_service.update(
            session=session, schedule=schedule, changes={"enabled": False}
        )
    await b.scheduler.sync()
    assert b.scheduler.next_run_time(sid) is None


async def test_the_apscheduler_callback_fires_the_due_time_once(
    two_instances: tuple[Services, Services], robot: FakeRobotServer
) -> None:
    a, b = two_instances
    sid = await _every_minute_schedule(a, robot.feishu_url)
    clock = FakeClock(_next_minute() + timedelta(milliseconds=300))
    sched_a = await _use_clock(a, clock, "replica-a")
    sched_b = await _use_clock(b, clock, "replica-b")
    # What APScheduler calls at the cron time, on both replicas at once.
    await asyncio.gather(sched_a._on_trigger(sid), sched_b._on_trigger(sid))
    assert len(robot.received()) == 1
