"""Feishu end to end: the real avatarbot under uvicorn, a fake Feishu platform, real HTTP both ways."""

from __future__ import annotations

import json
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
from avatarbot.integrations.feishu.crypto import encrypt
from avatarbot.integrations.http import RetryPolicy
from tests.helpers.chat_media import install_video_handler, probe
from tests.helpers.fake_feishu import FakeFeishu, message_event, signed_body
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

# One client for the timed posts: the 1 s budget is the server's, not a new client's start-up
# (building an httpx client, its SSL context included, can take most of a second on a busy box).
CLIENT = httpx.Client()

TOKEN = "verify-token-123"
ENCRYPT_KEY = "encrypt-key-456"
CHAT = "oc_p2p_chat_1"
GROUP = "oc_group_chat_1"


@dataclass
class Env:
    fake: FakeFeishu
    settings: Settings
    server: RunningServer
    db_path: Path

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/webhooks/feishu"

    @property
    def bot(self) -> Any:
        return self.server.server.config.app.state.services.bot  # type: ignore[attr-defined]

    def post(
        self, payload: dict[str, Any], *, key: str = ENCRYPT_KEY
    ) -> tuple[httpx.Response, float]:
        raw, headers = signed_body(payload, key)
        started = time.perf_counter()
        response = CLIENT.post(self.url, content=raw, headers=headers, timeout=10)
        return response, time.perf_counter() - started

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql, args).fetchall()


def _start_app(settings: Settings) -> RunningServer:
    return start_uvicorn(create_app(settings))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    install_video_handler()
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.05 * attempt)
    fake = FakeFeishu().start()
    db_path = tmp_path / "avatarbot.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{db_path}",
        # The outbox retries a failed delivery once more, soon, then gives up.
        bot={"delivery_max_attempts": 2, "delivery_backoff_s": 0.2},
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        feishu={
            "app_id": fake.app_id,
            "app_secret": fake.app_secret,
            "verification_token": TOKEN,
            "encrypt_key": ENCRYPT_KEY,
            "base_url": fake.base_url,
        },
    )
    server = _start_app(settings)
    environment = Env(fake, settings, server, db_path)
    try:
        yield environment
    finally:
        environment.server.stop()
        fake.stop()


def test_url_verification_plain_and_encrypted(env: Env) -> None:
    challenge = {"challenge": "abc-123", "token": TOKEN, "type": "url_verification"}
    plain = httpx.post(env.url, json=challenge, timeout=5)
    assert plain.status_code == 200 and plain.json() == {"challenge": "abc-123"}
    body = {"encrypt": encrypt(ENCRYPT_KEY, json.dumps(challenge))}
    started = time.perf_counter()
    encrypted = httpx.post(env.url, json=body, timeout=5)
    assert time.perf_counter() - started < 3.0  # Feishu gives up on an answer after 3 s
    assert encrypted.status_code == 200 and encrypted.json() == {"challenge": "abc-123"}
    wrong = httpx.post(env.url, json={**challenge, "token": "nope"}, timeout=5)
    assert wrong.status_code == 403


def test_video_command_end_to_end_and_duplicates(env: Env, tmp_path: Path) -> None:
    event = message_event(event_id="ev-video-1", chat_id=CHAT, text="/video 你好", token=TOKEN)
    response, elapsed = env.post(event)
    assert response.status_code == 200
    assert elapsed < 3.0, f"webhook took {elapsed:.2f}s"  # Feishu's deadline; speed: bench webhook
    racing, _ = env.post(event)  # a platform retry while the first is still being handled
    assert racing.status_code == 200

    media = wait_until(lambda: env.fake.sent("media"), timeout=180)
    assert len(media) == 1
    assert media[0]["receive_id"] == CHAT and media[0]["receive_id_type"] == "chat_id"
    texts = [m for m in env.fake.sent("text") if m["receive_id"] == CHAT]
    assert texts, "no text acknowledgement"
    assert env.fake.messages.index(texts[0]) < env.fake.messages.index(media[0])
    assert texts[0]["uuid"], "sends carry an idempotency uuid"

    upload = env.fake.uploads[media[0]["content"]["file_key"]]
    assert upload["form"]["file_type"] == "mp4"
    video_file = tmp_path / "received.mp4"
    video_file.write_bytes(upload["data"])
    info = probe(video_file)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert abs(int(upload["form"]["duration"]) - info.duration * 1000) <= 100
    cover = env.fake.uploads[media[0]["content"]["image_key"]]
    assert cover["data"][:2] == b"\xff\xd8"  # a JPEG frame

    cards = env.fake.sent("interactive")
    assert cards and cards[0]["content"]["config"]["update_multi"] is True
    wait_until(lambda: any(p["message_id"] == cards[0]["message_id"] for p in env.fake.patches))

    # The platform retries the same event: still exactly one video.
    for _ in range(3):
        again, elapsed = env.post(event)
        assert again.status_code == 200 and elapsed < 3.0
    # The 3 retries of a finished event are duplicates. The racing copy above may instead have
    # been stored as unfinished before the first was claimed; the claim then lets one run.
    wait_until(lambda: env.bot.duplicates >= 3)
    assert len(env.fake.sent("media")) == 1
    assert env.query("SELECT count(*) FROM tasks WHERE task_type='video_generation'") == [(1,)]

    # ... even after a restart (the inbox is in the database, not in memory).
    env.server.stop()
    env.server = _start_app(env.settings)
    again, _ = env.post(event)
    assert again.status_code == 200
    wait_until(lambda: env.bot.duplicates >= 1)
    assert len(env.fake.sent("media")) == 1
    assert env.query("SELECT count(*) FROM tasks") == [(1,)]


