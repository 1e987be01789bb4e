"""Over the real app: upload a portrait, generate a video, poll the task, download the MP4."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from avatarbot.pipeline import face as F

pytestmark = pytest.mark.slow
API = "/api/v1/digital-human"


async def _wait_done(client: httpx.AsyncClient, headers: dict, task_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
        assert r.status_code == 200, r.text
        task = r.json()
        if task["status"] in {"completed", "failed", "cancelled"}:
            return task
        await asyncio.sleep(0.2)
    raise AssertionError("task did not finish in 120 s")


async def test_portrait_upload_generate_and_download(
    client: httpx.AsyncClient, admin_headers: dict, app: object
) -> None:
    app.state.services.settings.pipeline.video_size = 256  # type: ignore[attr-defined]
    portrait = F.DEFAULT_PORTRAIT.read_bytes()
    r = await client.post(
        f"{API}/create", headers=admin_headers, data={"name": "Grace"},
        files={"image": ("grace.jpg", portrait, "image/jpeg")},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    human_id = r.json()["id"]

    r = await client.post(
        f"{API}/generate", headers=admin_headers,
        json={"text": "Hello from avatarbot.", "digital_human_id": human_id, "mode": "lipsync"},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    task = await _wait_done(client, admin_headers, r.json()["task_id"])
    assert task["status"] == "completed", task
    assert task["result_url"] == f"/api/v1/tasks/{task['id']}/result"
    assert not any(k.endswith("path") for k in task["result"])  # no server layout leaks
    r = await client.get(task["result_url"], headers=admin_headers)
    assert r.status_code == 200
    assert r.content[4:8] == b"ftyp" and len(r.content) > 10_000


async def test_portrait_without_face_is_rejected(
    client: httpx.AsyncClient, admin_headers: dict
) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(buf, format="PNG")
    r = await client.post(
        f"{API}/create", headers=admin_headers, data={"name": "Nobody"},
        files={"image": ("blank.png", buf.getvalue(), "image/png")},
    )  # fmt: skip
    assert r.status_code == 422 and "face" in r.text
    r = await client.post(
        f"{API}/create", headers=admin_headers, data={"name": "Broken"},
        files={"image": ("broken.jpg", b"\xff\xd8garbage", "image/jpeg")},
    )  # fmt: skip
    assert r.status_code == 422
