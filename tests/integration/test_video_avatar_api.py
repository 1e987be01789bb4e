"""Over the real app: a digital human from a short video, generation with `framing`, and video
sources that are refused (422) without leaving anything on disk."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from avatarbot.pipeline import mux
from tests.helpers import avatar_sources as S

pytestmark = pytest.mark.slow
API = "/api/v1/digital-human"


async def _wait_done(client: httpx.AsyncClient, headers: dict, task_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r = await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in {"completed", "failed", "cancelled"}:
            return r.json()
        await asyncio.sleep(0.2)
    raise AssertionError("task did not finish in 120 s")


async def _video_of(client: httpx.AsyncClient, headers: dict, task: dict, tmp: Path) -> np.ndarray:
    r = await client.get(task["result_url"], headers=headers)
    assert r.status_code == 200
    path = tmp / f"{task['id']}.mp4"
    path.write_bytes(r.content)
    return mux.decode_frames(path)


async def test_digital_human_from_a_video(
    client: httpx.AsyncClient, admin_headers: dict, app: object, tmp_path: Path
) -> None:
    settings = app.state.services.settings  # type: ignore[attr-defined]
    settings.pipeline.video_size = 256
    clip = S.sway_video(tmp_path / "me.mp4", 1.0)
    r = await client.post(
        f"{API}/create", headers=admin_headers, data={"name": "Clip"},
        files={"image": ("me.mp4", clip.read_bytes(), "video/mp4")},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    human = r.json()
    assert human["source_type"] == "video"
    folder = settings.data_dir / "digital_humans" / human["id"]
    assert list(folder.glob(".source.mp4.*.faces.npz"))  # analysed once, at upload
    r = await client.get(human["portrait_url"], headers=admin_headers)
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8")  # the first frame

    r = await client.post(
        f"{API}/generate", headers=admin_headers,
        json={"text": "Hello from my own video.", "digital_human_id": human["id"],
              "mode": "lipsync", "framing": "portrait"},
    )  # fmt: skip
    assert r.status_code == 202, r.text
    task = await _wait_done(client, admin_headers, r.json()["task_id"])
    assert task["status"] == "completed", task
    frames = await _video_of(client, admin_headers, task, tmp_path)
    assert frames.shape[1:3] == (256, 256)  # portrait framing: the square crop

    r = await client.delete(f"{API}/{human['id']}", headers=admin_headers)
    assert r.status_code == 204 and not folder.exists()


async def test_framing_field_on_generate(
    client: httpx.AsyncClient, admin_headers: dict, app: object, tmp_path: Path
) -> None:
    settings = app.state.services.settings  # type: ignore[attr-defined]
    settings.pipeline.video_size = 256
    body = S.write_image(tmp_path / "body.jpg", S.full_body_image())
    r = await client.post(
        f"{API}/create", headers=admin_headers, data={"name": "Standing"},
        files={"image": ("body.jpg", body.read_bytes(), "image/jpeg")},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    human_id = r.json()["id"]
    r = await client.post(
        f"{API}/generate", headers=admin_headers,
        json={"text": "Hi.", "digital_human_id": human_id, "framing": "zoom"},
    )  # fmt: skip
    assert r.status_code == 422 and "framing" in r.text
    sizes = {}
    for framing in ("auto", "full"):
        r = await client.post(
            f"{API}/generate", headers=admin_headers,
            json={"text": "Hi there.", "digital_human_id": human_id, "mode": "lipsync",
                  "framing": framing},
        )  # fmt: skip
        assert r.status_code == 202, r.text
        task = await _wait_done(client, admin_headers, r.json()["task_id"])
        assert task["status"] == "completed", task
        frames = await _video_of(client, admin_headers, task, tmp_path)
        sizes[framing] = frames.shape[1:3]
        if framing == "auto":
            assert min(S.detected_face_widths(frames[::10])) >= 0.33
    assert sizes == {"auto": (256, 256), "full": (256, 170)}  # full: 900x1350 as a whole


async def test_bad_video_sources_are_422_and_leave_nothing(
    client: httpx.AsyncClient, admin_headers: dict, app: object, tmp_path: Path
) -> None:
    settings = app.state.services.settings  # type: ignore[attr-defined]
    cases = {
        "long.mp4": (S.long_video, "60 s"),
        "two.mp4": (S.two_face_video, "several faces"),
        "none.webm": (S.no_face_video, "no face"),
        "broken.mp4": (S.corrupt_video, "corrupt"),
    }
    for name, (make, message) in cases.items():
        clip = make(tmp_path / name)
        r = await client.post(
            f"{API}/create", headers=admin_headers, data={"name": name},
            files={"image": (name, clip.read_bytes(), "video/mp4")},
        )  # fmt: skip
        assert r.status_code == 422, (name, r.text)
        assert message in r.json()["detail"], (name, r.text)
        folder = settings.data_dir / "digital_humans"
        assert not folder.exists() or not any(folder.iterdir()), name
    r = await client.get(f"{API}/list", headers=admin_headers)
    assert [h["name"] for h in r.json()] == ["Grace"]
