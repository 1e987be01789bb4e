"""Access control (issue 15 item 4): one regression test per case found by the attack run."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from websockets.asyncio.client import connect

from avatarbot.config import Settings
from avatarbot.storage.models import (
    Agent,
    DigitalHuman,
    Schedule,
    Task,
    TaskStatus,
    TaskType,
    User,
    VoiceProfile,
)
from tests.conftest import make_settings, register_and_login
from tests.helpers.fake_robot import FakeRobotServer
from tests.helpers.task_handlers import media_handlers

PASSWORD = "correct horse battery"


PORTRAIT = Path(__file__).resolve().parents[3] / "avatarbot/pipeline/assets/default_portrait.jpg"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, auth={"secret_key": "k" * 40, "open_registration": True})


@pytest.fixture
async def users(client: httpx.AsyncClient) -> dict[str, Any]:
    """The first (super)user and a normal user, with their bearer headers and ids."""
    admin = await register_and_login(client, "admin@example.com")
    alice = await register_and_login(client, "alice@example.com")
    ids = {}
    for name, headers in (("admin", admin), ("alice", alice)):
        ids[name] = (await client.get("/api/v1/auth/me", headers=headers)).json()["id"]
    return {"admin": admin, "alice": alice, "ids": ids}


async def _add(app: Any, *rows: Any) -> None:
    async with app.state.services.db.session() as session:
        session.add_all(rows)
        await session.commit()


# --- first user ------------------------------------------------------------------------


async def test_twelve_simultaneous_first_registrations_make_exactly_one_superuser(
    tmp_path: Path, any_database_url: str
) -> None:
    from avatarbot.app import create_app

    app = create_app(make_settings(tmp_path, database_url=any_database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/api/v1/auth/register",
                        json={"email": f"u{i}@example.com", "password": PASSWORD},
                    )
                    for i in range(12)
                )
            )
        codes = sorted(a.status_code for a in answers)
        # Registration is closed after the first account: exactly one wins, the rest are told.
        assert codes == [201] + [403] * 11, [a.text for a in answers]
        async with app.state.services.db.session() as session:
            supers = await session.scalar(
                select(func.count()).select_from(User).where(User.is_superuser.is_(True))
            )
            total = await session.scalar(select(func.count()).select_from(User))
        assert (supers, total) == (1, 1)


# --- tasks made from chats -----------------------------------------------------------------


async def test_chat_made_task_is_readable_only_by_superusers(
    app: Any, client: httpx.AsyncClient, users: dict[str, Any], tmp_path: Path
) -> None:
    video = tmp_path / "chat.mp4"
    video.write_bytes(b"not really an mp4")
    chat_task = Task(
        task_type=TaskType.VIDEO_GENERATION,
        status=TaskStatus.COMPLETED,
        name="feishu video: secret words",
        params={"text": "secret words", "source": {"channel": "feishu", "chat_id": "oc_1"}},
        result_path=str(video),
    )
    own = Task(task_type=TaskType.VIDEO_GENERATION, user_id=users["ids"]["alice"], name="mine")
    await _add(app, chat_task, own)
    for path in (f"/api/v1/tasks/{chat_task.id}", f"/api/v1/tasks/{chat_task.id}/result"):
        r = await client.get(path, headers=users["alice"])
        assert r.status_code == 404, r.text
        assert (await client.get(path, headers=users["admin"])).status_code == 200
    listed = (await client.get("/api/v1/tasks", headers=users["alice"])).json()
    assert [t["id"] for t in listed] == [own.id]
    assert (await client.get(f"/api/v1/tasks/{own.id}", headers=users["alice"])).status_code == 200


# --- voice profiles ----------------------------------------------------------------------


async def test_another_users_voice_profile_cannot_be_attached(
    app: Any, client: httpx.AsyncClient, users: dict[str, Any]
) -> None:
    theirs = VoiceProfile(user_id=users["ids"]["admin"], name="admin's voice")
    mine = VoiceProfile(user_id=users["ids"]["alice"], name="my voice")
    await _add(app, theirs, mine)

    async def create(profile_id: str) -> httpx.Response:
        return await client.post(
            "/api/v1/digital-human/create",
            headers=users["alice"],
            data={"name": "me", "voice_profile_id": profile_id},
            files={"image": ("p.png", b"not an image", "image/png")},
        )

    r = await create(theirs.id)
    assert r.status_code == 422 and "voice profile" in r.json()["detail"], r.text
    # Her own profile passes that check (the junk image is refused next, for its own reason).
    r = await create(mine.id)
    assert r.status_code == 422 and "voice profile" not in r.json()["detail"], r.text


# --- WS /ws/agent frame references ---------------------------------------------------------


@pytest.fixture
def handlers() -> Iterator[None]:
    with media_handlers():
        yield


@pytest.fixture
async def server(app: Any) -> AsyncIterator[str]:
    """A real uvicorn on 127.0.0.1 logging like `avatarbot serve` (log_config=None, INFO)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        log_level="info",
        timeout_graceful_shutdown=5,  # a stuck connection cannot hang the teardown
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await serving


