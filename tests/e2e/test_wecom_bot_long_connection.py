"""WeCom AI bot over a real long connection: the app under uvicorn, a stand-in WeCom WS server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.app import create_app
from avatarbot.config import Settings
from tests.helpers.chat_media import install_video_handler, probe
from tests.helpers.fake_wecom_bot import BOT_ID, SECRET, FakeWecomBot
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

USER = "lisi"


@dataclass
class Env:
    fake: FakeWecomBot
    server: RunningServer
    db_path: Path

    @property
    def channel(self) -> Any:
        return self.server.server.config.app.state.services.channels["wecom_bot"]  # type: ignore[attr-defined]

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.server.base_url}/health", timeout=5)
        return response.json()["components"]["channels"]["wecom_bot"]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()

    def finished_bubble(self, req_id: str, timeout: float = 30) -> Any:
        bubbles = wait_until(
            lambda: [b for b in self.fake.bubbles_for(req_id) if b.finished], timeout=timeout
        )
        return bubbles[0]


def _settings(tmp_path: Path, fake: FakeWecomBot, **bot: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'avatarbot.db'}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        wecom_bot={
            "bot_id": BOT_ID,
            "secret": SECRET,
            "ws_url": fake.url,
            "ping_interval_s": 0.2,
            "backoff_max_s": 0.2,
            "lease_ttl_s": 3,
            **bot,
        },
    )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    install_video_handler()
    fake = FakeWecomBot().start()
    server = start_uvicorn(create_app(_settings(tmp_path, fake)))
    try:
        wait_until(lambda: fake.connected, timeout=20)
        yield Env(fake, server, tmp_path / "avatarbot.db")
    finally:
        server.stop()
        fake.stop()


def test_text_question_streams_a_reply_that_finishes(env: Env) -> None:
    health = wait_until(lambda: env.health()["status"] == "ok" and env.health())
    link = health["long_connection"]
    assert link["state"] == "connected" and "connected_since" in link

    req_id = env.fake.user_says(USER, "hello, who are you?")
    bubble = env.finished_bubble(req_id)
    assert bubble.content.strip() and bubble.frames >= 1
    assert env.fake.errors == []  # no 6000 (two frames in flight), no 846605
    assert len(env.fake.bubbles_for(req_id)) == 1
    assert env.query("SELECT status FROM processed_events") == [("done",)]
    assert env.health()["long_connection"]["last_frame_age_s"] < 30


def test_video_survives_a_link_killed_mid_stream(env: Env, tmp_path: Path) -> None:
    def first_frame(frame: dict[str, Any]) -> bool:  # the bubble is open, the video not made
        stream = (frame.get("body") or {}).get("stream") or {}
        return frame.get("cmd") == "aibot_respond_msg" and stream.get("finish") is False

    env.fake.kill_when = first_frame
    req_id = env.fake.user_says(USER, "/video 你好")
    videos = wait_until(lambda: env.fake.sent("video"), timeout=180)
    assert env.fake.subscribes >= 2  # it reconnected and subscribed again
    bubble = env.finished_bubble(req_id)
    assert "Done" in bubble.content
    media = env.fake.media[videos[0]["body"]["video"]["media_id"]]
    assert media["type"] == "video" and len(media["data"]) <= 10 * 1024 * 1024
    received = tmp_path / "received.mp4"
    received.write_bytes(media["data"])
    assert probe(received).video_codec == "h264"
    assert videos[0]["req_id"] == req_id  # a reply to the message, not a push
    wait_until(lambda: env.health()["long_connection"]["restarts"] >= 1)
    assert len(env.fake.sent("video")) == 1


def test_dead_link_is_detected_by_pings_and_replaced(env: Env) -> None:
    env.fake.answer_pings = False
    wait_until(lambda: env.fake.connections >= 2, timeout=20)  # 2 pings missed -> reconnect
    env.fake.answer_pings = True
    wait_until(lambda: env.health()["status"] == "ok", timeout=20)
    req_id = env.fake.user_says(USER, "/help")
    assert "/video" in env.finished_bubble(req_id).content


def test_events_welcome_card_feedback_and_replaced(env: Env) -> None:
    env.fake.event(USER, "enter_chat")
    welcome = wait_until(lambda: env.fake.welcomes, timeout=5)
    assert welcome[0]["text"]["content"].startswith("Hello")

    env.fake.user_says(USER, "/help")  # the user wrote first: pushes to them are allowed
    env.fake.event(
        USER,
        "template_card_event",
        template_card_event={
            "card_type": "button_interaction",
            "event_key": "another_take",
            "task_id": "t1",
        },
    )
    pushed = wait_until(lambda: [m for m in env.fake.messages if m["push"]], timeout=20)
    assert pushed[0]["chat"] == USER and pushed[0]["body"]["msgtype"] == "markdown"

    env.fake.event(
        USER, "feedback_event", feedback_event={"id": "fb1", "type": 2, "content": "more"}
    )
    rows = wait_until(lambda: env.query("SELECT feedback_id, rating, content FROM chat_feedback"))
    assert rows == [("fb1", 2, "more")]

    env.fake.send_raw("{not json")  # bad frames are logged, the link stays
    odd = env.fake.user_says(USER, "", msgtype="location", location={"latitude": 1})
    assert "text" in env.finished_bubble(odd).content  # a clear reply, no crash
    env.fake.send_raw(
        '{"cmd": "aibot_event_callback", "headers": {"req_id": "x"}, '
        '"body": {"msgtype": "event", "event": {"eventtype": "disconnected_event"}}}'
    )
    wait_until(lambda: env.health()["long_connection"]["state"] == "replaced", timeout=10)
    connections = env.fake.connections
    with pytest.raises(AssertionError):  # no reconnect storm after being replaced
        wait_until(lambda: env.fake.connections > connections, timeout=1.0)


def test_scheduled_report_needs_a_user_who_wrote_first(env: Env) -> None:
    base = env.server.base_url
    credentials = {"email": "admin@example.com", "password": "correct horse battery"}
    assert (
        httpx.post(f"{base}/api/v1/auth/register", json=credentials, timeout=10).status_code == 201
    )
    login = httpx.post(
        f"{base}/api/v1/auth/login",
        data={"username": credentials["email"], "password": credentials["password"]},
        timeout=10,
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    body = {
        "name": "morning",
        "cron": "0 9 * * *",
        "agent": "assistant",
        "prompt": "Say good morning.",
        "output": "markdown",
        "target": {"platform": "wecom_bot", "chat_id": "zhaoliu"},
    }
    created = httpx.post(f"{base}/api/v1/scheduler/create", json=body, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]

    run = httpx.post(f"{base}/api/v1/scheduler/{sid}/run", headers=headers, timeout=60).json()
    assert run["status"] == "failed" and "written to the bot first" in run["error"]
    history = httpx.get(f"{base}/api/v1/scheduler/{sid}/runs", headers=headers, timeout=10).json()
    assert "written to the bot first" in history[0]["error"]

    req_id = env.fake.user_says("zhaoliu", "/help")
    env.finished_bubble(req_id)
    run = httpx.post(f"{base}/api/v1/scheduler/{sid}/run", headers=headers, timeout=60).json()
    assert run["status"] == "done", run
    pushed = [m for m in env.fake.messages if m["push"] and m["chat"] == "zhaoliu"]
    assert len(pushed) == 1 and pushed[0]["body"]["chat_type"] == 1


def test_after_the_reply_window_closes_replies_are_pushed(env: Env) -> None:
    def first_frame(frame: dict[str, Any]) -> bool:
        return ((frame.get("body") or {}).get("stream") or {}).get("finish") is False

    env.fake.expire_when = first_frame  # the req_id stops working mid-stream (846605)
    env.fake.user_says(USER, "/video 晚安")
    videos = wait_until(lambda: env.fake.sent("video"), timeout=180)
    assert videos[0]["push"] is True and videos[0]["body"]["chat_type"] == 1
    pushed_text = [m for m in env.fake.messages if m["push"] and m["body"]["msgtype"] == "markdown"]
    assert pushed_text and "Got it" in pushed_text[0]["body"]["markdown"]["content"]
    assert env.fake.messages.index(pushed_text[0]) < env.fake.messages.index(videos[0])
    assert len(env.fake.sent("video")) == 1


def test_a_long_video_finishes_the_bubble_inside_its_window(tmp_path: Path) -> None:
    install_video_handler()
    fake = FakeWecomBot(stream_window_s=1.5).start()  # WeCom's 6 minutes, shrunk
    server = start_uvicorn(create_app(_settings(tmp_path, fake, stream_max_s=1.0)))
    try:
        wait_until(lambda: fake.connected, timeout=20)
        req_id = fake.user_says(USER, "/video 慢慢来")
        bubble = wait_until(
            lambda: [b for b in fake.bubbles_for(req_id) if b.finished], timeout=30
        )[0]
        assert bubble.history[-1][0] - bubble.first_at < 1.5  # finished inside the window
        videos = wait_until(lambda: fake.sent("video"), timeout=180)
        assert len(videos) == 1 and videos[0]["req_id"] == req_id
        assert [code for _, code in fake.errors if code == 846608] == []
    finally:
        server.stop()
        fake.stop()


def test_media_is_downloaded_and_bad_media_gets_a_clear_reply(env: Env) -> None:
    import base64
    import os

    from avatarbot.integrations.wecom_bot.crypto import aes_encrypt
    from tests.helpers.http_server import serve_files

    key_b64 = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    photo = os.urandom(3000)
    encrypted = aes_encrypt(base64.b64decode(key_b64 + "="), photo)
    with serve_files({"/img": encrypted, "/bad": b"y" * 64}) as (base, _):
        ok = env.fake.user_says(
            USER, "", msgtype="image", image={"url": f"{base}/img", "aeskey": key_b64}
        )
        env.finished_bubble(ok)
        saved = list((env.db_path.parent / "data" / "media" / "inbox" / "wecom_bot").rglob("*.bin"))
        assert [p.read_bytes() for p in saved] == [photo]

        bad = env.fake.user_says(
            USER, "", msgtype="file", file={"url": f"{base}/bad", "aeskey": key_b64}
        )
        assert "could not be decrypted" in env.finished_bubble(bad).content
        keyless = env.fake.user_says(USER, "", msgtype="video", video={"url": f"{base}/img"})
        assert "without a usable key" in env.finished_bubble(keyless).content
