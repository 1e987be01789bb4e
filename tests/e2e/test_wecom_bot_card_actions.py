"""Buttons under a WeCom AI-bot video, end to end over the long connection.

/video -> the video and a button_interaction card; "another take" -> the card is updated at
once (aibot_respond_update_msg on the event's req_id) and a second, visibly different video
comes (a new seed through the real pipeline); a double click does the work once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avatarbot.app import create_app
from avatarbot.config import Settings
from tests.helpers.fake_wecom_bot import BOT_ID, SECRET, FakeWecomBot
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

USER = "wangwu"


@dataclass
class Env:
    fake: FakeWecomBot
    server: RunningServer
    db_path: Path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()

    def video_bytes(self, message: dict[str, Any]) -> bytes:
        return bytes(self.fake.media[message["body"]["video"]["media_id"]]["data"])


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    from avatarbot.jobs.handlers import _HANDLERS, register_handler
    from avatarbot.pipeline.video_task import run_video_generation
    from avatarbot.storage.models import TaskType

    previous = _HANDLERS.get(TaskType.VIDEO_GENERATION)
    register_handler(TaskType.VIDEO_GENERATION, run_video_generation)  # seeds matter here
    fake = FakeWecomBot().start()
    db_path = tmp_path / "avatarbot.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{db_path}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        wecom_bot={"bot_id": BOT_ID, "secret": SECRET, "ws_url": fake.url},
        pipeline={"video_size": 256},
    )
    server = start_uvicorn(create_app(settings))
    try:
        wait_until(lambda: fake.connected, timeout=20)
        yield Env(fake, server, db_path)
    finally:
        server.stop()
        fake.stop()
        if previous is not None:
            register_handler(TaskType.VIDEO_GENERATION, previous)


def _frames(data: bytes, tmp_path: Path, name: str) -> np.ndarray:
    """Every frame of an MP4 as grey float32 (n, h, w)."""
    import cv2

    path = tmp_path / name
    path.write_bytes(data)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32))
    capture.release()
    return np.stack(frames)


def test_another_take_gives_a_different_video_once(env: Env, tmp_path: Path) -> None:
    req_id = env.fake.user_says(USER, "/video 你好")
    first = wait_until(lambda: env.fake.sent("video"), timeout=240)[0]
    assert first["req_id"] == req_id
    cards = wait_until(lambda: env.fake.sent("template_card"), timeout=30)
    card = cards[0]["body"]["template_card"]
    assert card["card_type"] == "button_interaction" and card["task_id"]
    keys = {b["key"].split(":", 1)[0]: b["key"] for b in card["button_list"]}
    assert set(keys) == {"another_take", "other_voice", "audio_only"}

    # A double click: two template_card_events with their own msgids and req_ids.
    clicks = [env.fake.click(USER, card, keys["another_take"]) for _ in range(2)]
    wait_until(lambda: len(env.fake.card_updates) >= 2, timeout=10)
    for update in env.fake.card_updates:
        print(f"card click answered in {update['after_s'] * 1000:.0f} ms")
        assert update["req_id"] in clicks and update["after_s"] < 3.0
        updated = update["body"]["template_card"]
        assert updated["task_id"] == card["task_id"]
        assert updated["main_title"]["desc"] == "Making another take…"
    assert not [e for e in env.fake.errors if e[0] == "aibot_respond_update_msg"]

    second = wait_until(lambda: env.fake.sent("video")[1:], timeout=240)[0]
    wait_until(lambda: len(env.fake.sent("template_card")) == 2, timeout=30)  # new buttons
    # Both clicks are one inbox event (card_actions.dedup_key): it is claimed and done once.
    events = env.query("SELECT status FROM processed_events WHERE event_id LIKE 'card:%'")
    assert events == [("done",)]
    videos = env.query(
        "SELECT params FROM tasks WHERE task_type = 'video_generation' ORDER BY created_at"
    )
    assert len(videos) == 2, "the double click made one more video, not two"
    seeds = [json.loads(p).get("seed") for (p,) in videos]
    assert seeds[0] is None and seeds[1]

    a = _frames(env.video_bytes(first), tmp_path, "a.mp4")
    b = _frames(env.video_bytes(second), tmp_path, "b.mp4")
    n = min(len(a), len(b))
    diff = float(np.abs(a[:n] - b[:n]).mean())
    print(f"another take: mean absolute frame difference {diff:.2f} (0-255 grey)")
    assert diff > 1.0, "the second take looks the same as the first"
