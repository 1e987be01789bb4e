"""Generated inputs for the neural-backend tests: a drawn face, speech-like audio, MP4 writing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

MANIFESTS = Path("/work/shared/model-manifests")


def manifest_tensors(name: str) -> dict[str, dict]:
    """Key -> {shape, dtype, kind}, from the manifest copy shipped with the tests."""
    local = Path(__file__).parent / "manifests" / name
    path = local if local.is_file() else MANIFESTS / name
    return json.loads(path.read_text())["tensors"]


def drawn_portrait(width: int = 256, height: int = 320) -> np.ndarray:
    """A BGR head-and-shoulders cartoon: skin ellipse, eyes, brows, mouth on a grey background."""
    import cv2

    img = np.full((height, width, 3), (180, 170, 160), np.uint8)
    cx, cy = width // 2, int(height * 0.42)
    cv2.ellipse(img, (cx, height), (width // 2, height // 4), 0, 180, 360, (90, 60, 40), -1)
    cv2.ellipse(img, (cx, cy), (width // 4, int(height * 0.2)), 0, 0, 360, (140, 170, 215), -1)
    for dx in (-1, 1):
        ex = cx + dx * width // 10
        cv2.circle(img, (ex, cy - height // 20), 6, (40, 30, 30), -1)
        cv2.line(img, (ex - 10, cy - height // 12), (ex + 10, cy - height // 12), (50, 40, 40), 3)
    cv2.ellipse(img, (cx, cy + height // 9), (width // 14, 6), 0, 0, 360, (70, 60, 170), -1)
    return img


def speech_like_audio(seconds: float = 1.2, sample_rate: int = 22050) -> np.ndarray:
    """Voiced syllables: 120 Hz harmonic series, formant-ish weights, 4 Hz syllable envelope."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120.0 * (1 + 0.05 * np.sin(2 * np.pi * 1.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k * (1.5 if 5 <= k <= 7 else 1.0) for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 0.6
    rng = np.random.default_rng(0)
    audio = 0.3 * voiced * envelope + 0.005 * rng.standard_normal(t.size)
    return (audio / np.abs(audio).max() * 0.8).astype(np.float32)


def write_mp4(frames: list[np.ndarray], audio: np.ndarray, sample_rate: int, path: Path, fps: int):
    """Mux BGR frames + float audio into an H.264/AAC MP4 with the bundled ffmpeg."""
    import imageio_ffmpeg
    import soundfile as sf

    wav = path.with_suffix(".wav")
    sf.write(wav, audio, sample_rate)
    h, w = frames[0].shape[:2]
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
        "-i", str(wav), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
        "-c:a", "aac", "-shortest", str(path),
    ]  # fmt: skip
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True, timeout=120)
    return path


def official_models(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """wav2lip/wav2lip_gan.pth and gfpgan/GFPGANv1.4.pth in the official layouts (random
    weights), written once per test session and shared by the tests that link them."""
    from avatarbot.pipeline.gpu_check import write_official_checkpoints

    return write_official_checkpoints(tmp_path_factory.getbasetemp() / "official-models")


def link_models(models: Path, data_dir: Path) -> Path:
    """DATA_DIR/models/<backend> -> the shared generated checkpoints (no 500 MB copies)."""
    target = data_dir / "models"
    target.mkdir(parents=True, exist_ok=True)
    for backend in ("wav2lip", "gfpgan"):
        (target / backend).symlink_to(models / backend, target_is_directory=True)
    return data_dir
