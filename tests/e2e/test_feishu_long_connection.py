"""Feishu long connection: the real lark-oapi ws client inside the running app, against a fake server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from avatarbot.app import create_app
from avatarbot.config import Settings
from tests.helpers.fake_feishu import FakeFeishu, message_event
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[FakeFeishu, RunningServer]]:
    fake = FakeFeishu().start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'avatarbot.db'}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        feishu={
            "app_id": fake.app_id,
            "app_secret": fake.app_secret,
            "base_url": fake.base_url,
            "mode": "long_connection",
        },
    )
    server = start_uvicorn(create_app(settings))
    try:
        yield fake, server
    finally:
        server.stop()
        fake.stop()


def _health(server: RunningServer) -> dict:
    return httpx.get(f"{server.base_url}/health", timeout=5).json()["components"]["channels"][
        "feishu"
    ]


def test_events_arrive_over_the_socket_and_it_reconnects(
    running: tuple[FakeFeishu, RunningServer],
) -> None:
    fake, server = running
    wait_until(lambda: fake.ws_connected, timeout=30)
    wait_until(lambda: _health(server)["long_connection"]["state"] == "connected", timeout=10)
    assert _health(server)["status"] == "ok"

    fake.ws_push_event(message_event(event_id="ws-ev-1", chat_id="oc_ws", text="/help", token=""))
    reply = wait_until(
        lambda: [m for m in fake.sent("text") if m["receive_id"] == "oc_ws"], timeout=20
    )
    assert "/video" in reply[0]["content"]["text"]
    wait_until(lambda: fake.ws_acks)
    assert fake.ws_acks[0]["code"] == 200

    fake.ws_drop()  # the server goes away; the SDK (or our watchdog) must reconnect
    wait_until(lambda: fake.ws_connections >= 2 and fake.ws_connected, timeout=30)
    fake.ws_push_event(message_event(event_id="ws-ev-2", chat_id="oc_ws", text="/status", token=""))
    wait_until(
        lambda: any("Agent:" in m["content"].get("text", "") for m in fake.sent("text")),
        timeout=20,
    )
    # The same event delivered twice over the socket is still answered once.
    fake.ws_push_event(message_event(event_id="ws-ev-2", chat_id="oc_ws", text="/status", token=""))
    bot = server.server.config.app.state.services.bot  # type: ignore[attr-defined]
    wait_until(lambda: bot.duplicates >= 1, timeout=10)
    assert sum("Agent:" in m["content"].get("text", "") for m in fake.sent("text")) == 1


def test_card_button_over_the_socket_is_acked_with_a_toast(
    running: tuple[FakeFeishu, RunningServer],
) -> None:
    import base64
    import json

    fake, _server = running
    wait_until(lambda: fake.ws_connected, timeout=30)
    fake.ws_push_event(
        {
            "schema": "2.0",
            "header": {"event_id": "ws-card-1", "event_type": "card.action.trigger", "token": ""},
            "event": {
                "operator": {"open_id": "ou_clicker"},
                "action": {
                    "value": {"action": "another_take", "ref": "gone:video"},
                    "tag": "button",
                },
                "context": {"open_message_id": "om_card", "open_chat_id": "oc_ws_card"},
            },
        }
    )
    ack = wait_until(lambda: [a for a in fake.ws_acks if a.get("data")], timeout=10)[0]
    assert ack["code"] == 200
    answer = json.loads(base64.b64decode(ack["data"]))
    assert answer["toast"] == {"type": "success", "content": "Making another take…"}
    # The click reached the bot as structured input: the video it names is unknown.
    reply = wait_until(
        lambda: [m for m in fake.sent("text") if m["receive_id"] == "oc_ws_card"], timeout=20
    )
    assert "no longer available" in reply[0]["content"]["text"]
