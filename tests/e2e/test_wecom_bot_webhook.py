"""WeCom AI bot in webhook mode: URL verification, encrypted JSON, stream-refresh polls."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from avatarbot.app import create_app
from avatarbot.config import Settings
from tests.helpers.chat_media import install_video_handler, probe
from tests.helpers.servers import RunningServer, start_uvicorn
from tests.helpers.wecom_bot_poller import AES_KEY, TOKEN, WebhookPoller

pytestmark = pytest.mark.slow


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[WebhookPoller, RunningServer, Path]]:
    install_video_handler()
    db_path = tmp_path / "avatarbot.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{db_path}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        public_base_url="https://bot.example.com",
        wecom_bot={"mode": "webhook", "token": TOKEN, "encoding_aes_key": AES_KEY},
    )
    server = start_uvicorn(create_app(settings))
    try:
        yield WebhookPoller(f"{server.base_url}/webhooks/wecom-bot"), server, db_path
    finally:
        server.stop()


def test_url_verification(running: tuple[WebhookPoller, RunningServer, Path]) -> None:
    poller, _, _ = running
    ok = poller.verify("echo-1796283432")
    assert ok.status_code == 200 and ok.text == "echo-1796283432"
    assert poller.verify("echo", forge=True).status_code == 403


def test_message_streams_through_refresh_polls_once(
    running: tuple[WebhookPoller, RunningServer, Path],
) -> None:
    poller, _, db_path = running
    first = poller.message("wangwu", "/help", msgid="dup-1")
    assert first is not None and first["msgtype"] == "stream"
    assert first["stream"]["finish"] is False
    stream_id = first["stream"]["id"]
    again = poller.message("wangwu", "/help", msgid="dup-1")  # WeCom redelivers the msgid
    assert again is not None and again["stream"]["id"] == stream_id
    snapshots = poller.poll(stream_id)
    assert "/video" in snapshots[-1]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM processed_events").fetchone() == (1,)
    unknown = poller.post({"msgid": "p", "msgtype": "stream", "stream": {"id": "nope"}})
    assert unknown == {"msgtype": "stream", "stream": {"id": "nope", "finish": True, "content": ""}}


def test_video_is_a_signed_link(
    running: tuple[WebhookPoller, RunningServer, Path], tmp_path: Path
) -> None:
    poller, server, _ = running
    answer = poller.message("wangwu", "/video 你好")
    assert answer is not None
    final = poller.poll(answer["stream"]["id"], timeout=180)[-1]
    assert "https://bot.example.com/media/signed/" in final
    link = final.split("](", 1)[1].split(")", 1)[0]
    parts = urlsplit(link)
    video = httpx.get(f"{server.base_url}{parts.path}?{parts.query}", timeout=10)
    assert video.status_code == 200
    received = tmp_path / "v.mp4"
    received.write_bytes(video.content)
    assert probe(received).video_codec == "h264"
    forged = httpx.get(f"{server.base_url}{parts.path}?{parts.query[:-4]}0000", timeout=10)
    assert forged.status_code == 403


def test_bad_input_is_4xx_and_clear(running: tuple[WebhookPoller, RunningServer, Path]) -> None:
    poller, _, _ = running
    assert poller.post_raw("!!not-base64!!").status_code == 400
    assert poller.post_raw(poller.encrypt("{}"), forge=True).status_code == 403
    assert poller.post_raw(poller.encrypt("not json")).status_code == 400
    other_key = WebhookPoller(poller.url, aes_key="a" * 43)
    assert poller.post_raw(other_key.encrypt('{"msgid": "x"}')).status_code == 400
    welcome = poller.post(
        {
            "msgid": "e1",
            "msgtype": "event",
            "from": {"userid": "u"},
            "event": {"eventtype": "enter_chat"},
        }
    )
    assert welcome is not None and welcome["msgtype"] == "text"
    odd = poller.message("u2", "", msgtype="location")
    assert odd is not None
    assert "text" in poller.poll(odd["stream"]["id"])[-1]  # a clear reply to an unknown type


def test_card_button_reaches_the_agent_and_answers_on_response_url(
    running: tuple[WebhookPoller, RunningServer, Path],
) -> None:
    from tests.helpers.fake_robot import FakeRobotServer
    from tests.helpers.servers import wait_until

    poller, _, _ = running
    with FakeRobotServer() as receiver:
        url = f"{receiver.base_url}/cgi-bin/response?code=1"
        answer = poller.post(
            {
                "msgid": "card-1",
                "msgtype": "event",
                "from": {"userid": "u3"},
                "response_url": url,
                "event": {
                    "eventtype": "template_card_event",
                    "template_card_event": {"event_key": "another_take", "task_id": "t9"},
                },
            }
        )
        assert answer is None  # an empty 200 at once; the agent answers later
        posted = wait_until(receiver.received, timeout=30)
        assert len(posted) == 1 and posted[0]["body"]["msgtype"] == "markdown"
        assert posted[0]["body"]["markdown"]["content"]

        # A click on our video buttons: the passive answer updates the card at once.
        started = time.perf_counter()
        answer = poller.post(
            {
                "msgid": "card-2",
                "msgtype": "event",
                "from": {"userid": "u3"},
                "response_url": f"{receiver.base_url}/cgi-bin/response?code=2",
                "event": {
                    "eventtype": "template_card_event",
                    "template_card_event": {
                        "card_type": "button_interaction",
                        "event_key": "audio_only:gone0000:video",
                        "task_id": "avb-gone0000-video",
                    },
                },
            }
        )
        assert time.perf_counter() - started < 3.0
        assert answer is not None and answer["response_type"] == "update_template_card"
        card = answer["template_card"]
        assert card["task_id"] == "avb-gone0000-video" and answer["userids"] == ["u3"]
        assert card["main_title"]["desc"] == "Sending just the audio…"
        posted = wait_until(lambda: receiver.received()[1:], timeout=30)
        assert "no longer available" in posted[0]["body"]["markdown"]["content"]


def test_another_take_after_a_video_arrives_on_the_clicks_response_url(
    running: tuple[WebhookPoller, RunningServer, Path],
) -> None:
    """Webhook mode has no push: the new take's signed link goes to the response_url of the
    click (usable once), and nothing else may spend it first."""
    from tests.helpers.fake_robot import FakeRobotServer
    from tests.helpers.servers import wait_until

    poller, _, db_path = running
    answer = poller.message("zhaoliu", "/video 第一条")
    assert answer is not None
    first = poller.poll(answer["stream"]["id"], timeout=180)[-1]
    assert "/media/signed/" in first
    with sqlite3.connect(db_path) as conn:
        (task_id,) = conn.execute(
            "SELECT id FROM tasks WHERE task_type = 'video_generation' ORDER BY created_at DESC"
        ).fetchone()
    with FakeRobotServer() as receiver:
        clicked = poller.post(
            {
                "msgid": "take-1",
                "msgtype": "event",
                "from": {"userid": "zhaoliu"},
                "response_url": f"{receiver.base_url}/cgi-bin/response?code=take",
                "event": {
                    "eventtype": "template_card_event",
                    "template_card_event": {
                        "card_type": "button_interaction",
                        "event_key": f"another_take:{task_id}:video",
                        "task_id": f"avb-{task_id[:8]}-video",
                    },
                },
            }
        )
        assert clicked is not None and clicked["response_type"] == "update_template_card"
        posted = wait_until(receiver.received, timeout=180)
        content = posted[0]["body"]["markdown"]["content"]
        assert "/media/signed/" in content, content
        assert content.split("](", 1)[1] != first.split("](", 1)[1]  # a new video
