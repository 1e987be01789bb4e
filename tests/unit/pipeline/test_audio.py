"""AudioPreprocessor with real ffmpeg: decoding formats, resampling, cleaning, quality, limits."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.audio import AudioPreprocessor, encode_audio, encode_audio_bytes
from avatarbot.pipeline.audio_io import ffmpeg_exe

SR = 16000


def _tone(seconds: float, freq: float = 440.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _snr_db(clean: np.ndarray, test: np.ndarray) -> float:
    n = min(len(clean), len(test))
    noise = test[:n] - clean[:n]
    return float(10 * np.log10(np.sum(clean[:n] ** 2) / np.sum(noise**2)))


@pytest.fixture(scope="module")
def speechlike_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    soundfile.write(path, _tone(2.0, sr=44100), 44100)
    return path


@pytest.mark.parametrize(
    ("ext", "args"),
    [
        ("mp3", ["-c:a", "libmp3lame"]),
        ("ogg", ["-c:a", "libopus"]),
        ("m4a", ["-c:a", "aac"]),
        ("amr", ["-c:a", "libopencore_amrnb", "-ar", "8000"]),
        ("flac", ["-c:a", "flac"]),
    ],
)
def test_load_common_formats(
    speechlike_wav: Path, tmp_path: Path, ext: str, args: list[str]
) -> None:
    out = tmp_path / f"clip.{ext}"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(speechlike_wav), *args, str(out)], check=True
    )
    pre = AudioPreprocessor(sample_rate=SR)
    audio, sr = pre.load_audio(out)
    assert sr == SR and audio.dtype == np.float32
    assert abs(len(audio) / sr - 2.0) < 0.15
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.fft.rfftfreq(len(audio), 1 / sr)[spectrum.argmax()]
    assert abs(peak_hz - 440) < 5  # it really is our tone
    again, _ = pre.load_audio_bytes(out.read_bytes(), filename=f"upload.{ext}")
    assert abs(len(again) - len(audio)) < 0.05 * SR


def test_bad_inputs_are_rejected(tmp_path: Path) -> None:
    pre = AudioPreprocessor(sample_rate=SR, max_seconds=5, max_bytes=200_000)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty"):
        pre.load_audio(empty)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(InvalidInput, match="could not decode"):
        pre.load_audio(junk)
    with pytest.raises(InvalidInput, match="not found"):
        pre.load_audio(tmp_path / "missing.wav")
    long = tmp_path / "long.ogg"
    encode_audio(_tone(8.0), SR, long)  # small file, too long
    with pytest.raises(InvalidInput, match=r"too long.*5 seconds"):
        pre.load_audio(long)
    big = tmp_path / "big.wav"
    soundfile.write(big, _tone(4.0), SR)
    big.write_bytes(big.read_bytes() + b"\0" * 200_000)  # over the 200 kB limit
    with pytest.raises(InvalidInput, match="too large"):
        pre.load_audio(big)
    with pytest.raises(InvalidInput, match="too large"):
        pre.load_audio_bytes(b"\0" * 300_000, "x.wav")
    with pytest.raises(InvalidInput, match="empty"):
        pre.load_audio_bytes(b"", "x.wav")


def test_video_without_audio_is_rejected(tmp_path: Path) -> None:
    video = tmp_path / "silent.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=1",
         "-c:v", "mpeg4", str(video)],
        check=True,
    )  # fmt: skip
    with pytest.raises(InvalidInput):
        AudioPreprocessor(sample_rate=SR).load_audio(video)


def test_resample_keeps_pitch_and_duration() -> None:
    tone = _tone(1.0, 1000.0, sr=44100)
    out = AudioPreprocessor.convert_sample_rate(tone, 44100, 16000)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.fft.rfftfreq(len(out), 1 / 16000)[spectrum.argmax()] - 1000) < 2


def test_normalize_reaches_target_and_limits_peak() -> None:
    quiet = _tone(1.0, amp=0.01)
    out = AudioPreprocessor.normalize_audio(quiet, target_db=-20)
    assert abs(20 * np.log10(np.sqrt(np.mean(out**2))) + 20) < 0.1
    spiky = quiet.copy()
    spiky[100] = 0.9  # a click would clip after the gain
    out = AudioPreprocessor.normalize_audio(spiky, target_db=-10)
    assert np.abs(out).max() <= 10 ** (-1 / 20) + 1e-6


def test_trim_removes_generated_silence() -> None:
    pre = AudioPreprocessor(sample_rate=SR)
    padded = np.concatenate([np.zeros(SR), _tone(1.0), np.zeros(2 * SR)])
    padded += np.random.default_rng(0).normal(0, 1e-4, padded.size).astype(np.float32)
    out = pre.trim_silence(padded)
    assert 1.0 <= len(out) / SR <= 1.25
    assert np.sqrt(np.mean(out[: int(0.05 * SR)] ** 2)) < 0.4  # starts right before the tone
    assert len(pre.trim_silence(np.zeros(SR, dtype=np.float32))) == 0


def test_denoise_improves_snr_on_noisy_tone() -> None:
    rng = np.random.default_rng(1)
    # Speech-like: tone bursts with gaps, so there are quiet frames to learn the noise from.
    clean = np.concatenate([_tone(0.5, 300), np.zeros(SR // 4, np.float32)] * 4) * 0.6
    noisy = clean + rng.normal(0, 0.05, clean.size).astype(np.float32)
    pre = AudioPreprocessor(sample_rate=SR)
    denoised = pre.reduce_noise(noisy, SR, 0.8)
    assert len(denoised) == len(noisy)
    before, after = _snr_db(clean, noisy), _snr_db(clean, denoised)
    assert after > before + 6, (before, after)
    q_before = pre.validate_audio_quality(noisy)
    q_after = pre.validate_audio_quality(denoised)
    assert q_after.snr_db > q_before.snr_db + 10


def test_quality_report() -> None:
    pre = AudioPreprocessor(sample_rate=SR)
    speech = np.concatenate([_tone(0.5), np.zeros(SR // 4, np.float32)] * 4)
    good = pre.validate_audio_quality(speech)
    assert good.ok and good.issues == [] and good.sample_rate == SR
    assert abs(good.duration_s - 3.0) < 0.01 and abs(good.peak - 0.5) < 0.01
    assert good.snr_db > 40 and good.clipping_ratio == 0
    clipped = pre.validate_audio_quality(np.clip(speech * 4, -1, 1))
    assert not clipped.ok and any("clipped" in issue for issue in clipped.issues)
    short = pre.validate_audio_quality(_tone(0.3))
    assert any("too short" in issue for issue in short.issues)
    silent = pre.validate_audio_quality(np.zeros(SR, np.float32))
    assert any("silent" in issue for issue in silent.issues)
    noisy = pre.validate_audio_quality(
        speech + np.random.default_rng(2).normal(0, 0.2, speech.size).astype(np.float32)
    )
    assert any("noisy" in issue for issue in noisy.issues)
    assert set(good.as_dict()) >= {"snr_db", "clipping_ratio", "duration_s", "sample_rate"}


def test_preprocess_pipeline(tmp_path: Path) -> None:
    src = tmp_path / "in.mp3"
    rng = np.random.default_rng(3)
    raw = np.concatenate([np.zeros(SR), _tone(1.5, amp=0.05), np.zeros(SR)])
    encode_audio(raw + rng.normal(0, 0.002, raw.size).astype(np.float32), SR, src)
    pre = AudioPreprocessor(sample_rate=22050)
    out, report = pre.preprocess(src, tmp_path / "clean.wav")
    data, sr = soundfile.read(out)
    assert sr == 22050 and 1.4 < len(data) / sr < 1.8
    assert abs(report["rms_db"] + 20) < 1.5 and report["ok"], report


@pytest.mark.parametrize(
    ("fmt", "rate"), [("wav", 22050), ("mp3", 22050), ("opus", 48000), ("amr", 8000)]
)
def test_encode_roundtrip(tmp_path: Path, fmt: str, rate: int) -> None:
    tone = _tone(1.0, 440, sr=22050)
    path = encode_audio(tone, 22050, tmp_path / f"x.{fmt}")
    assert path.stat().st_size > 100
    probe = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )
    assert f"{rate} Hz" in probe.stderr
    decoded, _ = AudioPreprocessor(sample_rate=16000).load_audio(path)
    assert abs(len(decoded) / 16000 - 1.0) < 0.1
    assert encode_audio_bytes(tone, 22050, fmt)[:2] != b""
    with pytest.raises(InvalidInput, match="unsupported audio format"):
        encode_audio(tone, 22050, tmp_path / "x.xyz")


def test_load_speech_for_audio_driven_video(speechlike_wav: Path, tmp_path: Path) -> None:
    speech = AudioPreprocessor(sample_rate=22050).load_speech(speechlike_wav)
    assert speech.sample_rate == 22050 and speech.phonemes == []
    assert abs(speech.duration - 2.0) < 0.01
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(InvalidInput, match="silent"):
        AudioPreprocessor().load_speech(silent)
