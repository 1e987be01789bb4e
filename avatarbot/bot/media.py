"""Small ffmpeg helpers channels need around a finished media file (blocking: run in a thread).

Duration and a cover frame for video messages; Opus (Feishu audio) and AMR (WeCom voice).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.ffmpeg import banner_duration, ffmpeg_exe


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def media_duration(path: Path) -> float:
    """Container duration in seconds (ffmpeg's header line; 0.0 when unknown)."""
    proc = _run(["-i", str(path)])
    return banner_duration(proc.stderr) or 0.0


def extract_cover(video: Path, out: Path | None = None) -> Path:
    """A JPEG of the first frame (the cover image chat apps show before playing)."""
    out = out or video.with_suffix(".cover.jpg")
    proc = _run(["-y", "-i", str(video), "-frames:v", "1", "-q:v", "3", str(out)])
    if proc.returncode != 0 or not out.exists():
        raise InvalidInput(f"cannot read a frame from {video.name}")
    return out


def convert_audio(src: Path, fmt: str) -> Path:
    """Re-encode audio for a platform: "opus" (Ogg/Opus, Feishu) or "amr" (AMR-NB 8 kHz, WeCom)."""
    if fmt == "opus":
        out = src.with_suffix(".opus")
        codec = ["-vn", "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg"]
    elif fmt == "amr":
        out = src.with_suffix(".amr")
        codec = ["-vn", "-ac", "1", "-ar", "8000", "-c:a", "libopencore_amrnb", "-b:a", "12.2k"]
    else:
        raise InvalidInput(f"unknown audio format {fmt!r}")
    if src.suffix.lower() == out.suffix.lower():
        return src
    proc = _run(["-y", "-i", str(src), *codec, str(out)])
    if proc.returncode != 0 or not out.exists():
        raise InvalidInput(f"cannot convert {src.name} to {fmt}")
    return out
