"""Scheduled reports: CRUD, run now, run history, next-run preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from avatarbot.api.deps import CurrentUser, ServicesDep, SessionDep
from avatarbot.auth.access import Caller
from avatarbot.errors import BackendUnavailable
from avatarbot.scheduler import service as schedule_service
from avatarbot.scheduler.target_access import check_target
from avatarbot.scheduler.validation import next_runs
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Schedule, ScheduleRun, User

router = APIRouter(prefix="/scheduler", tags=["scheduler"])


def _as_utc(value: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; they are UTC, and the API says so.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


# Caps on free text (fuzzing stored a 5 MB prompt): same limits as agents' prompts.
Short = Annotated[str, Field(max_length=200)]
Prompt = Annotated[str, Field(max_length=20_000)]


class Target(BaseModel):
    platform: Literal["feishu", "wecom", "wecom_bot", "webhook"] | Short
    chat_id: Short | None = None
    chat_type: Short | None = None  # wecom_bot: "single" (chat_id is a user id) or "group"
    user_id: Short | None = None
    url: Annotated[str, Field(max_length=2000)] | None = None
    secret: Short | None = None  # Feishu custom bot signing secret (webhook targets)


class ScheduleCreate(BaseModel):
    name: Short
    cron: Short = Field(examples=["0 9 * * 1-5"])
    timezone: Short = "UTC"
    agent: Short
    prompt: Prompt
    output: Short = "text"  # text | markdown | video (checked with a clear message)
    target: Target
    enabled: bool = True


class ScheduleUpdate(BaseModel):
    name: Short | None = None
    cron: Short | None = None
    timezone: Short | None = None
    agent: Short | None = None
    prompt: Prompt | None = None
    output: Short | None = None
    target: Target | None = None
    enabled: bool | None = None


class SchedulePublic(BaseModel):
    id: str
    name: str
    cron: str
    timezone: str
    agent: str
    prompt: str
    output: str
    target: dict[str, Any]
    enabled: bool
    last_fire_at: UtcDatetime | None
    next_runs: list[datetime]
    created_at: UtcDatetime
    updated_at: UtcDatetime

    @classmethod
    def of(cls, schedule: Schedule) -> SchedulePublic:
        upcoming = next_runs(schedule.cron, schedule.timezone, 3, now=utcnow())
        return cls(
            id=schedule.id,
            name=schedule.name,
            cron=schedule.cron,
            timezone=schedule.timezone,
            agent=schedule.agent,
            prompt=schedule.prompt,
            output=schedule.output,
            target=_public_target(schedule.target or {}),
            enabled=schedule.enabled,
            last_fire_at=schedule.last_fire_at,
            next_runs=upcoming if schedule.enabled else [],
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    schedule_id: str
    fire_time: UtcDatetime
    manual: bool
    status: str
    instance: str
    task_id: str | None
    result: dict[str, Any] | None
    error: str | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None


def _public_target(target: dict[str, Any]) -> dict[str, Any]:
    # A robot webhook URL is a credential (anyone holding it can post): show only its end.
    public = dict(target)
    url = public.get("url")
    if url:
        public["url"] = f"{url[: url.find('/', 8) + 1]}…{url[-4:]}"
    if public.get("secret"):
        public["secret"] = "***"
    return public


def _owner_filter(user: User) -> int | None:
    return None if user.is_superuser else user.id


def _scheduler(services: ServicesDep) -> Any:
    if services.scheduler is None:
        raise BackendUnavailable("the scheduler is not running in this process")
    return services.scheduler


@router.post("/create", response_model=SchedulePublic, status_code=201)
async def create_schedule(
    body: ScheduleCreate, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> SchedulePublic:
    """Create a schedule; bad cron, timezone, agent or target -> 422 with the reason."""
    values = body.model_dump()
    values["target"] = body.target.model_dump(exclude_none=True)
    await check_target(values["target"], caller=Caller.of(user), settings=services.settings)
    schedule = await schedule_service.create(session=session, values=values, user_id=user.id)
    if services.scheduler is not None:
        await services.scheduler.sync()
    return SchedulePublic.of(schedule)


@router.get("/list", response_model=list[SchedulePublic])
async def list_schedules(
    user: CurrentUser, session: SessionDep, enabled: bool | None = None
) -> list[SchedulePublic]:
    """Your schedules (all of them for superusers)."""
    schedules = await schedule_service.list_schedules(
        session=session, user_id=_owner_filter(user), enabled=enabled
    )
    return [SchedulePublic.of(s) for s in schedules]


@router.get("/preview")
async def preview_next_runs(
    _user: CurrentUser, cron: str, timezone: str = "UTC", n: int = Query(5, ge=1, le=50)
) -> dict[str, Any]:
    """The next n fire times of a cron line (422 with the reason when it is invalid)."""
    return {
        "cron": cron,
        "timezone": timezone,
        "next_runs": next_runs(cron, timezone, n, now=utcnow()),
    }


@router.get("/{task_id}", response_model=SchedulePublic)
async def read_schedule(task_id: str, user: CurrentUser, session: SessionDep) -> SchedulePublic:
    schedule = await schedule_service.get(
        session=session, schedule_id=task_id, user_id=_owner_filter(user)
    )
    return SchedulePublic.of(schedule)


@router.put("/{task_id}", response_model=SchedulePublic)
async def update_schedule(
    task_id: str,
    body: ScheduleUpdate,
    user: CurrentUser,
    session: SessionDep,
    services: ServicesDep,
) -> SchedulePublic:
    """Change any fields (the rest stay); validated like create."""
    schedule = await schedule_service.get(
        session=session, schedule_id=task_id, user_id=_owner_filter(user)
    )
    changes = body.model_dump(exclude_none=True)
    if body.target is not None:
        changes["target"] = body.target.model_dump(exclude_none=True)
        await check_target(changes["target"], caller=Caller.of(user), settings=services.settings)
    schedule = await schedule_service.update(session=session, schedule=schedule, changes=changes)
    if services.scheduler is not None:
        await services.scheduler.sync()
    return SchedulePublic.of(schedule)


@router.delete("/{task_id}", status_code=204)
async def delete_schedule(
    task_id: str, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> Response:
    schedule = await schedule_service.get(
        session=session, schedule_id=task_id, user_id=_owner_filter(user)
    )
    await schedule_service.remove(session=session, schedule=schedule)
    if services.scheduler is not None:
        await services.scheduler.sync()
    return Response(status_code=204)


@router.post("/{task_id}/run", response_model=RunPublic)
async def run_schedule_now(
    task_id: str, user: CurrentUser, session: SessionDep, services: ServicesDep
) -> RunPublic:
    """Run the schedule now and push the report; the answer is the run record."""
    await schedule_service.get(session=session, schedule_id=task_id, user_id=_owner_filter(user))
    run: ScheduleRun = await _scheduler(services).run_now(task_id)
    return RunPublic.model_validate(run)


@router.get("/{task_id}/runs", response_model=list[RunPublic])
async def list_runs(
    task_id: str,
    user: CurrentUser,
    session: SessionDep,
    limit: int = Query(50, ge=1, le=500),
) -> list[RunPublic]:
    """Past runs, newest first: fire time, status, error."""
    await schedule_service.get(session=session, schedule_id=task_id, user_id=_owner_filter(user))
    rows = await schedule_service.runs(session=session, schedule_id=task_id, limit=limit)
    return [RunPublic.model_validate(r) for r in rows]
