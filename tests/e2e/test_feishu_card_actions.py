"""Buttons under a Feishu video reply, end to end: card.action.trigger at POST /webhooks/feishu.

"Another take" gives a second, different video (a new seed through the real pipeline); a
double click (two callbacks with their own event ids) does the work once; "audio only"
sends the speech; every click is answered within 3 s with a toast.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from avatarbot.app import create_app
from avatarbot.config import Settings
from avatarbot.integrations.http import RetryPolicy
from tests.helpers.fake_feishu import FakeFeishu, message_event, signed_body
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

TOKEN = "verify-token-123"
ENCRYPT_KEY = "encrypt-key-456"
CHAT = "oc_buttons_1"
TEXT = "你好"


@dataclass
class Env:
    fake: FakeFeishu
    server: RunningServer
    db_path: Path

    def post(self, payload: dict[str, Any]) -> tuple[httpx.Response, float]:
        raw, headers = signed_body(payload, ENCRYPT_KEY)
        started = time.perf_counter()
        response = httpx.post(
            f"{self.server.base_url}/webhooks/feishu", content=raw, headers=headers, timeout=10
        )
        return response, time.perf_counter() - started

    @property
    def bot(self) -> Any:
        return self.server.server.config.app.state.services.bot  # type: ignore[attr-defined]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from avatarbot.jobs.handlers import _HANDLERS, register_handler
    from avatarbot.pipeline.video_task import run_video_generation
    from avatarbot.storage.models import TaskType

    previous = _HANDLERS.get(TaskType.VIDEO_GENERATION)
    register_handler(TaskType.VIDEO_GENERATION, run_video_generation)  # seeds matter here
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.05 * attempt)
    fake = FakeFeishu().start()
    db_path = tmp_path / "avatarbot.db"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{db_path}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        feishu={
            "app_id": fake.app_id,
            "app_secret": fake.app_secret,
            "verification_token": TOKEN,
            "encrypt_key": ENCRYPT_KEY,
            "base_url": fake.base_url,
        },
        pipeline={"video_size": 256},
    )
    server = start_uvicorn(create_app(settings))
    try:
        yield Env(fake, server, db_path)
    finally:
        server.stop()
        fake.stop()
        if previous is not None:
            register_handler(TaskType.VIDEO_GENERATION, previous)


def click(event_id: str, value: Any, card_message_id: str) -> dict[str, Any]:
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id,
            "token": TOKEN,
            "create_time": "1700000000000000",
            "event_type": "card.action.trigger",
            "tenant_key": "tenant",
            "app_id": "cli_test",
        },
        "event": {
            "operator": {"tenant_key": "tenant", "user_id": "u1", "open_id": "ou_user_1"},
            "token": "c-token",
            "action": {"value": value, "tag": "button", "form_value": {}},
            "host": "im_message",
            "context": {"open_message_id": card_message_id, "open_chat_id": CHAT},
        },
    }


def _frame_diffs(first: bytes, second: bytes, tmp_path: Path) -> list[float]:
    """Per sampled frame: how far the face centre moved between the takes (pixels)."""
    import cv2

    from avatarbot.pipeline.face import detect_face_box
    from tests.helpers.media import frame_at

    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(first)
    b.write_bytes(second)
    diffs = []
    for t in (0.2, 0.5, 0.8):
        centres = []
        for video in (a, b):
            frame_at(video, t, tmp_path / "f.png")
            x, y, w, h = detect_face_box(cv2.imread(str(tmp_path / "f.png")))
            centres.append(np.array([x + w / 2, y + h / 2]))
        diffs.append(round(float(np.linalg.norm(centres[0] - centres[1])), 2))
    return diffs


def _buttons(env: Env) -> tuple[str, dict[str, dict[str, Any]]]:
    cards = [m for m in env.fake.sent("interactive") if m["content"].get("schema") == "2.0"]
    assert len(cards) == 1, "one button card under the video"
    values = {}
    for element in cards[0]["content"]["body"]["elements"]:
        value = element["behaviors"][0]["value"]
        values[value["action"]] = value
    return cards[0]["message_id"], values


def test_another_take_double_click_and_audio_only(env: Env, tmp_path: Path) -> None:
    response, _ = env.post(
        message_event(event_id="ev-1", chat_id=CHAT, text=f"/video {TEXT}", token=TOKEN)
    )
    assert response.status_code == 200
    first = wait_until(lambda: env.fake.sent("media"), timeout=240)[0]
    card_id, values = wait_until(lambda: _buttons(env) if env.fake.sent("interactive") else None)
    assert set(values) == {"another_take", "other_voice", "audio_only"}

    # A double click: two callbacks (their own event ids); the value as a (double) JSON string.
    take = values["another_take"]
    for event_id, value in (("cb-1", json.dumps(take)), ("cb-2", json.dumps(json.dumps(take)))):
        response, elapsed = env.post(click(event_id, value, card_id))
        print(f"card click {event_id} answered in {elapsed * 1000:.0f} ms")
        assert response.status_code == 200 and elapsed < 3.0
        assert response.json() == {"toast": {"type": "success", "content": "Making another take…"}}
    second = wait_until(lambda: env.fake.sent("media")[1:], timeout=240)[0]
    wait_until(lambda: env.bot.duplicates >= 1)
    videos = env.query(
        "SELECT params FROM tasks WHERE task_type = 'video_generation' ORDER BY created_at"
    )
    assert len(videos) == 2, "the double click made one more video, not two"
    seeds = [json.loads(p).get("seed") for (p,) in videos]
    assert seeds[0] is None and seeds[1]
    # A different take, by the pictures (the bytes of two encodes differ anyway).
    diffs = _frame_diffs(
        env.fake.uploads[first["content"]["file_key"]]["data"],
        env.fake.uploads[second["content"]["file_key"]]["data"],
        tmp_path,
    )
    # A figure, not a gate: the procedural head moves little in 1 s, so the shift between
    # seeds (~1-1.5 px at 256 px) is close to two renders of one seed (~0.5-0.7 px).
    print("another take: face centre shift per sampled frame (px)", diffs)
    assert (
        env.fake.uploads[first["content"]["file_key"]]["data"]
        != (env.fake.uploads[second["content"]["file_key"]]["data"])
    )

    # A forged click (bad signature) is refused and does nothing.
    raw, headers = signed_body(click("cb-forged", values["other_voice"], card_id), ENCRYPT_KEY)
    headers["X-Lark-Signature"] = "0" * 64
    forged = httpx.post(
        f"{env.server.base_url}/webhooks/feishu", content=raw, headers=headers, timeout=10
    )
    assert forged.status_code == 401
    # "Other voice": the same text at another pitch, as a third video.
    response, elapsed = env.post(click("cb-v", values["other_voice"], card_id))
    assert response.json()["toast"]["type"] == "success" and elapsed < 3.0
    wait_until(lambda: env.fake.sent("media")[2:], timeout=240)
    params = json.loads(env.query("SELECT params FROM tasks WHERE name LIKE '%other_voice%'")[0][0])
    assert params["voice_params"]["pitch"] == 1.3 and params["text"] == TEXT

    response, elapsed = env.post(click("cb-3", values["audio_only"], card_id))
    assert response.json()["toast"]["type"] == "success" and elapsed < 3.0
    audio = wait_until(lambda: env.fake.sent("audio"), timeout=120)
    assert len(audio) == 1
    # An unknown button: an error toast, no work.
    response, _ = env.post(click("cb-4", {"action": "self_destruct", "ref": "x"}, card_id))
    assert response.status_code == 200 and response.json()["toast"]["type"] == "error"
    assert len(env.query("SELECT id FROM tasks")) == 4
