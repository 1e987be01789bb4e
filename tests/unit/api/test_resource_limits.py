"""Resource limits before decoding (issue 15 item 5): one regression test per case."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import resource
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from websockets.asyncio.client import connect

from avatarbot.config import Settings
from tests.conftest import make_settings
from tests.helpers.task_handlers import media_handlers


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, auth={"secret_key": "k" * 40})


def _png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of any size, made row by row (a 9000x9000 one is ~80 kB)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_pixel_bomb_portrait_is_refused_from_its_header(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    bomb = _png(9000, 9000)
    assert len(bomb) < 300_000
    before = _max_rss_mb()
    r = await client.post(
        "/api/v1/digital-human/create",
        headers=admin_headers,
        data={"name": "bomb"},
        files={"image": ("bomb.png", bomb, "image/png")},
    )
    assert r.status_code == 422 and "too many pixels" in r.json()["detail"], r.text
    assert "9000x9000" in r.json()["detail"]
    # Decoding it would take 81 MB grey + 243 MB RGB + copies; the header check takes none.
    assert _max_rss_mb() - before < 60
    assert not list((settings.data_dir / "digital_humans").glob("*/*"))


def test_big_images_are_downscaled_while_loading() -> None:
    from PIL import Image

    from avatarbot.pipeline.face import decode_image
    from avatarbot.pipeline.image_limits import LOAD_LONG_SIDE

    buffer = io.BytesIO()
    Image.new("RGB", (6000, 4000), (90, 120, 150)).save(buffer, "JPEG", quality=70)
    image = decode_image(buffer.getvalue())
    assert max(image.shape[:2]) <= LOAD_LONG_SIDE and image.shape[2] == 3
    assert abs(image.shape[1] / image.shape[0] - 1.5) < 0.01  # aspect kept
    png = decode_image(_png(5000, 2500))
    assert png.shape[:2] == (1024, 2048)


def _lying_zip() -> bytes:
    """A plugin zip whose central directory says main.py is 10 bytes; it holds 200 kB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar/plugin.yaml", "name: liar\nversion: 1.0.0\nentry_point: main:P\n")
        zf.writestr("liar/main.py", "# " + "x" * 200_000 + "\n")
    data = bytearray(buffer.getvalue())
    central = data.rfind(b"PK\x01\x02")  # the last entry: main.py
    assert data[central + 46 : central + 46 + 12] == b"liar/main.py"
    struct.pack_into("<I", data, central + 24, 10)  # uncompressed size
    return bytes(data)


async def test_plugin_zip_lying_about_member_size_is_a_clear_4xx(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    archive = _lying_zip()
    r = await client.post(
        "/api/v1/plugins/install",
        headers=admin_headers,
        files={"file": ("liar.zip", archive, "application/zip")},
        data={"sha256": hashlib.sha256(archive).hexdigest()},
    )
    assert r.status_code in (413, 422), r.text
    assert "liar/main.py" in r.json()["detail"]
    assert not (settings.plugins_dir / "liar").exists()
    assert not [p for p in settings.plugins_dir.iterdir() if p.name.startswith(".install-")]


def _wav_with_lying_header(seconds: float = 1.0, declared_bytes: int = 10) -> bytes:
    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    pcm = (0.5 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    riff = struct.pack("<I", 36 + len(pcm))
    return (
        b"RIFF" + riff + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", declared_bytes) + pcm
    )


async def test_wav_lying_about_its_size_is_refused_at_upload_and_nothing_stays(
    client: httpx.AsyncClient, admin_headers: dict[str, str], settings: Settings
) -> None:
    r = await client.post(
        "/api/v1/digital-human/generate-from-audio",
        headers=admin_headers,
        files={"audio": ("speech.wav", _wav_with_lying_header(), "audio/wav")},
    )
    assert r.status_code == 422, r.text
    assert "too short" in r.json()["detail"] or "no samples" in r.json()["detail"]
    uploads = settings.media_dir / "uploads"
    assert not uploads.exists() or not list(uploads.iterdir())
    tasks = (await client.get("/api/v1/tasks", headers=admin_headers)).json()
    assert tasks == []


# --- text -------------------------------------------------------------------------------------


@pytest.fixture
def handlers() -> Iterator[None]:
    with media_handlers():
        yield


@pytest.fixture
async def server(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=5,  # a stuck connection cannot hang the teardown
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    yield f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await serving


async def test_lone_surrogate_in_a_chat_gets_a_normal_answer(
    server: str,
    admin_headers: dict[str, str],
    handlers: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = admin_headers["Authorization"].split(" ", 1)[1]
    async with connect(f"ws://{server}/api/v1/ws/agent?token={token}") as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        # json.dumps writes the lone half as the escape "\ud800", as a hostile client would.
        await ws.send(json.dumps({"type": "message", "text": "hello \ud800 there\x07"}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
        while frame["type"] not in ("answer", "error"):
            frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
    assert frame["type"] == "answer" and frame["text"], frame
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_normalize_text_joins_split_pairs_and_drops_controls() -> None:
    from avatarbot.bot.types import Channel, IncomingMessage
    from avatarbot.textnorm import normalize_text

    assert normalize_text("a\ud800b") == "a\ufffdb"
    assert normalize_text("\ud83d\ude00") == "\U0001f600"
    assert normalize_text("x\x00y\tz\r\nw\x1b") == "xy\tz\nw"
    msg = IncomingMessage(channel=Channel.FEISHU, chat_id="c", user_id="u", text="hi\udfff")
    msg.text.encode("utf-8")  # never raises again


def test_image_processor_plugin_refuses_pixel_bombs_before_decoding(tmp_path: Path) -> None:
    from avatarbot.errors import InvalidInput
    from avatarbot.plugins.manager import PluginManager

    manager = PluginManager(tmp_path / "data")
    try:
        manager.load_plugin("image_processor")
        manager.media_dir.mkdir(parents=True, exist_ok=True)
        (manager.media_dir / "bomb.png").write_bytes(_png(9000, 9000))
        with pytest.raises(InvalidInput, match="too many pixels"):
            manager.call_tool(
                "image_processor.resize", input_path="bomb.png", output_path="r.png", width=100
            )
    finally:
        manager.shutdown()
