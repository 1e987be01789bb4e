"""Subtitle cues: parse/write SRT, and build the drawtext fallback when libass is missing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from avatarbot.errors import InvalidInput

_TIME_RE = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d{1,3})\s*-->\s*(\d+):(\d\d):(\d\d)[,.](\d{1,3})")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def parse_srt(text: str) -> list[Cue]:
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.strip().splitlines()
        for index, line in enumerate(lines):
            match = _TIME_RE.search(line)
            if match:
                g = match.groups()
                body = "\n".join(lines[index + 1 :]).strip()
                cues.append(Cue(_seconds(*g[:4]), _seconds(*g[4:]), body))
                break
    if not cues:
        raise InvalidInput("no subtitle cues found (expected SRT)")
    return cues


def cues_from_items(items: list[dict]) -> list[Cue]:
    cues = []
    for item in items:
        try:
            cue = Cue(float(item["start"]), float(item["end"]), str(item["text"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("each subtitle needs start, end (seconds) and text") from exc
        if cue.end <= cue.start:
            raise InvalidInput("a subtitle ends before it starts")
        cues.append(cue)
    if not cues:
        raise InvalidInput("no subtitles given")
    return cues


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def write_srt(cues: list[Cue], path: Path) -> None:
    blocks = [
        f"{n}\n{_stamp(c.start)} --> {_stamp(c.end)}\n{c.text}\n" for n, c in enumerate(cues, 1)
    ]
    path.write_text("\n".join(blocks), encoding="utf-8")


def drawtext_chain(cues: list[Cue], workdir: Path, font_name: str, size: int) -> str:
    """One drawtext per cue; texts go through files so nothing needs filter escaping."""
    parts = []
    for n, cue in enumerate(cues):
        (workdir / f"cue{n}.txt").write_text(cue.text, encoding="utf-8")
        parts.append(
            f"drawtext=fontfile={font_name}:textfile=cue{n}.txt:fontsize={size}"
            ":fontcolor=white:borderw=2:bordercolor=black"
            ":x=(w-text_w)/2:y=h-text_h-20"
            f":enable='between(t,{cue.start:.3f},{cue.end:.3f})'"
        )
    return ",".join(parts)
