"""Offline agent -> real pipeline: a chat request becomes a real MP4 (H.264 + AAC)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from avatarbot.bot.types import Channel, IncomingMessage, ReplyKind
from avatarbot.storage.models import Task, TaskStatus


def _streams(path: Path) -> str:
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr


@pytest.mark.slow
async def test_chinese_request_becomes_a_real_video(app: Any) -> None:
    services = app.state.services
    message = IncomingMessage(
        Channel.WECOM, "zhangsan", "zhangsan", "帮我生成一个视频，内容是大家好"
    )
    replies = await services.agents.handle(message)
    video = next(r for r in replies if r.kind == ReplyKind.VIDEO)
    assert video.task_id is not None
    status = await services.executor.wait(video.task_id, timeout=240)
    async with services.db.session() as session:
        task = await session.get(Task, video.task_id)
    assert task is not None
    assert status == TaskStatus.COMPLETED, task.error_message
    assert task.params["text"] == "大家好"
    assert task.params["max_bytes"] == 10 * 1024 * 1024  # WeCom's video limit
    path = Path(task.result_path or "")
    assert path.suffix == ".mp4"
    info = await asyncio.to_thread(_streams, path)
    assert "Video: h264" in info and "Audio: aac" in info
