"""SpeechResult -> MouthTrack: frame count, loudness tracking, closures, viseme shapes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from avatarbot.pipeline.tts.espeak import EspeakBackend
from avatarbot.pipeline.types import VISEMES, PhonemeEvent, SpeechResult, Viseme
from avatarbot.pipeline.visemes import (
    mouth_track,
    phoneme_visemes,
    rms_envelope,
    viseme_for_phoneme,
)

COL = {v: i for i, v in enumerate(VISEMES)}


@pytest.fixture(scope="module")
def speech() -> SpeechResult:
    return EspeakBackend().synthesize(
        "你好，欢迎使用数字人助手。Hello from avatarbot, my bumpy mom."
    )


@pytest.mark.parametrize(
    ("phoneme", "viseme"),
    [
        ("m", Viseme.MBP), ("b", Viseme.MBP), ("p", Viseme.MBP), ("f", Viseme.FV),
        ("v", Viseme.FV), ("w", Viseme.ROUND), ("u:", Viseme.ROUND), ("'oU", Viseme.ROUND),
        ("y", Viseme.ROUND), ("o-", Viseme.ROUND), ("i:", Viseme.SPREAD), ("'E", Viseme.SPREAD),
        ("iE", Viseme.SPREAD), ("a", Viseme.OPEN), ("A:", Viseme.OPEN), ("'Au", Viseme.OPEN),
        ("t", Viseme.MID), ("s.", Viseme.MID), ("tS;h", Viseme.MID), ("@", Viseme.MID),
        ("_", Viseme.REST), ("_:", Viseme.REST),
    ],
)  # fmt: skip
def test_phoneme_to_viseme(phoneme: str, viseme: Viseme) -> None:
    assert viseme_for_phoneme(phoneme) is viseme


def test_diphthongs_move_between_shapes() -> None:
    assert [v for v, _ in phoneme_visemes("ua")] == [Viseme.ROUND, Viseme.OPEN]
    assert [v for v, _ in phoneme_visemes("aI")] == [Viseme.OPEN, Viseme.SPREAD]
    assert abs(sum(f for _, f in phoneme_visemes("uai")) - 1.0) < 1e-9


def test_track_shape_and_frame_count(speech: SpeechResult) -> None:
    track = mouth_track(speech)
    assert track.fps == 25
    assert track.n_frames == round(speech.duration * 25)
    assert track.weights.shape == (track.n_frames, len(VISEMES))
    assert track.weights.dtype == np.float32 and track.openness.dtype == np.float32
    assert np.all(track.weights >= 0) and np.all(track.weights.sum(axis=1) <= 1.0 + 1e-5)
    assert np.all((track.openness >= 0) & (track.openness <= 1))


def test_openness_tracks_loudness(speech: SpeechResult) -> None:
    track = mouth_track(speech)
    rms = rms_envelope(speech.samples, speech.sample_rate, track.n_frames)
    assert np.corrcoef(rms, track.openness)[0, 1] > 0.8


def test_mbp_frames_are_closed(speech: SpeechResult) -> None:
    track = mouth_track(speech)
    mbp = [p for p in speech.phonemes if viseme_for_phoneme(p.phoneme) is Viseme.MBP]
    assert len(mbp) >= 4
    for p in mbp:
        frame = int((p.start + p.end) / 2 * 25)
        assert track.openness[frame] < 0.05, p
        assert track.weights[frame, COL[Viseme.MBP]] > 0.9


def test_silence_closes_the_mouth() -> None:
    base = EspeakBackend().synthesize("Hello there.")
    sr = base.sample_rate
    gap = np.zeros(int(0.5 * sr), dtype=np.float32)
    samples = np.concatenate([base.samples, gap, base.samples])
    shift = (len(base.samples) + len(gap)) / sr
    phonemes = [
        *base.phonemes,
        PhonemeEvent(base.duration, shift, "_"),
        *(PhonemeEvent(p.start + shift, p.end + shift, p.phoneme) for p in base.phonemes),
    ]
    speech = SpeechResult(samples, sr, phonemes, "en-us", "en-us")
    for with_phonemes in (True, False):
        track = mouth_track(speech if with_phonemes else replace(speech, phonemes=[]))
        silent = slice(int(np.ceil(base.duration * 25)) + 1, int(shift * 25) - 1)
        assert np.all(track.openness[silent] == 0.0)
        assert np.all(track.weights[silent, COL[Viseme.REST]] > 0.9)
        assert track.openness.max() > 0.5


def test_visemes_vary_with_text() -> None:
    """Spread vowels give SPREAD frames, rounded ones ROUND, open ones OPEN."""
    backend = EspeakBackend()
    for text, shape in (
        ("eeee see me", Viseme.SPREAD),
        ("oo who", Viseme.ROUND),
        ("ah ha", Viseme.OPEN),
    ):
        track = mouth_track(backend.synthesize(text))
        speaking = track.openness > 0.3
        assert speaking.any()
        mean = track.weights[speaking].mean(axis=0)
        assert mean[COL[shape]] == mean.max(), (
            text,
            dict(zip(VISEMES, mean.round(2), strict=True)),
        )


def test_anticipation_starts_shape_before_sound() -> None:
    speech = SpeechResult(
        np.full(25 * 882, 0.3, dtype=np.float32),  # 1 s of constant "sound" at 22050 Hz
        22050,
        [PhonemeEvent(0.0, 0.5, "t"), PhonemeEvent(0.5, 1.0, "u:")],
    )
    track = mouth_track(speech)
    # Frame 11 covers 0.44-0.48 s, before the /u:/: it already leans towards ROUND.
    assert track.weights[11, COL[Viseme.ROUND]] > 0.2
    assert track.weights[5, COL[Viseme.ROUND]] < 0.05


def test_audio_only_estimates_visemes(speech: SpeechResult) -> None:
    audio_only = replace(speech, phonemes=[])
    track = mouth_track(audio_only)
    assert track.n_frames == round(speech.duration * 25)
    speaking = track.openness > 0.2
    dominant = {VISEMES[i] for i in track.weights[speaking].argmax(axis=1)}
    assert len(dominant) >= 3  # not one shape throughout
    rms = rms_envelope(speech.samples, speech.sample_rate, track.n_frames)
    assert np.corrcoef(rms, track.openness)[0, 1] > 0.8


def test_audio_only_vowel_classes_from_synthetic_formants() -> None:
    """A two-formant buzz at /a/-like vs /i/-like vs /u/-like formants."""
    sr, n = 22050, 22050

    def vowel(f1: float, f2: float) -> np.ndarray:
        t = np.arange(n) / sr
        harmonics = np.arange(1, 40) * 120.0
        amp = np.exp(-(((harmonics - f1) / 120) ** 2)) + np.exp(-(((harmonics - f2) / 150) ** 2))
        x = (amp[:, None] * np.sin(2 * np.pi * harmonics[:, None] * t)).sum(axis=0)
        return (0.3 * x / np.abs(x).max()).astype(np.float32)

    for (f1, f2), shape in (
        ((800, 1200), Viseme.OPEN),
        ((300, 2300), Viseme.SPREAD),
        ((320, 800), Viseme.ROUND),
    ):
        track = mouth_track(SpeechResult(vowel(f1, f2), sr))
        mean = track.weights[3:-3].mean(axis=0)
        assert VISEMES[int(mean.argmax())] is shape, (f1, f2, mean.round(2))


def test_empty_audio_gives_one_rest_frame() -> None:
    track = mouth_track(SpeechResult(np.zeros(100, dtype=np.float32), 22050))
    assert track.n_frames == 1 and track.openness[0] == 0.0
