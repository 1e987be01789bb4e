"""Frames + audio -> MP4 (H.264 yuv420p + AAC, +faststart, 25 fps) with imageio-ffmpeg's ffmpeg.

Frames stream to ffmpeg's stdin as raw bgr24 from a writer thread, so drawing the next frame and
encoding the previous ones overlap. The audio is padded/trimmed to exactly n_frames / fps seconds
so the two streams end together. `probe()` reads the MP4 boxes directly (imageio-ffmpeg ships no
ffprobe): codecs, per-stream durations, frame count and whether moov precedes mdat.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatarbot.errors import AvatarbotError, Cancelled, InvalidInput
from avatarbot.pipeline.types import FPS

AUDIO_RATE = 48000  # AAC priming is 1024 samples: 21 ms at 48 kHz, well inside the 40 ms budget
AUDIO_BITRATE = 96_000


class EncodeError(AvatarbotError):
    code = "encode_failed"


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def pick_preset(width: int, height: int, duration: float, max_bytes: int | None) -> tuple[str, int]:
    """x264 (preset, crf): fast by default on 2 cores; slower, denser presets when the budget is tight."""
    if not max_bytes or duration <= 0:
        return "veryfast", 23
    bits_per_pixel = (max_bytes * 8 * 0.9 - AUDIO_BITRATE * duration) / (
        width * height * FPS * duration
    )
    if bits_per_pixel > 0.12:
        return "veryfast", 23
    if bits_per_pixel > 0.05:
        return "faster", 26
    return "medium", 28


def fit_audio(samples: np.ndarray, sample_rate: int, n_frames: int, fps: int = FPS) -> np.ndarray:
    """Pad with silence or trim so the audio lasts exactly n_frames / fps."""
    target = round(n_frames * sample_rate / fps)
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if len(samples) >= target:
        return samples[:target]
    return np.concatenate([samples, np.zeros(target - len(samples), dtype=np.float32)])


def frames_for(duration: float, fps: int = FPS) -> int:
    """Frame count covering `duration` (the last frame may run < 1 frame past the audio end)."""
    return max(1, int(np.ceil(duration * fps - 1e-6)))


@dataclass
class EncodeResult:
    path: Path
    n_frames: int
    size_bytes: int
    reencoded: bool = False


@dataclass
class VideoEncoder:
    """Context manager: `write(frame)` per frame, `finish()` to close; removes the file on error."""

    path: Path
    width: int
    height: int
    audio: np.ndarray
    sample_rate: int
    fps: int = FPS
    preset: str = "veryfast"
    crf: int = 23
    threads: int = 2
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _queue: queue.Queue[bytes | None] = field(
        default_factory=lambda: queue.Queue(maxsize=8), init=False
    )
    _writer: threading.Thread | None = field(default=None, init=False)
    _wav: str = field(default="", init=False)
    _error: BaseException | None = field(default=None, init=False)
    n_frames: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise InvalidInput("video width and height must be even")
        self.path = Path(self.path)

    def __enter__(self) -> VideoEncoder:
        import soundfile as sf

        fd, self._wav = tempfile.mkstemp(suffix=".wav", prefix="avatarbot-")
        os.close(fd)
        sf.write(self._wav, np.clip(self.audio, -1, 1), self.sample_rate, subtype="PCM_16")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{self.width}x{self.height}",
            "-r", str(self.fps), "-i", "pipe:0", "-i", self._wav,
            "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
            "-pix_fmt", "yuv420p", "-profile:v", "high", "-threads", str(self.threads),
            "-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-ar", str(AUDIO_RATE), "-ac", "1",
            "-movflags", "+faststart", "-f", "mp4", str(self.path),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._writer = threading.Thread(target=self._pump, name="ffmpeg-writer", daemon=True)
        self._writer.start()
        return self

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            while True:
                chunk = self._queue.get()
                if chunk is None:
                    break
                self._proc.stdin.write(chunk)
        except (BrokenPipeError, OSError) as exc:
            self._error = exc
            while self._queue.get() is not None:  # drain so the producer never blocks forever
                pass
        finally:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise EncodeError(f"ffmpeg stopped accepting frames: {self._stderr()}")
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise EncodeError(
                f"frame has shape {frame.shape}, expected {(self.height, self.width, 3)}"
            )
        self._queue.put(np.ascontiguousarray(frame).tobytes())
        self.n_frames += 1

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        try:
            return self._proc.stderr.read().decode(errors="replace")[-500:]
        except (OSError, ValueError):
            return ""

    def finish(self) -> None:
        self._queue.put(None)
        assert self._writer is not None and self._proc is not None
        self._writer.join()
        err = self._stderr()
        rc = self._proc.wait()
        if rc != 0 or self._error is not None:
            raise EncodeError(f"ffmpeg failed (exit {rc}): {err.strip()}")

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._writer is not None and self._writer.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._writer.join(timeout=5)
        if self._proc is not None:
            self._proc.wait()
        self.path.unlink(missing_ok=True)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is not None:
                self.abort()
        finally:
            if self._wav:
                Path(self._wav).unlink(missing_ok=True)


def shrink_to_fit(path: Path, max_bytes: int, duration: float) -> bool:
    """Re-encode `path` in place at a bitrate (and if needed a size) that fits max_bytes."""
    size = path.stat().st_size
    if size <= max_bytes:
        return False
    info = probe(path)
    width, height = info.width, info.height
    audio_bps = 48_000
    for attempt in range(3):
        video_bps = int((max_bytes * 8 * (0.92 - 0.08 * attempt)) / max(duration, 0.1)) - audio_bps
        scale = 1.0
        if video_bps < 0.04 * width * height * FPS:  # too few bits for this size: downscale too
            scale = max(0.4, (video_bps / (0.04 * width * height * FPS)) ** 0.5)
        if video_bps < 50_000:
            raise InvalidInput(f"the video cannot fit into {max_bytes} bytes")
        w2, h2 = int(width * scale) // 2 * 2, int(height * scale) // 2 * 2
        tmp = path.with_suffix(".fit.mp4")
        cmd = [
            ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", "-i", str(path),
            "-vf", f"scale={w2}:{h2}", "-c:v", "libx264", "-preset", "medium",
            "-b:v", str(video_bps), "-maxrate", str(video_bps), "-bufsize", str(video_bps),
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", str(audio_bps), "-ar", str(AUDIO_RATE),
            "-movflags", "+faststart", str(tmp),
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, check=False)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise EncodeError(f"re-encode failed: {done.stderr.decode(errors='replace')[-300:]}")
        if tmp.stat().st_size <= max_bytes:
            os.replace(tmp, path)
            return True
        tmp.unlink(missing_ok=True)
    raise InvalidInput(f"the video cannot fit into {max_bytes} bytes")


# ---- probing -----------------------------------------------------------------------------------


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


def extract_cover(path: str | os.PathLike[str], at: str = "mid") -> bytes:
    """A JPEG of the first or middle frame (Feishu wants a cover image for video messages)."""
    info = probe(path)
    t = 0.0 if at == "first" else max(0.0, info.duration / 2)
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-ss", f"{t:.3f}", "-i", str(path),
        "-frames:v", "1", "-q:v", "3", "-f", "image2pipe", "-vcodec", "mjpeg", "pipe:1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if done.returncode != 0 or not done.stdout.startswith(b"\xff\xd8"):
        raise EncodeError(
            f"could not extract a cover: {done.stderr.decode(errors='replace')[-300:]}"
        )
    return done.stdout


def encode_frames(
    frames,  # type: ignore[no-untyped-def]
    audio: np.ndarray,
    sample_rate: int,
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    n_frames: int,
    max_bytes: int | None = None,
    cancel_check=None,  # type: ignore[no-untyped-def]
) -> EncodeResult:
    """Encode an iterable of exactly n_frames BGR frames with audio fitted to n_frames / FPS."""
    duration = n_frames / FPS
    preset, crf = pick_preset(width, height, duration, max_bytes)
    fitted = fit_audio(audio, sample_rate, n_frames)
    out = Path(path)
    with VideoEncoder(out, width, height, fitted, sample_rate, preset=preset, crf=crf) as enc:
        for frame in frames:
            if cancel_check is not None and cancel_check():
                raise Cancelled("the render was cancelled")
            enc.write(frame)
        if enc.n_frames != n_frames:
            raise EncodeError(f"got {enc.n_frames} frames, expected {n_frames}")
        enc.finish()
    reencoded = shrink_to_fit(out, max_bytes, duration) if max_bytes else False
    return EncodeResult(out, n_frames, out.stat().st_size, reencoded)


def decode_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """All video frames of a file as (n, h, w, 3) uint8 BGR (for tests, previews and covers)."""
    info = probe(path)
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path),
        "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        raise EncodeError(
            f"could not decode {Path(path).name}: {done.stderr.decode(errors='replace')[-300:]}"
        )
    frame_bytes = info.width * info.height * 3
    n = len(done.stdout) // frame_bytes
    return np.frombuffer(done.stdout[: n * frame_bytes], dtype=np.uint8).reshape(
        n, info.height, info.width, 3
    )


def decode_audio(path: str | os.PathLike[str], sample_rate: int = 16000) -> np.ndarray:
    """The audio track as float32 mono."""
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn",
        "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=300)
    if done.returncode != 0:
        raise EncodeError(f"could not decode audio of {Path(path).name}")
    return np.frombuffer(done.stdout, dtype=np.float32).copy()
