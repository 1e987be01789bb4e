"""Without Redis or a shared volume, replicas on one database follow each other's plugin
enable/disable: two real apps (separate DATA_DIRs, one SQLite file), the API on one, the
other's plugin list checked through its own API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from avatarbot.app import create_app
from tests.conftest import make_settings, register_and_login

PLUGIN = "image_processor"


@contextlib.asynccontextmanager
async def _replica(tmp_path: Path, name: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path / name, database_url=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.services.plugins.follower.interval_s = 0.1
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def _plugin(client: httpx.AsyncClient, headers: dict[str, str]) -> dict:
    rows = (await client.get("/api/v1/plugins/list", headers=headers)).json()["plugins"]
    return next(row for row in rows if row["name"] == PLUGIN)


async def _wait_for(client: httpx.AsyncClient, headers: dict[str, str], **want: object) -> None:
    import asyncio

    for _ in range(100):
        row = await _plugin(client, headers)
        if all(row[key] == value for key, value in want.items()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{PLUGIN} never became {want}: {row}")


async def test_disable_and_enable_on_one_replica_reach_the_other(tmp_path: Path) -> None:
    async with _replica(tmp_path, "a") as first, _replica(tmp_path, "b") as second:
        admin = await register_and_login(first)
        r = await second.post(
            "/api/v1/auth/login",
            data={"username": "admin@example.com", "password": "correct horse battery"},
        )
        on_second = {"Authorization": f"Bearer {r.json()['access_token']}"}
        await _wait_for(second, on_second, enabled=True, loaded=True)

        r = await first.post(f"/api/v1/plugins/{PLUGIN}/disable", headers=admin)
        assert r.status_code == 200 and r.json()["enabled"] is False
        await _wait_for(second, on_second, enabled=False, loaded=False)

        assert (await first.post(f"/api/v1/plugins/{PLUGIN}/enable", headers=admin)).is_success
        await _wait_for(second, on_second, enabled=True, loaded=True)

    # A replica started later adopts the recorded state, not its own (empty) state file.
    async with _replica(tmp_path, "a") as first:
        assert (await first.post(f"/api/v1/plugins/{PLUGIN}/disable", headers=admin)).is_success
    async with _replica(tmp_path, "c") as third:
        r = await third.post(
            "/api/v1/auth/login",
            data={"username": "admin@example.com", "password": "correct horse battery"},
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        await _wait_for(third, headers, enabled=False, loaded=False)
