"""THE lip-sync quality test: measured on the rendered MP4 with mediapipe, independent of the animator.

Real espeak speech (English and Chinese, with a 600 ms pause spliced in), rendered in lipsync and
talking_head; the decoded frames and audio must show lips that follow the sound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarbot.pipeline import mux
from avatarbot.pipeline.generator import VideoGenerator
from avatarbot.pipeline.types import PhonemeEvent, SpeechResult
from tests.helpers.lipmetrics import measure_lips, rms_envelope, silent_runs

pytestmark = pytest.mark.slow

SENTENCES = {
    "en": ("Hello, my name is Ava. I will be your digital presenter today.",
           "Maybe we can talk about the weather, or my bubbly purple umbrella."),
    "zh": ("大家好，我是你们的数字人助手。", "今天天气很好，我们一起开始吧。"),
}  # fmt: skip
PAUSE_S = 0.6
RATE = 16000


def _spliced_speech(gen: VideoGenerator, first: str, second: str) -> SpeechResult:
    synth = gen._synthesizer()
    a = synth.synthesize_speech(first)
    b = synth.synthesize_speech(second, language=a.language or None)
    assert a.sample_rate == b.sample_rate
    gap = np.zeros(int(PAUSE_S * a.sample_rate), dtype=np.float32)
    offset = a.duration + PAUSE_S
    phonemes = list(a.phonemes) + [
        PhonemeEvent(p.start + offset, p.end + offset, p.phoneme) for p in b.phonemes
    ]
    samples = np.concatenate([a.samples, gap, b.samples]).astype(np.float32)
    return SpeechResult(samples, a.sample_rate, phonemes, a.language, a.voice)


@pytest.fixture(scope="module")
def generator() -> VideoGenerator:
    return VideoGenerator(size=512)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("mode", ["lipsync", "talking_head"])
def test_lips_follow_speech(
    generator: VideoGenerator, tmp_path: Path, lang: str, mode: str
) -> None:
    speech = _spliced_speech(generator, *SENTENCES[lang])
    result = generator.generate_from_speech(speech, output_path=tmp_path / "out.mp4", mode=mode)
    _check_lips(result.path, result.n_frames, speech.phonemes)


def test_lips_follow_audio_only_input(generator: VideoGenerator, tmp_path: Path) -> None:
    """No phoneme timings: visemes are estimated from the audio itself."""
    import soundfile as sf

    speech = _spliced_speech(generator, *SENTENCES["en"])
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech.samples, speech.sample_rate)
    result = generator.generate_from_audio(None, wav, tmp_path / "out.mp4", mode="talking_head")
    _check_lips(result.path, result.n_frames, [])


def _check_lips(path: Path, n_frames: int, phonemes: list[PhonemeEvent]) -> None:
    frames = mux.decode_frames(path)
    audio = mux.decode_audio(path, RATE)
    assert len(frames) == n_frames

    lips = measure_lips(frames)
    assert np.isnan(lips.gap).sum() == 0, "mediapipe lost the face in some frames"
    rms = rms_envelope(audio, RATE, len(frames))

    # 1. The lip opening follows loudness.
    corr = float(np.corrcoef(lips.gap, rms)[0, 1])
    assert corr >= 0.6, f"Pearson(inner-lip gap, RMS) = {corr:.3f}"

    # 2. Lips are closed during silences of 300 ms or more (the spliced pause at least).
    runs = silent_runs(rms, min_frames=8)
    assert runs, "expected the spliced pause to show up as silence"
    for start, end in runs:
        inner = lips.gap[start + 2 : end - 2]  # allow two frames of coarticulation at each edge
        assert inner.size and float(inner.max()) < 0.03, (
            f"mouth open in silence {start}-{end}: {inner.max():.3f}"
        )

    # 3. ... and on m/b/p (when the TTS told us where they are).
    closures = [
        lips.gap[int((p.start + p.end) / 2 * 25)]
        for p in phonemes
        if p.phoneme.strip("'`,:;") in {"m", "b", "p"} and (p.start + p.end) / 2 * 25 < len(frames)
    ]
    if phonemes:
        assert closures, "the sentences contain m/b/p"
        assert float(np.median(closures)) < 0.03, f"m/b/p gaps {np.round(closures, 3)}"

    # 4. Mouth width changes with the visemes, not only the jaw.
    loud = rms > 0.2 * np.percentile(rms, 90)
    cov = float(np.std(lips.width[loud]) / np.mean(lips.width[loud]))
    assert cov >= 0.05, f"lip-corner distance CoV = {cov:.3f}"

    # 5. The background outside the head never moves.
    first = lips.landmarks[0]
    assert first is not None
    x0, y0 = first.min(axis=0)
    x1, y1 = first.max(axis=0)
    fw, fh = x1 - x0, y1 - y0
    mask = np.ones(frames.shape[1:3], dtype=bool)
    mask[max(0, int(y0 - 1.0 * fh)) :, max(0, int(x0 - 0.6 * fw)) : int(x1 + 0.6 * fw)] = False
    assert mask.sum() > 0.15 * mask.size
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0))[:, mask]
    assert float(diffs.mean()) < 0.6, f"background moves: mean frame diff {diffs.mean():.2f}"
    assert float(np.percentile(diffs, 99.9)) <= 12
