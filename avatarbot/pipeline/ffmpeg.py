"""The product's one ffmpeg: imageio-ffmpeg's static build (it ships no ffprobe).

Every domain that shells out to ffmpeg (pipeline, bot media, plugins) finds the binary here,
and reads a file's duration from the same `ffmpeg -i` banner line.
"""

from __future__ import annotations

import re

from avatarbot.errors import BackendUnavailable

_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (imageio-ffmpeg caches the search; IMAGEIO_FFMPEG_EXE wins)."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a base dependency
        raise BackendUnavailable(
            "imageio-ffmpeg is not installed (pip install imageio-ffmpeg)"
        ) from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


def banner_duration(banner: str) -> float | None:
    """Seconds from the `Duration: HH:MM:SS.ss` line of `ffmpeg -i` output; None when absent."""
    match = _DURATION.search(banner)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