def test_bad_signature_and_bad_token_are_rejected(env: Env) -> None:
    event = message_event(event_id="ev-bad-1", chat_id=CHAT, text="/help", token=TOKEN)
    raw, headers = signed_body(event, ENCRYPT_KEY)
    headers["X-Lark-Signature"] = "0" * 64
    assert httpx.post(env.url, content=raw, headers=headers, timeout=5).status_code == 401
    del headers["X-Lark-Signature"]
    assert httpx.post(env.url, content=raw, headers=headers, timeout=5).status_code == 401
    bad_token = message_event(event_id="ev-bad-2", chat_id=CHAT, text="/help", token="wrong")
    response, _ = env.post(bad_token)
    assert response.status_code == 403
    garbage = httpx.post(env.url, content=b"{not json", timeout=5)
    assert garbage.status_code == 400
    undecryptable = httpx.post(env.url, json={"encrypt": "AAAA"}, timeout=5)
    assert undecryptable.status_code == 400
    assert env.query("SELECT count(*) FROM processed_events") == [(0,)]
    assert env.bot.handled == 0 and env.fake.messages == []


def test_group_chat_needs_a_mention(env: Env) -> None:
    quiet = message_event(
        event_id="ev-g-1", chat_id=GROUP, text="/help", token=TOKEN, chat_type="group"
    )
    assert env.post(quiet)[0].status_code == 200
    wait_until(
        lambda: (
            env.query("SELECT status FROM processed_events WHERE event_id='ev-g-1'")
            == [("ignored",)]
        )
    )
    assert env.fake.messages == []

    loud = message_event(
        event_id="ev-g-2",
        chat_id=GROUP,
        text="/help",
        token=TOKEN,
        chat_type="group",
        mention_bot=True,
    )
    assert env.post(loud)[0].status_code == 200
    answer = wait_until(lambda: [m for m in env.fake.sent("text") if m["receive_id"] == GROUP])
    assert "/video" in answer[0]["content"]["text"]


def test_platform_errors_are_retried_then_task_failed(env: Env) -> None:
    env.fake.failures.add("/open-apis/im/v1/files", times=1000, status=503)
    event = message_event(event_id="ev-down-1", chat_id=CHAT, text="/video 出错了", token=TOKEN)
    response, elapsed = env.post(event)
    assert response.status_code == 200 and elapsed < 3.0
    rows = wait_until(
        lambda: env.query("SELECT status, error_message FROM tasks WHERE status='failed'"),
        timeout=180,
    )
    assert "delivery to feishu failed" in rows[0][1]
    # The client's retries, once per outbox attempt.
    assert len(env.fake.calls("/open-apis/im/v1/files")) == 2 * RetryPolicy().attempts
    assert env.fake.sent("media") == []
    sorry = wait_until(
        lambda: [m for m in env.fake.sent("text") if "could not send" in m["content"]["text"]]
    )
    assert sorry[0]["receive_id"] == CHAT
    # The webhook keeps answering normally while the platform is down.
    ok = message_event(event_id="ev-down-2", chat_id=CHAT, text="/help", token=TOKEN)
    assert env.post(ok)[0].status_code == 200


def test_voice_command_sends_an_opus_audio_message(env: Env, tmp_path: Path) -> None:
    event = message_event(
        event_id="ev-voice-1", chat_id=CHAT, text="/voice hello world", token=TOKEN
    )
    assert env.post(event)[0].status_code == 200
    audio = wait_until(lambda: env.fake.sent("audio"), timeout=120)
    assert audio[0]["receive_id"] == CHAT
    upload = env.fake.uploads[audio[0]["content"]["file_key"]]
    assert upload["form"]["file_type"] == "opus"
    received = tmp_path / "voice.opus"
    received.write_bytes(upload["data"])
    info = probe(received)
    assert info.audio_codec == "opus" and info.duration > 0.3
    assert abs(int(upload["form"]["duration"]) - info.duration * 1000) <= 100
