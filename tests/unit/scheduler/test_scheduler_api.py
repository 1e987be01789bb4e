"""Scheduler API: validation answers 422 with the reason, CRUD, run now pushes once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.config import Settings
from avatarbot.services import Services
from avatarbot.storage.models import Agent
from tests.conftest import make_settings
from tests.helpers.fake_robot import FakeRobotServer
from tests.helpers.stub_agents import StubAgents


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The fake robot listens on 127.0.0.1: a private address, refused unless allowed.
    return make_settings(tmp_path, scheduler={"allow_private_urls": True})


@pytest.fixture
def services(app: Any) -> Services:
    services = app.state.services
    services.agents = StubAgents(
        services.agents
    )  # a fixed answer, whatever agents domain is installed
    return services


@pytest.fixture
async def agent(services: Services) -> str:
    async with services.db.session() as session:
        session.add(Agent(name="reporter", prompt="You write short reports."))
        await session.commit()
    return "reporter"


@pytest.fixture
def robot() -> Any:
    with FakeRobotServer() as server:
        yield server


def _body(agent_name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "daily",
        "cron": "0 9 * * 1-5",
        "timezone": "Asia/Shanghai",
        "agent": agent_name,
        "prompt": "Summarise yesterday's sales.",
        "output": "markdown",
        "target": {"platform": "feishu", "chat_id": "oc_123"},
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"cron": "61 * * * *"}, "invalid cron '61 * * * *'"),
        ({"cron": "every day"}, "expected 5 fields"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"agent": "nobody"}, "unknown agent 'nobody' (known agents: "),
        ({"output": "gif"}, "unknown output 'gif'"),
        ({"target": {"platform": "slack", "chat_id": "x"}}, "unknown target platform 'slack'"),
        ({"target": {"platform": "feishu"}}, "feishu needs a chat_id"),
        ({"target": {"platform": "wecom"}}, "wecom needs a chat_id or a user_id"),
        ({"target": {"platform": "webhook"}}, "needs the group robot's url"),
        (
            {"target": {"platform": "webhook", "url": "https://example.com/hook"}},
            "not a Feishu or WeCom group robot webhook",
        ),
        ({"target": {"platform": "webhook", "url": "ftp://x/y"}}, "must be an http(s) URL"),
    ],
)
async def test_invalid_schedule_is_422_with_reason(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    agent: str,
    changes: dict[str, Any],
    reason: str,
) -> None:
    r = await client.post(
        "/api/v1/scheduler/create", json=_body(agent, **changes), headers=admin_headers
    )
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]


async def test_crud_round_trip(
    client: httpx.AsyncClient, admin_headers: dict[str, str], agent: str
) -> None:
    r = await client.post("/api/v1/scheduler/create", json=_body(agent), headers=admin_headers)
    assert r.status_code == 201, r.text
    created = r.json()
    sid = created["id"]
    assert created["target"] == {"platform": "feishu", "chat_id": "oc_123"}
    # 09:00 Shanghai is 01:00 UTC, weekdays only.
    assert len(created["next_runs"]) == 3
    assert all(t.endswith("+08:00") and "T09:00:00" in t for t in created["next_runs"])

    listed = (await client.get("/api/v1/scheduler/list", headers=admin_headers)).json()
    assert [s["id"] for s in listed] == [sid]

    r = await client.put(
        f"/api/v1/scheduler/{sid}",
        json={"cron": "*/5 * * * *", "enabled": False},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["cron"] == "*/5 * * * *" and r.json()["enabled"] is False
    assert r.json()["prompt"] == "Summarise yesterday's sales."  # untouched fields stay
    r = await client.put(f"/api/v1/scheduler/{sid}", json={"cron": "* *"}, headers=admin_headers)
    assert r.status_code == 422 and "invalid cron" in r.json()["detail"]

    got = (await client.get(f"/api/v1/scheduler/{sid}", headers=admin_headers)).json()
    assert got["cron"] == "*/5 * * * *"
    assert (
        await client.delete(f"/api/v1/scheduler/{sid}", headers=admin_headers)
    ).status_code == 204
    assert (await client.get(f"/api/v1/scheduler/{sid}", headers=admin_headers)).status_code == 404
    assert (await client.get("/api/v1/scheduler/list")).status_code == 401


async def test_preview_next_runs(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> None:
    r = await client.get(
        "/api/v1/scheduler/preview",
        params={"cron": "30 8 * * *", "timezone": "UTC", "n": 4},
        headers=admin_headers,
    )
    assert r.status_code == 200
    runs = r.json()["next_runs"]
    assert len(runs) == 4 and all("T08:30:00" in t for t in runs)
    r = await client.get(
        "/api/v1/scheduler/preview", params={"cron": "99 * * * *"}, headers=admin_headers
    )
    assert r.status_code == 422 and "invalid cron" in r.json()["detail"]


@pytest.mark.parametrize("robot_kind", ["feishu", "wecom"])
async def test_run_now_pushes_once_to_group_robot(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    agent: str,
    robot: FakeRobotServer,
    robot_kind: str,
    services: Services,
) -> None:
    url = robot.feishu_url if robot_kind == "feishu" else robot.wecom_url
    body = _body(agent, target={"platform": "webhook", "url": url}, output="markdown")
    r = await client.post("/api/v1/scheduler/create", json=body, headers=admin_headers)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert "test-key" not in r.text and "test-token" not in r.text  # robot URL is a credential

    r = await client.post(f"/api/v1/scheduler/{sid}/run", headers=admin_headers)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "done" and run["manual"] is True and run["error"] is None
    assert run["fire_time"].endswith(("+00:00", "Z"))  # times come back as UTC

    pushes = robot.received()
    assert len(pushes) == 1
    if robot_kind == "feishu":
        assert pushes[0]["path"] == "/open-apis/bot/v2/hook/test-token"
        assert pushes[0]["body"]["msg_type"] == "interactive"
        content = pushes[0]["body"]["card"]["elements"][0]["content"]
        assert content == "Report: Summarise yesterday's sales."
    else:
        assert pushes[0]["path"] == "/cgi-bin/webhook/send?key=test-key"
        assert pushes[0]["body"] == {
            "msgtype": "markdown",
            "markdown": {"content": "Report: Summarise yesterday's sales."},
        }
    runs = (await client.get(f"/api/v1/scheduler/{sid}/runs", headers=admin_headers)).json()
    assert [x["id"] for x in runs] == [run["id"]]
    [asked] = services.agents.messages  # the schedule's agent got the prompt, as the scheduler
    assert asked.channel == "scheduler" and asked.raw["agent"] == "reporter"
    assert asked.text == "Summarise yesterday's sales."


async def test_run_now_failure_is_recorded_with_reason(
    client: httpx.AsyncClient, admin_headers: dict[str, str], agent: str
) -> None:
    # A Feishu app chat while no Feishu channel is configured: the run fails visibly.
    r = await client.post("/api/v1/scheduler/create", json=_body(agent), headers=admin_headers)
    sid = r.json()["id"]
    run = (await client.post(f"/api/v1/scheduler/{sid}/run", headers=admin_headers)).json()
    assert run["status"] == "failed"
    assert run["error"] == "channel feishu is not configured"


async def test_video_report_to_a_robot_is_markdown_with_the_video_link(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    agent: str,
    robot: FakeRobotServer,
    services: Services,
) -> None:
    import avatarbot.pipeline.tasks  # noqa: F401  (built-in handlers first, then our override)
    from avatarbot.jobs.handlers import register_handler
    from avatarbot.storage.models import TaskType
    from tests.helpers.job_handlers import make_test_video

    register_handler(TaskType.VIDEO_GENERATION, make_test_video)
    body = _body(agent, output="video", target={"platform": "webhook", "url": robot.wecom_url})
    sid = (await client.post("/api/v1/scheduler/create", json=body, headers=admin_headers)).json()[
        "id"
    ]
    run = (await client.post(f"/api/v1/scheduler/{sid}/run", headers=admin_headers)).json()
    assert run["status"] == "done", run
    task_id = run["task_id"]
    assert task_id
    r = await client.get(f"/api/v1/tasks/{task_id}/result", headers=admin_headers)
    assert r.status_code == 200 and r.content[4:8] == b"ftyp"  # a real MP4
    [push] = robot.received()
    content = push["body"]["markdown"]["content"]
    assert push["body"]["msgtype"] == "markdown"
    assert content.startswith("Report: Summarise yesterday's sales.")
    assert content.endswith(f"/api/v1/tasks/{task_id}/result")


async def test_signed_feishu_robot_gets_a_signature_and_the_secret_stays_hidden(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    agent: str,
    robot: FakeRobotServer,
    services: Services,
) -> None:
    target = {"platform": "webhook", "url": robot.feishu_url, "secret": "s3cr3t-value"}
    r = await client.post(
        "/api/v1/scheduler/create", json=_body(agent, target=target), headers=admin_headers
    )
    assert r.status_code == 201 and "s3cr3t-value" not in r.text
    assert r.json()["target"]["secret"] == "***"
    run = (
        await client.post(f"/api/v1/scheduler/{r.json()['id']}/run", headers=admin_headers)
    ).json()
    assert run["status"] == "done", run
    [push] = robot.received()
    assert push["body"]["sign"] and push["body"]["timestamp"]  # Feishu signature fields
