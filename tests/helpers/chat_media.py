"""Real media for channel tests: a short H.264/AAC MP4 made by ffmpeg, a stream probe, a video handler."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg

from avatarbot.jobs.handlers import _HANDLERS, JobContext, register_handler
from avatarbot.storage.models import TaskType


def ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def make_test_video(path: Path, seconds: float = 1.6, size: int = 128) -> Path:
    """testsrc + a sine tone, H.264 yuv420p + AAC, faststart: a small valid chat video."""
    cmd = [
        ffmpeg(), "-hide_banner", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc=size={size}x{size}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=24000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return path


@dataclass
class Probe:
    video_codec: str
    audio_codec: str
    duration: float


def probe(path: Path) -> Probe:
    proc = subprocess.run(
        [ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    video = re.search(r"Stream .*Video: (\w+)", proc.stderr)
    audio = re.search(r"Stream .*Audio: (\w+)", proc.stderr)
    dur = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", proc.stderr)
    seconds = (
        int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    )
    return Probe(video.group(1) if video else "", audio.group(1) if audio else "", seconds)


VIDEO_SECONDS = 1.6


def fake_video_handler(ctx: JobContext) -> dict[str, Any]:
    """Stands in for the pipeline in channel tests: reports stages and writes a real MP4."""
    out_dir = ctx.settings.media_dir / "test-videos"
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx.report("tts", 20.0, "speech")
    ctx.report("animate", 55.0, "frames")
    path = make_test_video(out_dir / f"{ctx.task_id}.mp4", VIDEO_SECONDS)
    ctx.report("mux", 90.0, "encoding")
    return {"path": str(path), "duration": VIDEO_SECONDS, "text": ctx.params.get("text")}


def install_video_handler() -> str:
    """Use the real pipeline's video handler when it is registered, else the test one."""
    import os

    import avatarbot.pipeline.tasks  # noqa: F401  (registers the real handlers, if any)

    current = _HANDLERS.get(TaskType.VIDEO_GENERATION)
    if current not in (None, fake_video_handler) and not os.environ.get(
        "AVATARBOT_TEST_FAKE_VIDEO"
    ):
        return "pipeline"
    register_handler(TaskType.VIDEO_GENERATION, fake_video_handler)
    return "test"
