from __future__ import annotations

import httpx

from tests.conftest import register_and_login


async def test_agents_crud(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    r = await client.post(
        "/api/v1/agents/create",
        json={
            "name": "reporter",
            "prompt": "You write reports.",
            "capabilities": ["video", "schedule"],
        },
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] and body["name"] == "reporter" and body["brain"] == "auto"
    assert body["capabilities"] == ["video", "schedule"]

    r = await client.post(
        "/api/v1/agents/create", json={"name": "reporter", "prompt": ""}, headers=admin_headers
    )
    assert r.status_code == 409
    r = await client.post(
        "/api/v1/agents/create",
        json={"name": "x", "capabilities": ["fly"]},
        headers=admin_headers,
    )
    assert r.status_code == 422 and "unknown capability" in r.json()["detail"]
    r = await client.post("/api/v1/agents/create", json={"name": "bad name"}, headers=admin_headers)
    assert r.status_code == 422

    r = await client.get("/api/v1/agents/list", headers=admin_headers)
    assert [a["name"] for a in r.json()] == ["assistant", "reporter"]

    r = await client.put(
        "/api/v1/agents/reporter",
        json={"system_prompt": "Short reports.", "capabilities": ["voice"], "brain": "rules"},
        headers=admin_headers,
    )
    assert r.status_code == 200
    assert r.json()["prompt"] == "Short reports." and r.json()["capabilities"] == ["voice"]
    r = await client.get("/api/v1/agents/reporter", headers=admin_headers)
    assert r.json()["brain"] == "rules"

    assert (
        await client.delete("/api/v1/agents/assistant", headers=admin_headers)
    ).status_code == 409
    assert (
        await client.delete("/api/v1/agents/reporter", headers=admin_headers)
    ).status_code == 200
    assert (await client.get("/api/v1/agents/reporter", headers=admin_headers)).status_code == 404
    assert (
        await client.delete("/api/v1/agents/reporter", headers=admin_headers)
    ).status_code == 404
    assert (
        await client.put("/api/v1/agents/nope", json={}, headers=admin_headers)
    ).status_code == 404


async def test_agents_auth(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: object
) -> None:
    assert (await client.get("/api/v1/agents/list")).status_code == 401
    assert (await client.post("/api/v1/agents/create", json={"name": "a"})).status_code == 401
    # A second, ordinary user may read but not change agents.
    app.state.config.settings.auth.open_registration = True  # type: ignore[attr-defined]
    user = await register_and_login(
        client, email="user@example.com", password="another good password"
    )
    assert (await client.get("/api/v1/agents/list", headers=user)).status_code == 200
    assert (await client.get("/api/v1/agents/assistant", headers=user)).status_code == 200
    r = await client.post("/api/v1/agents/create", json={"name": "mine"}, headers=user)
    assert r.status_code == 403
    assert (await client.put("/api/v1/agents/assistant", json={}, headers=user)).status_code == 403
    assert (await client.delete("/api/v1/agents/assistant", headers=user)).status_code == 403
    assert (await client.get("/api/v1/ws/connections", headers=user)).status_code == 403
    r = await client.get("/api/v1/ws/connections", headers=admin_headers)
    assert r.status_code == 200 and r.json()["total"] == 0
