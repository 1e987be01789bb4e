"""Photos, voice and files from Feishu users, end to end over real sockets.

The real avatarbot under uvicorn, the stand-in Feishu platform serving the users' media
through the message resources API, a stand-in ASR server, and the real video pipeline for
the photo-as-avatar check (mediapipe finds the face in frame 0 where it is in the photo).
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Request

from avatarbot.app import create_app
from avatarbot.config import Settings
from avatarbot.integrations.http import RetryPolicy
from tests.helpers.fake_feishu import FakeFeishu, media_event, message_event, signed_body
from tests.helpers.servers import RunningServer, start_uvicorn, wait_until

pytestmark = pytest.mark.slow

TOKEN = "verify-token-123"
ENCRYPT_KEY = "encrypt-key-456"
CHAT = "oc_media_chat_1"
PORTRAIT = Path(__file__).resolve().parents[2] / "avatarbot/pipeline/assets/default_portrait.jpg"


@dataclass
class Env:
    fake: FakeFeishu
    server: RunningServer
    db_path: Path

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/webhooks/feishu"

    def post(self, payload: dict[str, Any]) -> httpx.Response:
        raw, headers = signed_body(payload, ENCRYPT_KEY)
        return httpx.post(self.url, content=raw, headers=headers, timeout=10)

    def texts(self) -> list[str]:
        return [str(m["content"].get("text") or "") for m in self.fake.sent("text")]

    def wait_text(self, count: int, timeout: float = 60) -> str:
        """The count-th text reply (1-based), once it has arrived."""
        wait_until(lambda: len(self.texts()) >= count, timeout=timeout)
        return self.texts()[count - 1]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(sql).fetchall()


def _asr_app() -> Any:
    """A stand-in OpenAI-compatible transcription service."""
    app = FastAPI()
    app.state.calls = []

    @app.post("/v1/audio/transcriptions")
    async def transcribe(request: Request) -> Any:
        form = await request.form()
        upload = form["file"]
        data = await upload.read()  # type: ignore[union-attr]
        app.state.calls.append(
            {
                "model": form.get("model"),
                "bytes": len(data),
                "auth": request.headers.get("authorization"),
            }
        )
        return {"text": "/help"}

    return app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from avatarbot.jobs.handlers import _HANDLERS, register_handler
    from avatarbot.pipeline.video_task import run_video_generation
    from avatarbot.storage.models import TaskType

    # The real pipeline, whatever an earlier test installed: the video must show the photo.
    previous = _HANDLERS.get(TaskType.VIDEO_GENERATION)
    register_handler(TaskType.VIDEO_GENERATION, run_video_generation)
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.05 * attempt)
    fake = FakeFeishu().start()
    asr = start_uvicorn(_asr_app())
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
        asr={"base_url": f"{asr.base_url}/v1", "api_key": "asr-key", "model": "whisper-test"},
        pipeline={"video_size": 256, "default_mode": "lipsync"},
    )
    server = start_uvicorn(create_app(settings))
    environment = Env(fake, server, db_path)
    environment.asr = asr  # type: ignore[attr-defined]
    try:
        yield environment
    finally:
        server.stop()
        asr.stop()
        fake.stop()
        if previous is not None:
            register_handler(TaskType.VIDEO_GENERATION, previous)


def _off_centre_photo() -> bytes:
    """The shipped portrait on the right half of a wider grey canvas: the face is off-centre."""
    from PIL import Image

    with Image.open(PORTRAIT) as face:
        canvas = Image.new("RGB", (face.width * 2, face.height), (128, 128, 128))
        canvas.paste(face.convert("RGB"), (face.width, 0))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=92)
    return out.getvalue()


def _face_centre(image_bgr: np.ndarray) -> tuple[float, float]:
    from avatarbot.pipeline.face import detect_face_box

    x, y, w, h = detect_face_box(image_bgr)
    height, width = image_bgr.shape[:2]
    return (x + w / 2) / width, (y + h / 2) / height


def _first_frame(video: bytes, tmp_path: Path) -> np.ndarray:
    import subprocess

    import cv2

    from avatarbot.pipeline.ffmpeg import ffmpeg_exe

    src, out = tmp_path / "got.mp4", tmp_path / "frame0.png"
    src.write_bytes(video)
    cmd = [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(src), "-frames:v", "1", str(out)]
    subprocess.run(cmd, check=True, timeout=60)
    frame = cv2.imread(str(out))
    assert frame is not None
    return frame


def _post_image(env: Env, event_id: str, data: bytes, text: str = "/avatar") -> None:
    """A rich-text message: the photo and the text in one (how Feishu sends "photo + words")."""
    message_id = f"om_in_{event_id}"
    env.fake.resources[(message_id, f"img_{event_id}")] = data
    content = {
        "zh_cn": {
            "title": "",
            "content": [
                [{"tag": "img", "image_key": f"img_{event_id}"}],
                [{"tag": "text", "text": text}],
            ],
        }
    }
    event = media_event(
        event_id=event_id, chat_id=CHAT, token=TOKEN, message_type="post", content=content
    )
    assert env.post(event).status_code == 200


def test_photo_with_avatar_then_video_shows_that_face(env: Env, tmp_path: Path) -> None:
    import cv2

    photo = _off_centre_photo()
    _post_image(env, "ev-photo-1", photo)
    answer = env.wait_text(1)
    assert answer.startswith("Done: your photo") and "/video" in answer, answer
    # The resources API was asked for this message's image.
    calls = env.fake.calls("/open-apis/im/v1/messages/om_in_ev-photo-1/resources/img_ev-photo-1")
    assert calls and calls[0].query["type"] == "image"
    bound = env.query(
        "SELECT b.digital_human_id, h.image_path FROM chat_bindings b "
        f"JOIN digital_humans h ON h.id = b.digital_human_id WHERE b.chat_id = '{CHAT}'"
    )
    assert len(bound) == 1 and Path(bound[0][1]).read_bytes() == photo

    video_event = message_event(
        event_id="ev-photo-2", chat_id=CHAT, text="/video 你好", token=TOKEN
    )
    assert env.post(video_event).status_code == 200
    media = wait_until(lambda: env.fake.sent("media"), timeout=240)
    video = env.fake.uploads[media[0]["content"]["file_key"]]["data"]
    frame = _first_frame(video, tmp_path)
    photo_x, photo_y = _face_centre(cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR))
    frame_x, frame_y = _face_centre(frame)
    print("face centre (x, y) photo", (photo_x, photo_y), "video frame 0", (frame_x, frame_y))
    assert photo_x > 0.6, "the test photo's face is on the right"
    assert abs(frame_x - photo_x) < 0.06 and abs(frame_y - photo_y) < 0.06, (
        (photo_x, photo_y),
        (frame_x, frame_y),
    )


def test_use_this_photo_after_a_photo_and_no_face(env: Env) -> None:
    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 160, 90)).save(blank, format="PNG")
    env.fake.resources[("om_in_ev-nf-1", "img_nf")] = blank.getvalue()
    image_only = media_event(
        event_id="ev-nf-1",
        chat_id=CHAT,
        token=TOKEN,
        message_type="image",
        content={"image_key": "img_nf"},
    )
    assert env.post(image_only).status_code == 200
    assert "/avatar" in env.wait_text(1)  # no LLM: the bot says what it can do with a photo
    use_it = message_event(event_id="ev-nf-2", chat_id=CHAT, text="用这张照片", token=TOKEN)
    assert env.post(use_it).status_code == 200
    answer = env.wait_text(2)
    assert "could not use that photo" in answer and "face" in answer, answer
    assert env.query("SELECT count(*) FROM chat_bindings") == [(0,)]


def test_bad_media_gets_clear_replies(env: Env) -> None:
    # A "photo" that is not an image.
    _post_image(env, "ev-bad-1", b"%PDF-1.4 this is not a picture")
    assert "not an image" in env.wait_text(1)
    # Media the platform refuses to hand over (expired, withdrawn, undecryptable on its side).
    refused = media_event(
        event_id="ev-bad-2",
        chat_id=CHAT,
        token=TOKEN,
        message_type="image",
        content={"image_key": "img_gone"},
    )
    assert env.post(refused).status_code == 200
    assert "could not download" in env.wait_text(2)
    # A file over the 20 MB cap, streamed without Content-Length: the download stops early.
    env.fake.resources[("om_in_ev-bad-3", "file_big")] = 200 * 1024 * 1024
    big = media_event(
        event_id="ev-bad-3",
        chat_id=CHAT,
        token=TOKEN,
        message_type="file",
        content={"file_key": "file_big", "file_name": "huge.txt"},
    )
    assert env.post(big).status_code == 200
    assert "20 MB" in env.wait_text(3)
    assert env.fake.resource_bytes_sent < 100 * 1024 * 1024
    # Unknown message types (a sticker, a shared chat).
    sticker = media_event(
        event_id="ev-bad-4",
        chat_id=CHAT,
        token=TOKEN,
        message_type="sticker",
        content={"file_key": "sticker_1"},
    )
    assert env.post(sticker).status_code == 200
    assert "cannot read sticker messages" in env.wait_text(4)
    # /avatar with no photo before it.
    lone = message_event(event_id="ev-bad-5", chat_id="oc_other", text="/avatar", token=TOKEN)
    assert env.post(lone).status_code == 200
    assert "Send me a photo" in env.wait_text(5)
    # Nothing crashed: the service is healthy and every event was handled.
    assert httpx.get(f"{env.server.base_url}/health", timeout=5).status_code == 200
    assert env.query("SELECT status, count(*) FROM processed_events GROUP BY status") == [
        ("done", 5)
    ]


def test_voice_goes_through_asr_and_files_into_memory(env: Env) -> None:
    env.fake.resources[("om_in_ev-v-1", "file_voice")] = b"OggS" + b"\x00" * 2000
    voice = media_event(
        event_id="ev-v-1",
        chat_id=CHAT,
        token=TOKEN,
        message_type="audio",
        content={"file_key": "file_voice", "duration": 1200},
    )
    assert env.post(voice).status_code == 200
    # The stand-in ASR "hears" /help: the transcript is handled like typed text.
    assert "/video" in env.wait_text(1)
    calls = env.asr.server.config.app.state.calls  # type: ignore[attr-defined]
    assert calls == [{"model": "whisper-test", "bytes": 2004, "auth": "Bearer asr-key"}]
    res = env.fake.calls("/open-apis/im/v1/messages/om_in_ev-v-1/resources/file_voice")
    assert res[0].query["type"] == "file"

    notes = "# 手册\n\n退货期限是三十天。" + "x" * 20000
    env.fake.resources[("om_in_ev-f-1", "file_notes")] = notes.encode()
    upload = media_event(
        event_id="ev-f-1",
        chat_id=CHAT,
        token=TOKEN,
        message_type="file",
        content={"file_key": "file_notes", "file_name": "notes.md"},
    )
    assert env.post(upload).status_code == 200
    answer = env.wait_text(2)
    assert "I read notes.md" in answer and "first 7000 kept" in answer, answer
    stored = env.query("SELECT role, content FROM conversation_messages ORDER BY id")
    user_turns = [c for r, c in stored if r == "user" and c.startswith("[file notes.md]")]
    assert len(user_turns) == 1 and "退货期限是三十天" in user_turns[0]
    assert len(user_turns[0]) <= 7100

    env.fake.resources[("om_in_ev-f-2", "file_zip")] = b"PK\x03\x04 zip bytes"
    archive = media_event(
        event_id="ev-f-2",
        chat_id=CHAT,
        token=TOKEN,
        message_type="file",
        content={"file_key": "file_zip", "file_name": "stuff.zip"},
    )
    assert env.post(archive).status_code == 200
    assert "text, markdown, CSV, PDF and Word" in env.wait_text(3)


def test_avatar_in_reply_to_an_earlier_photo(env: Env) -> None:
    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 160, 90)).save(blank, format="PNG")
    photos = [("ev-r-1", "img_r1", PORTRAIT.read_bytes()), ("ev-r-2", "img_r2", blank.getvalue())]
    for count, (event_id, key, data) in enumerate(photos, start=1):
        env.fake.resources[(f"om_in_{event_id}", key)] = data
        env.fake.user_messages[f"om_in_{event_id}"] = ("image", {"image_key": key})
        event = media_event(
            event_id=event_id,
            chat_id=CHAT,
            token=TOKEN,
            message_type="image",
            content={"image_key": key},
        )
        assert env.post(event).status_code == 200
        env.wait_text(count)
    # The latest photo has no face; /avatar as a reply to the first one uses the first one.
    reply = message_event(event_id="ev-r-3", chat_id=CHAT, text="/avatar", token=TOKEN)
    reply["event"]["message"]["parent_id"] = "om_in_ev-r-1"
    assert env.post(reply).status_code == 200
    assert env.wait_text(3).startswith("Done: your photo")
    rows = env.query(
        "SELECT h.image_path FROM chat_bindings b JOIN digital_humans h ON h.id = b.digital_human_id"
    )
    assert len(rows) == 1 and Path(rows[0][0]).read_bytes() == PORTRAIT.read_bytes()


def _streamed_answer(env: Env, count: int) -> str:
    """The text of the count-th finished streaming card (1-based)."""

    def finished() -> list[str]:
        cards = [env.fake.cardkit.card(m["content"]["data"]["card_id"])
                 for m in env.fake.sent("interactive") if m["content"].get("type") == "card"]  # fmt: skip
        return [card.text for card in cards if card.ended]

    wait_until(lambda: len(finished()) >= count, timeout=60)
    return finished()[count - 1]


def test_a_document_sent_in_chat_goes_into_the_knowledge_base_with_kb(env: Env) -> None:
    """A file, then /kb: the chat agent's knowledge base indexes it, and the agent answers
    from it with the source (no LLM: the rule brain quotes the passage)."""
    handbook = (
        "# Staff handbook\n\nReturns are accepted within thirty days of purchase.\n\n"
        "## 假期\n\n年假为十五天，需提前两周申请。\n"
    )
    env.fake.resources[("om_in_ev-k-1", "file_handbook")] = handbook.encode()
    first = media_event(
        event_id="ev-k-1",
        chat_id=CHAT,
        token=TOKEN,
        message_type="file",
        content={"file_key": "file_handbook", "file_name": "handbook.md"},
    )
    assert env.post(first).status_code == 200
    read = env.wait_text(1)
    assert "I read handbook.md" in read and "/kb" in read
    assert env.query("SELECT count(*) FROM knowledge_documents") == [(0,)]  # not without /kb

    kb = message_event(event_id="ev-k-2", chat_id=CHAT, text="/kb", token=TOKEN)
    assert env.post(kb).status_code == 200
    added = env.wait_text(2)
    assert "handbook.md: added in the knowledge base of assistant" in added, added
    [(filename, chunks)] = env.query("SELECT filename, chunk_count FROM knowledge_documents")
    assert filename == "handbook.md" and chunks >= 1

    ask = message_event(
        event_id="ev-k-3",
        chat_id=CHAT,
        text="what does the handbook say about returns?",
        token=TOKEN,
    )
    assert env.post(ask).status_code == 200
    answer = _streamed_answer(env, 1)  # agent answers stream into a CardKit card
    assert "thirty days" in answer and "handbook.md" in answer, answer
    ask_zh = message_event(
        event_id="ev-k-4", chat_id=CHAT, text="手册里关于年假怎么说", token=TOKEN
    )
    assert env.post(ask_zh).status_code == 200
    assert "十五天" in _streamed_answer(env, 2)

    # /kb again adds nothing new: the same file replaces itself, one document stays.
    again = message_event(event_id="ev-k-5", chat_id=CHAT, text="加入知识库", token=TOKEN)
    assert env.post(again).status_code == 200
    assert "replaced the earlier copy" in env.wait_text(3)
    assert env.query("SELECT count(*) FROM knowledge_documents") == [(1,)]
    # Another chat has no file of its own to add.
    other = message_event(event_id="ev-k-6", chat_id="oc_other", text="/kb", token=TOKEN)
    assert env.post(other).status_code == 200
    assert "Send me a document first" in env.wait_text(4)
