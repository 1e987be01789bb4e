"""WeCom end to end: the real avatarbot under uvicorn, a fake WeCom API, real encrypted callbacks."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.app import create_app
from avatarbot.config import Settings
from avatarbot.integrations.http import RetryPolicy
from tests.helpers.chat_media import install_video_handler, probe
from tests.helpers.fake_wecom import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    FakeWecom,
    callback_request,
    text_message,
)
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

# One client for the timed posts: the 1 s budget is the server's, not a new client's start-up
# (building an httpx client, its SSL context included, can take most of a second on a busy box).
CLIENT = httpx.Client()

USER = "zhangsan"
TEN_MB = 10 * 1024 * 1024


@dataclass
class Env:
    fake: FakeWecom
    server: RunningServer
    db_path: Path

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/webhooks/wecom"

    @property
    def bot(self) -> Any:
        return self.server.server.config.app.state.services.bot  # type: ignore[attr-defined]

    def post_text(
        self, msg_id: str, content: str, user: str = USER
    ) -> tuple[httpx.Response, float]:
        params, body = callback_request(text_message(msg_id=msg_id, user=user, content=content))
        started = time.perf_counter()
        response = CLIENT.post(self.url, params=params, content=body, timeout=10)
        return response, time.perf_counter() - started

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    install_video_handler()
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.05 * attempt)
    fake = FakeWecom().start()
    db_path = tmp_path / "avatarbot.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{db_path}",
        # The outbox retries a failed delivery once more, soon, then gives up.
        bot={"delivery_max_attempts": 2, "delivery_backoff_s": 0.2},
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        wecom={
            "corp_id": CORP_ID,
            "agent_id": "1000002",
            "secret": fake.secret,
            "token": TOKEN,
            "encoding_aes_key": AES_KEY,
            "base_url": fake.base_url,
        },
    )
    server = start_uvicorn(create_app(settings))
    try:
        yield Env(fake, server, db_path)
    finally:
        server.stop()
        fake.stop()


def test_echo_verification_with_the_protocol_vector(env: Env) -> None:
    params = {
        "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
        "timestamp": "1411443780",
        "nonce": "437374425",
        "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
    }
    ok = httpx.get(env.url, params=params, timeout=5)
    assert ok.status_code == 200 and ok.text == "5927782489442352469"
    bad = httpx.get(env.url, params={**params, "msg_signature": "0" * 40}, timeout=5)
    assert bad.status_code == 403


def test_encrypted_text_gets_a_video_once(env: Env, tmp_path: Path) -> None:
    response, elapsed = env.post_text("7000000000000000001", "/video 你好")
    assert response.status_code == 200 and elapsed < 3.0

    videos = wait_until(lambda: env.fake.sent("video"), timeout=180)
    assert len(videos) == 1
    video = videos[0]
    assert (
        video["api"] == "message/send" and video["touser"] == USER and video["agentid"] == 1000002
    )
    media = env.fake.media[video["video"]["media_id"]]
    assert media["type"] == "video" and len(media["data"]) <= TEN_MB
    received = tmp_path / "received.mp4"
    received.write_bytes(media["data"])
    info = probe(received)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac") and info.duration > 0.5
    texts = env.fake.sent("text")
    assert texts and env.fake.messages.index(texts[0]) < env.fake.messages.index(video)
    params = env.query("SELECT params FROM tasks")[0][0]
    assert f'"max_bytes": {TEN_MB}' in params  # the pipeline was asked for a WeCom-sized file

    for _ in range(2):  # WeCom retries the same MsgId
        again, elapsed = env.post_text("7000000000000000001", "/video 你好")
        assert again.status_code == 200 and elapsed < 3.0
    wait_until(lambda: env.bot.duplicates >= 2)
    assert len(env.fake.sent("video")) == 1
    assert env.query("SELECT count(*) FROM tasks") == [(1,)]


def test_expired_token_is_refetched(env: Env) -> None:
    env.post_text("7000000000000000010", "/help")
    wait_until(lambda: env.fake.sent("text"))
    env.fake.expire_tokens()
    env.post_text("7000000000000000011", "/status")
    answers = wait_until(lambda: len(env.fake.sent("text")) >= 2 and env.fake.sent("text"))
    assert "Agent:" in answers[1]["text"]["content"]  # /status answered after the refetch
    assert len(env.fake.calls("/cgi-bin/gettoken")) == 2


def test_bad_callbacks_are_rejected_without_5xx(env: Env) -> None:
    params, body = callback_request(text_message(msg_id="1", user=USER, content="/help"))
    forged = httpx.post(
        env.url, params={**params, "msg_signature": "f" * 40}, content=body, timeout=5
    )
    assert forged.status_code == 403
    junk = httpx.post(env.url, params=params, content=b"<xml><Encrypt>!!</Encrypt>", timeout=5)
    assert junk.status_code in (400, 403)
    empty = httpx.post(env.url, content=b"", timeout=5)
    assert empty.status_code in (400, 403)
    assert env.query("SELECT count(*) FROM processed_events") == [(0,)]


def test_upload_failures_are_retried_then_task_failed(env: Env) -> None:
    env.fake.failures.add("/cgi-bin/media/upload", times=1000, status=502)
    response, _ = env.post_text("7000000000000000020", "/video 失败")
    assert response.status_code == 200
    rows = wait_until(
        lambda: env.query("SELECT error_message FROM tasks WHERE status='failed'"), timeout=180
    )
    assert "delivery to wecom failed" in rows[0][0]
    # The client's retries, once per outbox attempt.
    assert len(env.fake.calls("/cgi-bin/media/upload")) == 2 * RetryPolicy().attempts
    assert env.fake.sent("video") == []


def test_voice_command_sends_amr(env: Env, tmp_path: Path) -> None:
    assert env.post_text("7000000000000000030", "/voice 你好")[0].status_code == 200
    voice = wait_until(lambda: env.fake.sent("voice"), timeout=120)
    media = env.fake.media[voice[0]["voice"]["media_id"]]
    assert (
        media["type"] == "voice"
        and media["name"].endswith(".amr")
        and len(media["data"]) <= 2 * 1024 * 1024
    )
    received = tmp_path / "voice.amr"
    received.write_bytes(media["data"])
    assert probe(received).audio_codec == "amr_nb"
