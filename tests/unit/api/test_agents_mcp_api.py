"""mcp_servers through the agents API: who may add what (403), bad settings (422), masking.

No server is started here: refusals happen before anything runs.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings, register_and_login

PYTHON = sys.executable


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], Any]]:
    from avatarbot.app import create_app

    app = create_app(make_settings(tmp_path, mcp={"allowed_commands": f"{PYTHON}, uvx"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, await register_and_login(client), app


def stdio(command: str, **extra: Any) -> dict[str, Any]:
    return {"name": "local", "transport": "stdio", "command": command, **extra}


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], servers: Any
) -> httpx.Response:
    body = {"name": "a1", "capabilities": ["mcp"], "mcp_servers": servers}
    return await client.post("/api/v1/agents/create", json=body, headers=headers)


async def test_stdio_commands_outside_the_allowlist_are_refused(api: Any) -> None:
    client, admin, _app = api
    sh = shutil.which("sh") or "/bin/sh"
    for command in ("sh", sh, "python3", f"/tmp/evil/{Path(PYTHON).name}", "uvx2"):
        r = await create(client, admin, [stdio(command)])
        assert r.status_code == 403, (command, r.text)
        assert "AVATARBOT_MCP__ALLOWED_COMMANDS" in r.json()["detail"]
    r = await client.get("/api/v1/agents/a1", headers=admin)
    assert r.status_code == 404  # nothing was stored
    # Listed ones pass: an absolute path, and a bare name exactly as listed.
    r = await create(client, admin, [stdio(PYTHON, args=["-m", "x"], env={"TOKEN": "t0ps3cret"})])
    assert r.status_code == 201, r.text
    assert r.json()["mcp_servers"][0]["env"] == {"TOKEN": "********"}
    assert "t0ps3cret" not in r.text
    r = await client.put("/api/v1/agents/a1", json={"mcp_servers": [stdio("uvx")]}, headers=admin)
    assert r.status_code == 200 and r.json()["mcp_servers"][0]["command"] == "uvx"
    # Changing an existing server to a refused command is refused too, and keeps the old one.
    r = await client.put("/api/v1/agents/a1", json={"mcp_servers": [stdio("bash")]}, headers=admin)
    assert r.status_code == 403
    r = await client.get("/api/v1/agents/a1", headers=admin)
    assert r.json()["mcp_servers"][0]["command"] == "uvx"


async def test_empty_allowlist_means_no_stdio_servers(tmp_path: Path) -> None:
    from avatarbot.app import create_app

    app = create_app(make_settings(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            admin = await register_and_login(client)
            r = await create(client, admin, [stdio(PYTHON)])
            assert r.status_code == 403
            assert "AVATARBOT_MCP__ALLOWED_COMMANDS (now empty: no stdio servers)" in r.text
            remote = {"name": "r", "transport": "http", "url": "https://mcp.example.com/mcp"}
            assert (await create(client, admin, [remote])).status_code == 201


async def test_only_superusers_change_mcp_servers(api: Any) -> None:
    client, _admin, app = api
    app.state.config.settings.auth.open_registration = True
    user = await register_and_login(client, email="u@example.com", password="another password")
    r = await create(client, user, [stdio(PYTHON)])
    assert r.status_code == 403
    r = await create(client, user, [{"name": "r", "transport": "http", "url": "http://x/mcp"}])
    assert r.status_code == 403
    # The manager refuses stdio servers unless the caller is allowed to add them.
    with pytest.raises(Exception, match="only a superuser"):
        await app.state.services.agents.create_agent("a2", mcp_servers=[stdio(PYTHON)])


BAD_SERVERS = [
    ({"name": "x", "transport": "ftp", "url": "http://h/"}, "mcp_servers[0].transport"),
    ({"name": "x", "transport": "http"}, "an http server needs an http(s):// url"),
    ({"name": "x", "transport": "sse", "url": "file:///etc/passwd"}, "http(s):// url"),
    ({"name": "x", "transport": "stdio"}, "a stdio server needs a command"),
    ({"name": "a__b", "transport": "http", "url": "http://h/"}, "single '_'"),
    ({"name": "x", "transport": "http", "url": "http://h/", "command": "ls"}, "for stdio"),
    ({"name": "x", "transport": "http", "url": "http://h/", "color": 1}, "Extra inputs"),
    (
        {"name": "x", "transport": "http", "url": "http://h/", "headers": {"A": "1\r\nB: 2"}},
        "line break",
    ),
    ({"name": "x", "transport": "stdio", "command": PYTHON, "env": {"1X": "y"}}, "1X"),
    ({"name": "x", "transport": "http", "url": "http://h/", "tools": ["a b"]}, "tool names"),
    ("just a string", "mcp_servers"),
]


async def test_bad_server_settings_are_422(api: Any) -> None:
    client, admin, _app = api
    for server, message in BAD_SERVERS:
        r = await create(client, admin, [server])
        assert r.status_code == 422, r.text
        assert message in str(r.json()["detail"]), (server, r.text)


async def test_duplicate_names_and_too_many_servers_are_422(api: Any) -> None:
    client, admin, _app = api
    one = {"name": "x", "transport": "http", "url": "http://h/mcp"}
    r = await create(client, admin, [one, one])
    assert r.status_code == 422 and "unique" in r.text
    many = [{**one, "name": f"s{i}"} for i in range(17)]
    assert (await create(client, admin, many)).status_code == 422


async def test_masked_value_for_a_new_key_is_422(api: Any) -> None:
    client, admin, _app = api
    remote = {"name": "r", "transport": "http", "url": "http://h/mcp", "headers": {"X-Key": "k1"}}
    assert (await create(client, admin, [remote])).status_code == 201
    changed = {**remote, "headers": {"X-Key": "********", "X-Other": "********"}}
    r = await client.put("/api/v1/agents/a1", json={"mcp_servers": [changed]}, headers=admin)
    assert r.status_code == 422 and "X-Other has no stored value" in r.text
    # Without mcp_servers in the body the stored servers stay as they are.
    r = await client.put("/api/v1/agents/a1", json={"prompt": "hi"}, headers=admin)
    assert r.json()["mcp_servers"] == [{**remote, "headers": {"X-Key": "********"}}]


async def test_agent_without_the_mcp_capability_lists_servers_as_disabled(api: Any) -> None:
    client, admin, _app = api
    remote = {"name": "r", "transport": "http", "url": "http://127.0.0.1:9/mcp"}
    body = {"name": "plain", "capabilities": ["video"], "mcp_servers": [remote]}
    assert (await client.post("/api/v1/agents/create", json=body, headers=admin)).status_code == 201
    r = await client.get("/api/v1/agents/plain/tools", headers=admin)
    assert r.status_code == 200
    assert not [t for t in r.json()["data"] if t["source"].startswith("mcp:")]
    assert r.json()["mcp_servers"] == [
        {
            "name": "r",
            "status": "disabled",
            "transport": "http",
            "reason": "the agent lacks the 'mcp' capability",
        }
    ]
    assert (await client.get("/api/v1/agents/nope/tools", headers=admin)).status_code == 404
    health = (await client.get("/health")).json()["components"]["mcp"]
    assert health["servers"]["plain/r"]["status"] == "disabled"
