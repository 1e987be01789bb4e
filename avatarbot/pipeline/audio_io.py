"""Audio decoding and encoding through imageio-ffmpeg's static ffmpeg.

Decoding always goes to float32 mono PCM at the rate we ask for, read from a pipe, so any format
ffmpeg knows (wav, mp3, ogg/opus, m4a/aac, amr, flac, webm) loads the same way. Encoding covers
what the chat channels need: opus in ogg for Feishu voice messages, AMR-NB for WeCom, mp3 and wav.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.ffmpeg import ffmpeg_exe

DEFAULT_MAX_SECONDS = 600.0
DEFAULT_MAX_BYTES = 50 * 1024 * 1024

# format -> (ffmpeg muxer, codec args, forced sample rate or None)
ENCODINGS: dict[str, tuple[str, list[str], int | None]] = {
    "wav": ("wav", ["-c:a", "pcm_s16le"], None),
    "mp3": ("mp3", ["-c:a", "libmp3lame", "-b:a", "64k"], None),
    "opus": ("opus", ["-c:a", "libopus", "-b:a", "32k", "-application", "voip"], 48000),
    "ogg": ("ogg", ["-c:a", "libopus", "-b:a", "32k", "-application", "voip"], 48000),
    "amr": ("amr", ["-c:a", "libopencore_amrnb", "-b:a", "12.2k"], 8000),  # AMR-NB is 8 kHz only
    "m4a": ("ipod", ["-c:a", "aac", "-b:a", "64k"], None),
}
AUDIO_MIME_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "amr": "audio/amr",
    "m4a": "audio/mp4",
}


def temp_audio_path(suffix: str, prefix: str = "avatarbot-") -> Path:
    """A new empty temp file that the caller owns (and deletes)."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    os.close(fd)
    return Path(name)


def _last_error_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "unknown ffmpeg error"


def decode_audio_file(
    path: str | Path,
    sample_rate: int,
    *,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = 120.0,
) -> np.ndarray:
    """Decode any audio file to float32 mono at `sample_rate`; InvalidInput when unusable."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"audio file not found: {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise InvalidInput("audio file is empty")
    if size > max_bytes:
        raise InvalidInput(
            f"audio file is too large: {size / 1e6:.1f} MB, the limit is {max_bytes / 1e6:.0f} MB"
        )
    # Decode a little past the limit so that "too long" is detectable without decoding it all.
    cmd = [
        ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path),
        "-t", f"{max_seconds + 1.0:.3f}", "-vn", "-ac", "1", "-ar", str(int(sample_rate)),
        "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InvalidInput("audio decoding took too long") from exc
    if proc.returncode != 0:
        raise InvalidInput(f"could not decode audio: {_last_error_line(proc.stderr)}")
    usable = len(proc.stdout) // 4 * 4
    samples = np.frombuffer(proc.stdout[:usable], dtype="<f4").astype(np.float32)
    if samples.size == 0:
        raise InvalidInput("audio contains no sound stream or no samples")
    if samples.size / sample_rate > max_seconds:
        raise InvalidInput(f"audio is too long: the limit is {max_seconds:.0f} seconds")
    if not np.all(np.isfinite(samples)):
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return samples


def decode_audio_bytes(
    data: bytes,
    sample_rate: int,
    *,
    suffix: str = "",
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Decode audio held in memory (an upload). A temp file, because mp4/m4a needs seeking."""
    if not data:
        raise InvalidInput("audio file is empty")
    if len(data) > max_bytes:
        raise InvalidInput(
            f"audio file is too large: {len(data) / 1e6:.1f} MB, "
            f"the limit is {max_bytes / 1e6:.0f} MB"
        )
    safe_suffix = suffix if suffix.startswith(".") and suffix[1:].isalnum() else ""
    with tempfile.TemporaryDirectory(prefix="avatarbot-audio-") as tmp:
        path = Path(tmp) / f"upload{safe_suffix}"
        path.write_bytes(data)
        return decode_audio_file(path, sample_rate, max_seconds=max_seconds, max_bytes=max_bytes)


def _format_of(path: Path, fmt: str | None) -> str:
    name = (fmt or path.suffix.lstrip(".")).lower()
    if name not in ENCODINGS:
        raise InvalidInput(
            f"unsupported audio format {name!r}; use one of {', '.join(sorted(ENCODINGS))}"
        )
    return name


def encode_audio(
    samples: np.ndarray, sample_rate: int, path: str | Path, fmt: str | None = None
) -> Path:
    """Write float mono samples to `path` as wav/mp3/opus/ogg/amr/m4a (fmt, else the suffix)."""
    path = Path(path)
    name = _format_of(path, fmt)
    audio = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if audio.size == 0:
        raise InvalidInput("no audio samples to encode")
    path.parent.mkdir(parents=True, exist_ok=True)
    if name == "wav":
        import soundfile

        soundfile.write(str(path), audio, int(sample_rate), subtype="PCM_16", format="WAV")
        return path
    muxer, codec_args, forced_rate = ENCODINGS[name]
    cmd = [
        ffmpeg_exe(), "-v", "error", "-nostdin", "-y",
        "-f", "f32le", "-ar", str(int(sample_rate)), "-ac", "1", "-i", "pipe:0",
        *codec_args,
        *(["-ar", str(forced_rate)] if forced_rate else []),
        "-f", muxer, str(path),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, input=audio.astype("<f4").tobytes(), capture_output=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not encode {name}: {_last_error_line(proc.stderr)}")
    return path


def encode_audio_bytes(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Like encode_audio, but return the encoded file's bytes."""
    name = _format_of(Path(f"x.{fmt}"), fmt)
    with tempfile.TemporaryDirectory(prefix="avatarbot-enc-") as tmp:
        out = encode_audio(samples, sample_rate, Path(tmp) / f"audio.{name}", name)
        return out.read_bytes()


def convert_audio_file(
    input_path: str | Path, output_path: str | Path, fmt: str | None = None
) -> Path:
    """Transcode a file with ffmpeg (keeps its sample rate unless the format forces one)."""
    src, dst = Path(input_path), Path(output_path)
    name = _format_of(dst, fmt)
    if not src.is_file():
        raise InvalidInput(f"audio file not found: {src.name}")
    muxer, codec_args, forced_rate = ENCODINGS[name]
    cmd = [
        ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(src), "-vn", "-ac", "1",
        *codec_args, *(["-ar", str(forced_rate)] if forced_rate else []), "-f", muxer, str(dst),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise InvalidInput(f"could not convert audio: {_last_error_line(proc.stderr)}")
    return dst
