"""Without Redis or a shared volume, replicas on one database follow each other's plugin
enable/disable: two real apps (separate DATA_DIRs, one SQLite file), the API on one, the
other's plugin list checked through its own API."""

from __future__ import annotations

import asyncio
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


async def test_a_row_read_before_a_click_does_not_undo_the_click(tmp_path: Path) -> None:
    """The follower read 'disabled' (the previous click), then the admin clicks Enable: the
    stale row must not be applied after the click (the console showed 'Enable' again)."""
    async with _replica(tmp_path, "a") as client:
        admin = await register_and_login(client)
        follower = client._transport.app.state.services.plugins.follower  # type: ignore[attr-defined]
        await follower.stop()  # polls are driven by hand below
        assert (await client.post(f"/api/v1/plugins/{PLUGIN}/disable", headers=admin)).is_success

        read_done, resume = asyncio.Event(), asyncio.Event()
        read_rows = follower._read_rows

        async def paused_read() -> list:
            rows = await read_rows()
            read_done.set()
            await resume.wait()
            return rows

        follower._read_rows = paused_read
        poll = asyncio.create_task(follower.poll())
        await read_done.wait()
        enable = asyncio.create_task(client.post(f"/api/v1/plugins/{PLUGIN}/enable", headers=admin))
        await asyncio.wait({enable}, timeout=2.0)  # unguarded, the click completes here
        resume.set()
        await poll
        assert (await enable).is_success
        row = await _plugin(client, admin)  # what the console shows after the click
        assert row["enabled"] is True and row["loaded"] is True, row
        follower._read_rows = read_rows
        await follower.poll()  # the row the click wrote changes nothing
        assert (await _plugin(client, admin))["enabled"] is True
