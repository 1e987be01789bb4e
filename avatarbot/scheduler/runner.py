"""SchedulerService: APScheduler triggers, exactly-once fires across replicas, catch-up, run now.

Every replica runs the same cron jobs. A fire first inserts ScheduleRun(schedule_id,
fire_time); the unique key lets exactly one replica's insert succeed, and only that replica
generates and pushes the report. Fire times come from the cron trigger and the injectable
clock, never from "when the job happened to wake up", so all replicas compute the same key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from avatarbot.errors import AvatarbotError
from avatarbot.jobs.lease import owner_is_dead
from avatarbot.killpoint import kill_point
from avatarbot.scheduler import service as schedule_service
from avatarbot.scheduler.delivery import ChannelReportSender, ReportSender, RobotReportSender
from avatarbot.scheduler.reports import generate_report
from avatarbot.scheduler.validation import cron_trigger, fire_times_between
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Delivery, Schedule, ScheduleRun

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEFAULT_GRACE_S = 600.0
DEFAULT_SYNC_S = 30.0
RUN_NOW_WAIT_S = 30.0
STALE_RUN_S = 2 * 3600.0  # longer than any report (video generation is bounded at 30 min)


def run_key(schedule_id: str, fire_time: datetime) -> str:
    """Stable per (schedule, fire time): the outbox group and the platforms' idempotency key."""
    return f"schedule:{schedule_id}:{_utc(fire_time).isoformat()}"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class SchedulerService:
    def __init__(
        self,
        services: Any,
        *,
        clock: Clock = utcnow,
        misfire_grace_s: float = DEFAULT_GRACE_S,
        sync_interval_s: float = DEFAULT_SYNC_S,
        senders: dict[str, ReportSender] | None = None,
        instance: str | None = None,
        use_apscheduler: bool = True,
    ) -> None:
        self.services = services
        self.clock = clock
        self.misfire_grace_s = misfire_grace_s
        self.sync_interval_s = sync_interval_s
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.senders: dict[str, ReportSender] = {
            "webhook": RobotReportSender(services),
            "feishu": ChannelReportSender(services, "feishu"),
            "wecom": ChannelReportSender(services, "wecom"),
            "wecom_bot": ChannelReportSender(services, "wecom_bot"),
            **(senders or {}),
        }
        self.use_apscheduler = use_apscheduler
        self._scheduler: Any = None
        self._jobs: dict[str, tuple[str, str]] = {}  # schedule id -> (cron, timezone)
        self._background: set[asyncio.Task[Any]] = set()
        self.catch_up: asyncio.Task[list[ScheduleRun]] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if self.use_apscheduler:
            from apscheduler.schedulers.asyncio import AsyncIOScheduler

            self._scheduler = AsyncIOScheduler(timezone=UTC)
            self._scheduler.start()
            self._scheduler.add_job(
                self.sync, "interval", seconds=self.sync_interval_s, id="__sync__",
                coalesce=True, max_instances=1,
            )  # fmt: skip
            await self.sync()
        await self._resume_runs_of_dead_processes()
        await self._fail_interrupted_runs()
        # Fires missed while no replica ran (within the grace period) run once now, in the
        # background: a report (maybe a video) must not hold up the server's start.
        self.catch_up = asyncio.create_task(self.tick(), name="scheduler-catch-up")
        self._background.add(self.catch_up)
        self.catch_up.add_done_callback(self._background.discard)

    async def _resume_runs_of_dead_processes(self) -> int:
        """Runs left `running` by a process of this host that died: finish them now.

        A run whose replies are already in the outbox is left to the outbox; one that died
        before is executed again (its fire time and key are the same, so nothing doubles).
        """
        async with self.services.db.session() as session:
            rows = list(
                (
                    await session.scalars(
                        select(ScheduleRun).where(ScheduleRun.status == "running")
                    )
                ).all()
            )
        resumed = 0
        for run in rows:
            if not run.instance or not owner_is_dead(run.instance):
                continue
            fire_time = _utc(run.fire_time)
            prefix = f"push:{run_key(run.schedule_id, fire_time)}:"
            async with self.services.db.session() as session:
                queued = await session.scalar(
                    select(Delivery.id).where(Delivery.group_key.startswith(prefix))
                )
                claimed = await session.execute(
                    update(ScheduleRun)
                    .where(ScheduleRun.id == run.id, ScheduleRun.instance == run.instance)
                    .values(instance=self.instance[:200])
                )
                await session.commit()
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another process resumed it
            if queued is not None:
                await self._finish(run, "done", None, {"resumed": "outbox"})
            else:
                self._spawn(self._execute(run, run.schedule_id, fire_time))
            resumed += 1
        if resumed:
            logger.info("resumed %d schedule run(s) a stopped process left", resumed)
        return resumed

    def _spawn(self, coro: Any) -> None:
        job = asyncio.create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _fail_interrupted_runs(self) -> None:
        """Runs left `running` by a process that died are marked failed, not left forever."""
        cutoff = _utc(self.clock()) - timedelta(seconds=STALE_RUN_S)
        async with self.services.db.session() as session:
            await session.execute(
                update(ScheduleRun)
                .where(ScheduleRun.status == "running", ScheduleRun.created_at < cutoff)
                .values(
                    status="failed",
                    error="interrupted: the server stopped during this run",
                    finished_at=utcnow(),
                )
            )
            await session.commit()

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for job in list(self._background):
            job.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def sync(self) -> None:
        """Make the APScheduler jobs match the enabled schedules in the shared DB."""
        if self._scheduler is None:
            return
        async with self.services.db.session() as session:
            schedules = await schedule_service.list_schedules(session=session, enabled=True)
        wanted = {s.id: (s.cron, s.timezone) for s in schedules}
        for schedule_id in set(self._jobs) - set(wanted):
            self._remove_job(schedule_id)
        for schedule_id, spec in wanted.items():
            if self._jobs.get(schedule_id) == spec:
                continue
            try:
                trigger = cron_trigger(*spec)
            except AvatarbotError as exc:  # edited outside the API
                logger.warning("schedule %s not scheduled: %s", schedule_id, exc.message)
                continue
            self._scheduler.add_job(
                self._on_trigger, trigger, args=[schedule_id], id=schedule_id,
                replace_existing=True, coalesce=True, max_instances=1,
                misfire_grace_time=int(self.misfire_grace_s),
            )  # fmt: skip
            self._jobs[schedule_id] = spec

    def _remove_job(self, schedule_id: str) -> None:
        self._jobs.pop(schedule_id, None)
        if self._scheduler is not None and self._scheduler.get_job(schedule_id):
            self._scheduler.remove_job(schedule_id)

    def next_run_time(self, schedule_id: str) -> datetime | None:
        job = self._scheduler.get_job(schedule_id) if self._scheduler is not None else None
        return job.next_run_time if job is not None else None

    async def _on_trigger(self, schedule_id: str) -> None:
        async with self.services.db.session() as session:
            schedule = await session.get(Schedule, schedule_id)
        if schedule is not None and schedule.enabled:
            await self.fire_due(schedule)

    # --- firing --------------------------------------------------------------------------

    async def tick(self) -> list[ScheduleRun]:
        """Fire every enabled schedule whose latest fire time (within grace) is not recorded."""
        async with self.services.db.session() as session:
            schedules = await schedule_service.list_schedules(session=session, enabled=True)
        runs = await asyncio.gather(*(self.fire_due(s) for s in schedules))
        return [run for run in runs if run is not None]

    def due_fire_time(self, schedule: Schedule, now: datetime | None = None) -> datetime | None:
        """The latest cron fire time in [now - grace, now]; missed earlier ones coalesce into it."""
        now = _utc(now or self.clock())
        try:
            trigger = cron_trigger(schedule.cron, schedule.timezone)
        except AvatarbotError:
            return None
        start = now - timedelta(seconds=self.misfire_grace_s)
        if schedule.created_at is not None:  # never fire times from before it existed
            start = max(start, _utc(schedule.created_at))
        times = fire_times_between(trigger, start, now)
        return _utc(times[-1]).replace(microsecond=0) if times else None

    async def fire_due(self, schedule: Schedule) -> ScheduleRun | None:
        fire_time = self.due_fire_time(schedule)
        if fire_time is None:
            return None
        return await self.fire(schedule.id, fire_time)

    async def run_now(self, schedule_id: str, wait_s: float = RUN_NOW_WAIT_S) -> ScheduleRun:
        """Run a schedule immediately (API "run now").

        Waits up to `wait_s` for the push; a longer run (a video report) goes on in the
        background and the returned record says "running" (see the schedule's runs).
        """
        now = _utc(self.clock())
        # Cron fire times are whole seconds; a manual key never collides with one.
        if now.microsecond == 0:
            now += timedelta(microseconds=1)
        run = await self._claim(schedule_id, now, manual=True)
        assert run is not None  # a manual fire time is unique to this call
        job = asyncio.create_task(self._execute(run, schedule_id, now))
        self._background.add(job)
        job.add_done_callback(self._background.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(job), wait_s)
        except TimeoutError:
            return run

    async def fire(
        self, schedule_id: str, fire_time: datetime, *, manual: bool = False
    ) -> ScheduleRun | None:
        """Claim (schedule_id, fire_time), then generate and push. None when another won."""
        run = await self._claim(schedule_id, fire_time, manual)
        if run is None:
            return None
        return await self._execute(run, schedule_id, fire_time)

    async def _execute(
        self, run: ScheduleRun, schedule_id: str, fire_time: datetime
    ) -> ScheduleRun:
        async with self.services.db.session() as session:
            schedule = await session.get(Schedule, schedule_id)
            if schedule is not None:
                schedule.last_fire_at = fire_time
                await session.commit()
        status, error, receipt = "done", None, None
        try:
            if schedule is None:
                raise AvatarbotError("the schedule was deleted")
            key = run_key(schedule_id, fire_time)
            kill_point("ack")  # test only: the run is claimed, nothing generated yet
            robot = schedule.target.get("platform") == "webhook"
            # App chats get a pending video through the outbox (durable across restarts);
            # a robot can only carry a link, so it waits for the finished file.
            report = await generate_report(self.services, schedule, run_key=key, wait_video=robot)
            sender = self.senders[schedule.target["platform"]]
            receipt = await sender.send(schedule.target, report, key=key)
            receipt = {**receipt, "kind": report.kind, "task_id": report.task_id}
        except asyncio.CancelledError:
            status, error = "failed", "the scheduler stopped during this run"
            await self._finish(run, status, error, receipt)
            raise
        except AvatarbotError as exc:
            status, error = "failed", exc.message
        except Exception as exc:
            logger.exception("schedule %s run failed", schedule_id)
            status, error = "failed", f"internal error ({type(exc).__name__})"
        if error:
            logger.warning("schedule %s at %s failed: %s", schedule_id, fire_time, error)
        return await self._finish(run, status, error, receipt)

    async def _claim(
        self, schedule_id: str, fire_time: datetime, manual: bool
    ) -> ScheduleRun | None:
        run = ScheduleRun(
            schedule_id=schedule_id,
            fire_time=fire_time,
            manual=manual,
            status="running",
            instance=self.instance[:200],
        )
        async with self.services.db.session() as session:
            session.add(run)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return None  # another replica fired this one
            await session.refresh(run)
        return run

    async def _finish(
        self, run: ScheduleRun, status: str, error: str | None, receipt: dict[str, Any] | None
    ) -> ScheduleRun:
        async with self.services.db.session() as session:
            row = await session.get(ScheduleRun, run.id)
            assert row is not None
            row.status = status
            row.error = error
            row.result = receipt
            row.task_id = (receipt or {}).get("task_id")
            row.finished_at = utcnow()
            await session.commit()
            await session.refresh(row)
            return row
