"""Frames + audio -> MP4 (H.264 yuv420p + AAC, +faststart, 25 fps) with imageio-ffmpeg's ffmpeg.

Frames stream to ffmpeg's stdin as raw bgr24 from a writer thread, so drawing the next frame and
encoding the previous ones overlap. The audio is padded/trimmed to exactly n_frames / fps seconds
so the two streams end together. `probe()` reads the MP4 boxes directly (imageio-ffmpeg ships no
ffprobe): codecs, per-stream durations, frame count and whether moov precedes mdat.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatarbot.errors import AvatarbotError, Cancelled, InvalidInput
from avatarbot.pipeline.mp4info import ProbeInfo, StreamInfo, ffmpeg_exe, probe
from avatarbot.pipeline.types import FPS

__all__ = [
    "ProbeInfo",
    "StreamInfo",
    "decode_audio",
    "decode_frames",
    "encode_frames",
    "extract_cover",
    "ffmpeg_exe",
    "probe",
]

AUDIO_RATE = 48000  # AAC priming is 1024 samples: 21 ms at 48 kHz, well inside the 40 ms budget
AUDIO_BITRATE = 96_000


class EncodeError(AvatarbotError):
    code = "encode_failed"


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


# The default preset with the cheapest motion search: a third less encoder CPU for ~18 % more
# bytes at the same crf (a 10 s 512 px clip: 190 KB, not 160 KB), measured on talking portraits,
# whose motion is small. Denser presets, picked for a tight size budget, keep their own search.
_FAST_SEARCH: dict[str, tuple[str, ...]] = {"veryfast": ("-x264-params", "me=dia:subme=1")}


def encoder_threads() -> int:
    """x264 threads: leave a core to the animator, which renders the frames meanwhile (on two
    cores, a second x264 thread only takes time from it: the whole render is slower)."""
    return max(1, min(2, (os.cpu_count() or 2) - 1))


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
    threads: int = field(default_factory=lambda: encoder_threads())
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _queue: queue.Queue[np.ndarray | None] = field(
        default_factory=lambda: queue.Queue(maxsize=8), init=False
    )
    _writer: threading.Thread | None = field(default=None, init=False)
    _wav: str = field(default="", init=False)
    _error: BaseException | None = field(default=None, init=False)
    _part: Path = field(default=Path(), init=False)
    n_frames: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise InvalidInput("video width and height must be even")
        self.path = Path(self.path)
        # ffmpeg writes here and the file takes its name only when complete: a render killed
        # half-way (kill -9, OOM) leaves no playable-but-cut video under the name asked for.
        self._part = self.path.with_name(f".{self.path.stem}.{os.getpid()}.part.mp4")

    def __enter__(self) -> VideoEncoder:
        import soundfile as sf

        fd, self._wav = tempfile.mkstemp(suffix=".wav", prefix="avatarbot-")
        os.close(fd)
        sf.write(self._wav, np.clip(self.audio, -1, 1), self.sample_rate, subtype="PCM_16")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(self.path)
        cmd = [
            ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{self.width}x{self.height}",
            "-r", str(self.fps), "-i", "pipe:0", "-i", self._wav,
            "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "libx264", "-preset", self.preset, *_FAST_SEARCH.get(self.preset, ()),
            "-crf", str(self.crf),
            "-pix_fmt", "yuv420p", "-profile:v", "high", "-threads", str(self.threads),
            # The fast AAC coder: speech at 96 kb/s sounds the same, for half the audio CPU
            # (the default two-loop coder cost as much as the x264 encode of the picture).
            "-c:a", "aac", "-aac_coder", "fast", "-b:a", str(AUDIO_BITRATE),
            "-ar", str(AUDIO_RATE), "-ac", "1",
            "-movflags", "+faststart", "-f", "mp4", str(self._part),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._writer = threading.Thread(target=self._pump, name="ffmpeg-writer", daemon=True)
        self._writer.start()
        return self

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        import cv2

        try:
            while True:
                frame = self._queue.get()
                if frame is None:
                    break
                # BGR -> I420 here, on the writer thread (OpenCV releases the GIL), rather than in
                # ffmpeg's swscale: a third less encoder CPU, and it runs beside the animator.
                # OpenCV's I420 is BT.601 limited range, what swscale would have made.
                self._proc.stdin.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).data)
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
        self._queue.put(np.array(frame, copy=True, order="C"))  # the caller may reuse its buffer
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
            self._part.unlink(missing_ok=True)
            raise EncodeError(f"ffmpeg failed (exit {rc}): {err.strip()}")
        os.replace(self._part, self.path)

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._writer is not None and self._writer.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._writer.join(timeout=5)
        if self._proc is not None:
            self._proc.wait()
        self._part.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is not None:
                self.abort()
        finally:
            if self._wav:
                Path(self._wav).unlink(missing_ok=True)


def _remove_stale_parts(path: Path) -> None:
    """Part files of this output left by a render that was killed (its process is gone)."""
    for part in path.parent.glob(f".{glob.escape(path.stem)}.*.part.mp4"):
        pid = part.name[len(path.stem) + 2 : -len(".part.mp4")]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            part.unlink(missing_ok=True)
        except PermissionError:  # alive, someone else's
            continue


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
        if video_bps < 50_000:
            raise InvalidInput(f"the video cannot fit into {max_bytes} bytes")
        scale = 1.0
        if video_bps < 0.04 * width * height * FPS:  # too few bits for this size: downscale too
            scale = max(0.4, (video_bps / (0.04 * width * height * FPS)) ** 0.5)
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


def extract_cover(path: str | os.PathLike[str], at: str = "mid") -> bytes:
    """A JPEG of the first or middle frame (Feishu wants a cover image for video messages)."""
    info = probe(path)
    t = 0.0 if at == "first" else max(0.0, info.duration / 2)
    # A clip of a frame or two has no frame at its middle: then the first one.
    for start in dict.fromkeys((t, 0.0)):
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-ss", f"{start:.3f}",
            "-i", str(path), "-frames:v", "1", "-q:v", "3", "-f", "image2pipe",
            "-vcodec", "mjpeg", "pipe:1",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
        if done.returncode == 0 and done.stdout.startswith(b"\xff\xd8"):
            return done.stdout
    raise EncodeError(f"could not extract a cover: {done.stderr.decode(errors='replace')[-300:]}")


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
