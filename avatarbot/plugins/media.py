"""ffmpeg helpers shared by the media plugins: run it, probe files, find a font.

The ffmpeg binary comes from imageio-ffmpeg (static build, no ffprobe), so probing parses the
`ffmpeg -i` banner: duration and one line per stream.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.ffmpeg import banner_duration, ffmpeg_exe

_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: (Video|Audio|Subtitle): (\w+)(.*)")
_SIZE_RE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_FPS_RE = re.compile(r"([\d.]+) fps")
_RATE_RE = re.compile(r"(\d+) Hz")
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:/Windows/Fonts/arial.ttf",
)


@dataclass
class StreamInfo:
    kind: str  # "video" | "audio" | "subtitle"
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None


@dataclass
class MediaInfo:
    duration: float
    streams: list[StreamInfo] = field(default_factory=list)

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "video"), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    def to_dict(self) -> dict:
        return {
            "duration": round(self.duration, 3),
            "streams": [s.__dict__ for s in self.streams],
        }


@functools.cache
def has_filter(name: str) -> bool:
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-filters"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def run_ffmpeg(args: list[str], *, timeout: float = 600, cwd: Path | None = None) -> None:
    """Run ffmpeg; a failure raises InvalidInput with the tail of its log (never a secret)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        raise InvalidInput(f"ffmpeg took longer than {timeout:.0f}s") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise InvalidInput(f"ffmpeg failed: {tail or 'exit ' + str(done.returncode)}")


def probe(path: Path) -> MediaInfo:
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = done.stderr
    duration = banner_duration(text)
    if duration is None:
        raise InvalidInput(f"{Path(path).name} is not a readable media file")
    info = MediaInfo(duration)
    for kind, codec, rest in _STREAM_RE.findall(text):
        stream = StreamInfo(kind.lower(), codec)
        if kind == "Video":
            size = _SIZE_RE.search(rest)
            fps = _FPS_RE.search(rest)
            if size:
                stream.width, stream.height = int(size.group(1)), int(size.group(2))
            stream.fps = float(fps.group(1)) if fps else None
        elif kind == "Audio":
            rate = _RATE_RE.search(rest)
            stream.sample_rate = int(rate.group(1)) if rate else None
        info.streams.append(stream)
    return info


def find_font(preferred: str | None = None) -> Path | None:
    """A TrueType font for drawtext/libass: the configured one, a common system one, or any."""
    if preferred and Path(preferred).is_file():
        return Path(preferred)
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    for root in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        if root.is_dir():
            found = next(iter(sorted(root.rglob("*.ttf"))), None)
            if found:
                return found
    return None
