"""A job handler for worker tests: reports progress in steps and writes a real short MP4.

Imported by test worker processes (`avatarbot worker --include helpers.job_handlers`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from avatarbot.errors import Cancelled
from avatarbot.jobs.handlers import JobContext, register_handler
from avatarbot.storage.models import TaskType


def write_test_mp4(out: Path, seconds: float = 0.4) -> Path:
    """A real H.264/AAC MP4 (test pattern and a tone) made by ffmpeg."""
    import imageio_ffmpeg

    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
            "-f", "lavfi", "-i", f"testsrc=size=64x64:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(out),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return out


def make_test_video(ctx: JobContext) -> dict[str, Any]:
    steps = int(ctx.params.get("steps", 5))
    step_s = float(ctx.params.get("step_s", 0.05))
    for i in range(1, steps + 1):
        if ctx.cancelled():
            raise Cancelled("cancelled")
        time.sleep(step_s)  # stands in for a slow model stage
        ctx.report("render", 90.0 * i / steps, f"step {i}/{steps}")
    out = write_test_mp4(ctx.settings.media_dir / f"{ctx.task_id}.mp4")
    ctx.report("mux", 100.0, "written")
    return {"path": str(out), "attempt": ctx.attempt}


register_handler(TaskType.CUSTOM, make_test_video)
