"""Photos and voice from WeCom app users, end to end: encrypted callbacks in, media/get out."""

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
from avatarbot.integrations.http import RetryPolicy
from tests.helpers.fake_wecom import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    FakeWecom,
    callback_request,
    media_message,
    text_message,
)
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

USER = "lisi"
PORTRAIT = Path(__file__).resolve().parents[2] / "avatarbot/pipeline/assets/default_portrait.jpg"


@dataclass
class Env:
    fake: FakeWecom
    server: RunningServer
    db_path: Path

    def post(self, xml: str) -> None:
        params, body = callback_request(xml)
        url = f"{self.server.base_url}/webhooks/wecom"
        assert httpx.post(url, params=params, content=body, timeout=10).status_code == 200

    def wait_text(self, count: int) -> str:
        wait_until(lambda: len(self.fake.sent("text")) >= count, timeout=60)
        return str(self.fake.sent("text")[count - 1]["text"]["content"])

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.05 * attempt)
    fake = FakeWecom().start()
    db_path = tmp_path / "avatarbot.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{db_path}",
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


def test_photo_then_avatar_text_binds_the_chat(env: Env) -> None:
    env.fake.user_media["pic-1"] = PORTRAIT.read_bytes()
    env.post(
        media_message(
            msg_id="8000000000000000001",
            user=USER,
            msg_type="image",
            fields={"PicUrl": "http://p/1.jpg", "MediaId": "pic-1"},
        )
    )
    assert "/avatar" in env.wait_text(1)
    gets = env.fake.calls("/cgi-bin/media/get")
    assert gets and gets[0].query["media_id"] == "pic-1"
    env.post(text_message(msg_id="8000000000000000002", user=USER, content="/avatar"))
    assert env.wait_text(2).startswith("Done: your photo")
    rows = env.query(
        "SELECT h.image_path FROM chat_bindings b JOIN digital_humans h "
        f"ON h.id = b.digital_human_id WHERE b.platform = 'wecom' AND b.chat_id = '{USER}'"
    )
    assert len(rows) == 1 and Path(rows[0][0]).read_bytes() == PORTRAIT.read_bytes()


def test_voice_unknown_types_and_refused_media(env: Env) -> None:
    # The platform's recognised text is used as the message.
    env.post(
        media_message(
            msg_id="8000000000000000011",
            user=USER,
            msg_type="voice",
            fields={"MediaId": "v-1", "Format": "amr", "Recognition": "/help"},
        )
    )
    assert "/video" in env.wait_text(1)
    # No recognition and no ASR service: a clear answer, no download attempted.
    env.post(
        media_message(
            msg_id="8000000000000000012",
            user=USER,
            msg_type="voice",
            fields={"MediaId": "v-2", "Format": "amr"},
        )
    )
    assert "AVATARBOT_ASR__BASE_URL" in env.wait_text(2)
    assert env.fake.calls("/cgi-bin/media/get") == []
    env.post(
        media_message(
            msg_id="8000000000000000013",
            user=USER,
            msg_type="location",
            fields={"Location_X": "23.1", "Location_Y": "113.3", "Label": "somewhere"},
        )
    )
    assert "cannot read location messages" in env.wait_text(3)
    env.post(
        media_message(
            msg_id="8000000000000000014",
            user=USER,
            msg_type="image",
            fields={"PicUrl": "http://p/2.jpg", "MediaId": "expired-media"},
        )
    )
    assert "could not download" in env.wait_text(4)
    assert env.query("SELECT status, count(*) FROM processed_events GROUP BY status") == [
        ("done", 4)
    ]
