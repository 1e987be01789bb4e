"""WS /api/v1/ws/progress: auth (query or first message, else 1008), subscriptions, order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from avatarbot.app import create_app
from avatarbot.config import Settings
from avatarbot.jobs import service
from avatarbot.jobs.handlers import JobContext, register_handler
from avatarbot.storage.models import TaskType

RELEASE = threading.Event()


def _stepping_handler(ctx: JobContext) -> dict[str, Any]:
    RELEASE.wait(10)  # lets the test subscribe before the first step
    for i in range(1, 11):
        ctx.report("render", i * 10.0, f"frame batch {i}")
    return {"frames": 10}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    register_handler(TaskType.CUSTOM, _stepping_handler)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _token(client: TestClient, email: str = "a@example.com") -> str:
    password = "correct horse battery"
    r = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/login", data={"username": email, "password": password})
    return r.json()["access_token"]


def _create_task(client: TestClient, user_id: int | None) -> str:
    services = client.app.state.services  # type: ignore[attr-defined]

    async def _create() -> str:
        async with services.db.session() as s:
            task = await service.create(
                session=s, task_type=TaskType.CUSTOM, params={}, user_id=user_id
            )
        await services.executor.submit(task.id)
        return task.id

    return client.portal.call(_create)  # type: ignore[union-attr]


def _control(ws: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The next non-progress frame; progress frames that come first are kept in `events`."""
    while True:
        message = ws.receive_json()
        if message["type"] != "progress":
            return message
        events.append(message)


def _until_done(ws: Any, events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    events = events if events is not None else []
    if events and events[-1]["status"] in ("completed", "failed", "cancelled"):
        return events
    while True:
        message = ws.receive_json()
        if message["type"] == "progress":
            events.append(message)
            if message["status"] in ("completed", "failed", "cancelled"):
                return events


def _expect_1008(ws: Any) -> None:
    assert ws.receive_json()["code"] == "unauthorized"
    with pytest.raises(WebSocketDisconnect) as info:
        ws.receive_json()
    assert info.value.code == 1008


def test_unauthenticated_socket_is_closed_with_1008(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/ws/progress?token=garbage") as ws:
        _expect_1008(ws)
    with client.websocket_connect("/api/v1/ws/progress") as ws:
        ws.send_json({"type": "subscribe", "all": True})  # no auth message first
        _expect_1008(ws)


def test_subscribed_task_events_arrive_in_order(client: TestClient) -> None:
    RELEASE.clear()
    token = _token(client)
    task_id = _create_task(client, user_id=1)
    with client.websocket_connect("/api/v1/ws/progress") as ws:
        ws.send_json({"type": "auth", "token": token})  # first-message auth
        assert ws.receive_json() == {"type": "authenticated", "user_id": 1}
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        ws.send_json({"type": "subscribe", "task_ids": [task_id, "missing"]})
        # The task's "start" event may already interleave with the answers to subscribe.
        early: list[dict[str, Any]] = []
        assert _control(ws, early) == {"type": "error", "detail": "task missing not found"}
        assert _control(ws, early) == {"type": "subscribed", "task_ids": [task_id], "all": False}
        snapshot = _control(ws, early)
        assert snapshot["type"] == "snapshot" and snapshot["task_id"] == task_id
        RELEASE.set()
        events = _until_done(ws, early)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    render = [e["percent"] for e in events if e["stage"] == "render"]
    assert render == [i * 10.0 for i in range(1, 11)]
    assert events[-1]["status"] == "completed" and events[-1]["result"] == {"frames": 10}


def test_all_of_own_tasks_excludes_other_users(client: TestClient) -> None:
    RELEASE.set()
    token = _token(client)  # user 1 (superuser: first user)
    client.app.state.config.settings.auth.open_registration = True  # type: ignore[attr-defined]
    other = _token(client, "b@example.com")  # user 2
    with client.websocket_connect(f"/api/v1/ws/progress?token={other}") as ws:
        assert ws.receive_json()["type"] == "authenticated"
        ws.send_json({"type": "subscribe", "all": True})
        assert ws.receive_json() == {"type": "subscribed", "task_ids": [], "all": True}
        foreign = _create_task(client, user_id=1)
        own = _create_task(client, user_id=2)
        events = _until_done(ws)
    assert {e["task_id"] for e in events} == {own}
    assert foreign != own
    registry = client.app.state.services.ws_connections  # type: ignore[attr-defined]
    assert registry.stats()["total"] == 0  # the closed socket was unregistered
    assert token