async def _recv(ws: Any) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), 15))


async def test_ws_agent_frame_cannot_use_another_users_digital_human(
    app: Any, server: str, users: dict[str, Any], handlers: None, tmp_path: Path
) -> None:
    private = DigitalHuman(
        user_id=users["ids"]["admin"], name="admin portrait", image_path=str(tmp_path / "p.png")
    )
    await _add(app, private)
    token = users["alice"]["Authorization"].split(" ", 1)[1]
    async with connect(f"ws://{server}/api/v1/ws/agent?token={token}") as ws:
        assert (await _recv(ws))["type"] == "ready"
        frame = {
            "type": "message",
            "text": "make a video saying hi",
            "digital_human_id": private.id,
        }
        await ws.send(json.dumps(frame))
        answer = await _recv(ws)
    assert answer == {"type": "error", "code": "not_found", "detail": "digital human not found"}
    async with app.state.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 0


async def test_ws_progress_of_a_chat_made_task_is_not_shown_to_normal_users(
    app: Any, server: str, users: dict[str, Any]
) -> None:
    chat_task = Task(task_type=TaskType.VIDEO_GENERATION, name="feishu video: private words")
    await _add(app, chat_task)
    seen = {}
    for who in ("alice", "admin"):
        token = users[who]["Authorization"].split(" ", 1)[1]
        async with connect(f"ws://{server}/api/v1/ws/progress?token={token}") as ws:
            assert (await _recv(ws))["type"] == "authenticated"
            await ws.send(json.dumps({"type": "subscribe", "task_ids": [chat_task.id]}))
            seen[who] = await _recv(ws)
    assert seen["alice"] == {"type": "error", "detail": f"task {chat_task.id} not found"}
    assert seen["admin"]["type"] in ("snapshot", "subscribed")


async def test_ws_access_token_never_reaches_the_log(
    server: str, users: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    token = users["alice"]["Authorization"].split(" ", 1)[1]
    with caplog.at_level(logging.INFO):
        async with connect(f"ws://{server}/api/v1/ws/agent?token={token}&agent=x") as ws:
            assert (await _recv(ws))["type"] == "ready"
        async with httpx.AsyncClient() as http:
            await http.get(f"http://{server}/health?token={token}")
    accepted = [r for r in caplog.records if "[accepted]" in r.getMessage()]
    assert accepted, "uvicorn logs each accepted WebSocket at INFO"
    assert "token=***" in accepted[0].getMessage()
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text  # not even the signature part


# --- /health -------------------------------------------------------------------------------


async def test_health_shows_paths_and_urls_only_to_superusers(
    client: httpx.AsyncClient, users: dict[str, Any], settings: Settings
) -> None:
    data_dir = str(settings.data_dir)
    full = (await client.get("/health", headers=users["admin"])).text
    assert data_dir in full  # model paths under DATA_DIR name what is missing
    for headers in ({}, users["alice"], {"Authorization": "Bearer junk"}):
        r = await client.get("/health", headers=headers)
        assert r.status_code == 200
        assert data_dir not in r.text and "://" not in r.text, r.text
        assert r.json()["components"]["database"]["status"] == "ok"


# --- schedules -----------------------------------------------------------------------------


@pytest.fixture
async def agent(app: Any) -> str:
    await _add(app, Agent(name="reporter", prompt="Short reports."))
    return "reporter"


def _schedule(agent: str, target: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "daily",
        "cron": "0 9 * * *",
        "timezone": "UTC",
        "agent": agent,
        "prompt": "the summary",
        "output": "text",
        "target": target,
    }


async def test_normal_users_cannot_schedule_into_chats_they_are_not_bound_to(
    client: httpx.AsyncClient, users: dict[str, Any], agent: str
) -> None:
    body = _schedule(agent, {"platform": "feishu", "chat_id": "oc_someone_elses_group"})
    r = await client.post("/api/v1/scheduler/create", json=body, headers=users["alice"])
    assert r.status_code == 403 and "chats bound to your account" in r.json()["detail"]
    r = await client.post("/api/v1/scheduler/create", json=body, headers=users["admin"])
    assert r.status_code == 201, r.text
    # Nor by changing the target of a schedule she may have (a public robot).
    robot = {"platform": "webhook", "url": "https://93.184.216.34/open-apis/bot/v2/hook/t"}
    r = await client.post(
        "/api/v1/scheduler/create", json=_schedule(agent, robot), headers=users["alice"]
    )
    assert r.status_code == 201, r.text
    r = await client.put(
        f"/api/v1/scheduler/{r.json()['id']}",
        json={"target": {"platform": "wecom", "user_id": "boss"}},
        headers=users["alice"],
    )
    assert r.status_code == 403


async def test_chat_made_schedules_are_hidden_from_normal_users_and_stay_in_their_chat(
    app: Any, client: httpx.AsyncClient, users: dict[str, Any], agent: str
) -> None:
    from avatarbot.agents.tools.schedule import create_schedule
    from avatarbot.bot.types import Channel, IncomingMessage
    from avatarbot.errors import PermissionDenied

    services = app.state.services
    chat = IncomingMessage(channel=Channel.FEISHU, chat_id="oc_1", user_id="ou_1", text="")
    made = await create_schedule(services, agent=agent, message=chat, cron="0 9 * * *", prompt="x")
    with pytest.raises(PermissionDenied, match="same chat"):
        await create_schedule(
            services,
            agent=agent,
            message=chat,
            cron="0 9 * * *",
            prompt="x",
            target={"platform": "feishu", "chat_id": "oc_other"},
        )
    r = await client.get(f"/api/v1/scheduler/{made['schedule_id']}", headers=users["alice"])
    assert r.status_code == 404
    r = await client.get(f"/api/v1/scheduler/{made['schedule_id']}", headers=users["admin"])
    assert r.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://203.0.113.9/open-apis/bot/v2/hook/t",  # not https
        "https://127.0.0.1:8000/open-apis/bot/v2/hook/t",
        "https://10.1.2.3/cgi-bin/webhook/send?key=k",
        "https://169.254.169.254/open-apis/bot/v2/hook/t",
        "https://[::1]/open-apis/bot/v2/hook/t",
        "https://[::ffff:192.168.0.1]/open-apis/bot/v2/hook/t",
        "https://localhost/open-apis/bot/v2/hook/t",
        "https://redis/open-apis/bot/v2/hook/t",
    ],
)
async def test_robot_urls_must_be_https_on_public_hosts(
    client: httpx.AsyncClient, users: dict[str, Any], agent: str, url: str
) -> None:
    body = _schedule(agent, {"platform": "webhook", "url": url})
    r = await client.post("/api/v1/scheduler/create", json=body, headers=users["admin"])
    assert r.status_code == 422, r.text
    assert "https" in r.json()["detail"] or "private" in r.json()["detail"]


