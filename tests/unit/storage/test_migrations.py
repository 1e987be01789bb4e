"""Migrations create exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from avatarbot.storage import migrate
from avatarbot.storage.base import Base
from avatarbot.storage.db import create_engine
from avatarbot.storage.models import Task, TaskStatus, TaskType, User


def _diff(url: str) -> list[object]:
    async def _run() -> list[object]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def _tables(url: str) -> set[str]:
    async def _run() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(_run())


def test_upgrade_matches_models_and_downgrade_empties(any_database_url: str) -> None:
    migrate.upgrade(any_database_url)
    assert migrate.current(any_database_url) == migrate.head()
    assert _diff(any_database_url) == []
    assert {"users", "tasks", "digital_humans", "processed_events"} <= _tables(any_database_url)
    migrate.downgrade(any_database_url, "base")
    assert migrate.current(any_database_url) is None
    assert _tables(any_database_url) <= {"alembic_version"}


async def test_task_rows_round_trip_enums_and_json(any_database_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, any_database_url)
    from avatarbot.storage.db import Database

    db = Database(any_database_url)
    try:
        async with db.session() as s:
            user = User(email="u@example.com", password_hash="x")
            s.add(user)
            await s.commit()
            task = Task(
                user_id=user.id,
                task_type=TaskType.VIDEO_GENERATION,
                params={"text": "你好", "n": [1, 2]},
            )
            s.add(task)
            await s.commit()
            task_id = task.id
        async with db.session() as s:
            loaded = await s.get(Task, task_id)
            assert loaded is not None
            assert loaded.status is TaskStatus.PENDING
            assert loaded.task_type is TaskType.VIDEO_GENERATION
            assert loaded.params == {"text": "你好", "n": [1, 2]}
            assert loaded.created_at is not None
            # deleting the user cascades to their tasks
            await s.delete(await s.get(User, loaded.user_id))
            await s.commit()
        async with db.session() as s:
            assert await s.get(Task, task_id) is None
    finally:
        await db.dispose()
