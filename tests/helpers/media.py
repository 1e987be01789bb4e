"""Generate real media files with the bundled ffmpeg, and look at their frames."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from avatarbot.plugins.media import ffmpeg_exe


def make_test_video(
    path: Path, seconds: float = 3.0, size: str = "320x240", audio: bool = True
) -> Path:
    """testsrc picture + sine tone, H.264/AAC MP4."""
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    args += ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-shortest"] if audio else []
    subprocess.run([*args, str(path)], check=True)
    return path


def frame_at(video: Path, seconds: float, out: Path) -> np.ndarray:
    """Grey-level pixels of the frame at `seconds`."""
    subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-ss",
            str(seconds),
            "-i",
            str(video),
            "-frames:v",
            "1",
            str(out),
        ],
        check=True,
    )
    return np.asarray(Image.open(out).convert("L"), dtype=float)