async def test_private_robot_urls_are_allowed_by_setting_and_checked_again_at_delivery(
    tmp_path: Path, agent: str, app: Any, users: dict[str, Any]
) -> None:
    from avatarbot.app import create_app

    with FakeRobotServer() as robot:
        # A schedule stored while private URLs were allowed (or whose host name later moved
        # to a private address) is refused at delivery when they no longer are.
        await _add(
            app,
            Schedule(
                name="old",
                cron="0 9 * * *",
                agent=agent,
                prompt="x",
                target={"platform": "webhook", "url": robot.feishu_url, "robot": "feishu"},
                user_id=users["ids"]["admin"],
            ),
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            [row] = (await client.get("/api/v1/scheduler/list", headers=users["admin"])).json()
            r = await client.post(f"/api/v1/scheduler/{row['id']}/run", headers=users["admin"])
        assert r.json()["status"] == "failed" and "private" in r.json()["error"]
        assert robot.received() == []

        allowed = create_app(make_settings(tmp_path / "b", scheduler={"allow_private_urls": True}))
        async with allowed.router.lifespan_context(allowed):
            transport = httpx.ASGITransport(app=allowed)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                headers = await register_and_login(client)
                await _add(allowed, Agent(name="reporter", prompt="Short reports."))
                target = {"platform": "webhook", "url": robot.feishu_url}
                r = await client.post(
                    "/api/v1/scheduler/create", json=_schedule(agent, target), headers=headers
                )
                assert r.status_code == 201, r.text
                r = await client.post(f"/api/v1/scheduler/{r.json()['id']}/run", headers=headers)
                assert r.json()["status"] == "done", r.text
        assert len(robot.received()) == 1


async def test_shared_voice_profiles_are_usable_but_not_changeable_by_normal_users(
    app: Any, client: httpx.AsyncClient, users: dict[str, Any]
) -> None:
    shared = VoiceProfile(user_id=None, name="house voice")
    await _add(app, shared)
    url = f"/api/v1/voice/profiles/{shared.id}"
    assert (await client.get(url, headers=users["alice"])).status_code == 200
    r = await client.put(url, json={"name": "mine now"}, headers=users["alice"])
    assert r.status_code == 403, r.text
    assert (await client.delete(url, headers=users["alice"])).status_code == 403
    r = await client.put(url, json={"name": "house voice 2"}, headers=users["admin"])
    assert r.status_code == 200 and r.json()["name"] == "house voice 2"


async def test_agent_tools_from_a_chat_cannot_pick_users_private_digital_humans(
    app: Any, users: dict[str, Any], handlers: None, tmp_path: Path
) -> None:
    from avatarbot.agents.profile import AgentProfile
    from avatarbot.agents.tools.builtin import ToolCallContext, builtin_tools
    from avatarbot.bot.types import Channel, IncomingMessage
    from avatarbot.errors import NotFound

    private = DigitalHuman(
        user_id=users["ids"]["alice"], name="alice face", image_path=str(tmp_path / "a.png")
    )
    await _add(app, private)
    agent = AgentProfile(id="a", name="assistant", prompt="", capabilities=["video"])

    def tools(message: IncomingMessage) -> dict[str, Any]:
        ctx = ToolCallContext(services=app.state.services, agent=agent, message=message)
        return {t.name: t.handler for t in builtin_tools(ctx)}

    chat = IncomingMessage(channel=Channel.FEISHU, chat_id="oc_1", user_id="ou_x", text="")
    listed = await tools(chat)["list_digital_humans"]()
    assert private.id not in {h["id"] for h in listed["digital_humans"]}
    for wanted in (private.id, "alice face"):
        with pytest.raises(NotFound):
            await tools(chat)["make_video"](text="hi", digital_human=wanted)
    # A web-console frame naming it is checked against the account behind it.
    web = IncomingMessage(
        channel=Channel.WEB,
        chat_id="console",
        user_id=str(users["ids"]["admin"]),
        text="",
        owner_id=users["ids"]["admin"],  # a superuser may
        raw={"digital_human_id": private.id},
    )
    assert (await tools(web)["make_video"](text="hi"))["task_id"]
    other = IncomingMessage(
        channel=Channel.WEB, chat_id="c", user_id="9", text="", owner_id=10**6, raw=web.raw
    )
    with pytest.raises(NotFound):
        await tools(other)["make_video"](text="hi")


async def test_a_photo_sent_in_a_chat_stays_that_chat_users_digital_human(
    app: Any, client: httpx.AsyncClient, users: dict[str, Any], handlers: None
) -> None:
    """`/avatar` with a photo makes the sender's own digital human: other chat users and other
    console accounts never see that face; the sender (in chat) and superusers do."""
    from avatarbot.agents.profile import AgentProfile
    from avatarbot.agents.tools.builtin import ToolCallContext, builtin_tools
    from avatarbot.bot.avatar_photo import make_avatar
    from avatarbot.bot.types import Channel, IncomingMessage
    from avatarbot.errors import NotFound

    services = app.state.services
    sender = IncomingMessage(
        channel=Channel.FEISHU, chat_id="oc_1", user_id="ou_sender", text="/avatar"
    )
    replies = await make_avatar(services, sender, PORTRAIT)
    assert "Done" in replies[0].text
    async with services.db.session() as session:
        made = (
            await session.scalars(select(DigitalHuman).where(DigitalHuman.chat_owner.is_not(None)))
        ).one()
    assert made.chat_owner == "feishu:ou_sender" and made.user_id is None

    listed = await client.get("/api/v1/digital-human/list", headers=users["alice"])
    assert made.id not in {h["id"] for h in listed.json()}
    assert (
        await client.get(f"/api/v1/digital-human/{made.id}", headers=users["alice"])
    ).status_code == 404
    listed = await client.get("/api/v1/digital-human/list", headers=users["admin"])
    assert made.id in {h["id"] for h in listed.json()}

    agent = AgentProfile(id="a", name="assistant", prompt="", capabilities=["video"])

    def tools(message: IncomingMessage) -> dict[str, Any]:
        ctx = ToolCallContext(services=services, agent=agent, message=message)
        return {t.name: t.handler for t in builtin_tools(ctx)}

    own = await tools(sender)["list_digital_humans"]()
    assert made.id in {h["id"] for h in own["digital_humans"]}
    stranger = IncomingMessage(channel=Channel.FEISHU, chat_id="oc_2", user_id="ou_other", text="")
    theirs = await tools(stranger)["list_digital_humans"]()
    assert made.id not in {h["id"] for h in theirs["digital_humans"]}
    with pytest.raises(NotFound):
        await tools(stranger)["make_video"](text="hi", digital_human=made.id)
    # The same user id on another platform is another person.
    wecom = IncomingMessage(channel=Channel.WECOM, chat_id="c", user_id="ou_sender", text="")
    assert made.id not in {
        h["id"] for h in (await tools(wecom)["list_digital_humans"]())["digital_humans"]
    }
