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
    """Re-encode audio for a platform: "opus" (Ogg/Opus, Feishu) or "amr" (AMR-NB 8 kHz, WeCom).

    The codec settings are the pipeline's (audio_io.ENCODINGS), so a voice reply is encoded
    the same way whichever path made it."""
    if fmt not in ("opus", "amr"):
        raise InvalidInput(f"unknown audio format {fmt!r}")
    out = src.with_suffix(f".{fmt}")
    if src.suffix.lower() == out.suffix.lower():
        return src
    from avatarbot.pipeline.audio_io import convert_audio_file  # numpy: only when converting

    # "ogg" is Opus in an Ogg container at 48 kHz; the .opus suffix is what Feishu expects.
    return convert_audio_file(src, out, "ogg" if fmt == "opus" else "amr")
