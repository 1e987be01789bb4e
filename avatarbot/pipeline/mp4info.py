"""MP4 inspection without ffprobe (imageio-ffmpeg ships only ffmpeg).

Reads the ISO-BMFF boxes directly: codecs, per-stream durations (edit lists, so AAC priming is
excluded), frame count, and whether moov precedes mdat (+faststart). pix_fmt, size and fps come
from `ffmpeg -i`'s description of the input.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.ffmpeg import ffmpeg_exe


@dataclass
class StreamInfo:
    kind: str  # "video" | "audio"
    codec: str  # h264, aac, ...
    duration: float
    samples: int  # frames for video, AAC packets for audio


@dataclass
class ProbeInfo:
    streams: list[StreamInfo]
    duration: float
    size_bytes: int
    faststart: bool
    width: int = 0
    height: int = 0
    pix_fmt: str = ""
    fps: float = 0.0

    def stream(self, kind: str) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == kind), None)


_CODECS = {b"avc1": "h264", b"avc3": "h264", b"mp4a": "aac", b"hvc1": "hevc", b"hev1": "hevc"}
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _boxes(data: bytes, start: int, end: int):  # type: ignore[no-untyped-def]
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, pos + size
        pos += size


def probe(path: str | os.PathLike[str]) -> ProbeInfo:
    p = Path(path)
    data = p.read_bytes()
    top = [(k, s, e) for k, s, e in _boxes(data, 0, len(data))]
    kinds = [k for k, _, _ in top]
    if b"moov" not in kinds:
        raise InvalidInput("not an MP4 file (no moov box)")
    faststart = b"mdat" in kinds and kinds.index(b"moov") < kinds.index(b"mdat")
    _, ms, me = top[kinds.index(b"moov")]
    movie_scale = 1000
    streams: list[StreamInfo] = []
    for kind, s, e in _boxes(data, ms, me):
        if kind == b"mvhd":
            version = data[s]
            movie_scale = struct.unpack(
                ">I", data[s + (20 if version else 12) : s + (24 if version else 16)]
            )[0]
        elif kind == b"trak":
            streams.append(_track(data, s, e, movie_scale))
    info = ProbeInfo(streams, 0.0, len(data), faststart)
    info.duration = max((st.duration for st in streams), default=0.0)
    _add_ffmpeg_details(p, info)
    return info


def _track(data: bytes, s: int, e: int, movie_scale: int) -> StreamInfo:
    found: dict[str, object] = {}

    def walk(a: int, b: int) -> None:
        for kind, cs, ce in _boxes(data, a, b):
            if kind in _CONTAINERS:
                walk(cs, ce)
            elif kind == b"tkhd":
                v = data[cs]
                off = cs + (28 if v else 20)
                found["tkhd"] = struct.unpack(
                    ">Q" if v else ">I", data[off : off + (8 if v else 4)]
                )[0]
            elif kind == b"mdhd":
                v = data[cs]
                off = cs + (20 if v else 12)
                scale = struct.unpack(">I", data[off : off + 4])[0]
                dur = struct.unpack(">Q" if v else ">I", data[off + 4 : off + (12 if v else 8)])[0]
                found["mdhd"] = (scale, dur)
            elif kind == b"hdlr":
                found["handler"] = data[cs + 8 : cs + 12]
            elif kind == b"stsd":
                found["codec"] = data[cs + 12 : cs + 16]
            elif kind == b"stsz":
                found["samples"] = struct.unpack(">I", data[cs + 8 : cs + 12])[0]
            elif kind == b"elst":
                v = data[cs]
                if struct.unpack(">I", data[cs + 4 : cs + 8])[0] >= 1:
                    off = cs + 8
                    found["elst"] = struct.unpack(
                        ">Q" if v else ">I", data[off : off + (8 if v else 4)]
                    )[0]

    walk(s, e)
    handler = found.get("handler", b"")
    kind = {b"vide": "video", b"soun": "audio"}.get(handler, handler.decode(errors="replace"))  # type: ignore[union-attr]
    codec_tag = found.get("codec", b"")
    codec = _CODECS.get(codec_tag, codec_tag.decode(errors="replace"))  # type: ignore[union-attr,arg-type]
    # The edit list (tkhd duration) is the presented length: it excludes the AAC priming samples.
    if "elst" in found:
        duration = int(found["elst"]) / movie_scale  # type: ignore[call-overload]
    elif "tkhd" in found:
        duration = int(found["tkhd"]) / movie_scale  # type: ignore[call-overload]
    else:
        scale, dur = found.get("mdhd", (1, 0))  # type: ignore[misc]
        duration = dur / scale
    return StreamInfo(kind, codec, float(duration), int(found.get("samples", 0)))  # type: ignore[call-overload]


def _add_ffmpeg_details(path: Path, info: ProbeInfo) -> None:
    """pix_fmt, size and fps are easiest read from ffmpeg's own description of the input."""
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    text = done.stderr.decode(errors="replace")
    m = re.search(r"Video: \w+.*?, (\w+)(?:\([^)]*\))?, (\d+)x(\d+)", text)
    if m:
        info.pix_fmt, info.width, info.height = m.group(1), int(m.group(2)), int(m.group(3))
    f = re.search(r"([\d.]+) fps", text)
    if f:
        info.fps = float(f.group(1))
