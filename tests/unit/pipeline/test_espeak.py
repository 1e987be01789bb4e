"""Real libespeak-ng synthesis: audio, phoneme timings, languages, errors, registry."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline import tts
from avatarbot.pipeline.tts.espeak import EspeakBackend
from avatarbot.pipeline.tts.text import detect_language, split_language_runs
from avatarbot.pipeline.types import Availability, SpeechResult, TTSBackend

MIXED = "你好，欢迎使用数字人助手。Hello from avatarbot."


@pytest.fixture(scope="module")
def backend() -> EspeakBackend:
    b = EspeakBackend()
    assert b.availability().ok, b.availability().reason
    return b


def _assert_sane_timings(speech: SpeechResult) -> None:
    assert speech.phonemes, "espeak must report phoneme events"
    starts = [p.start for p in speech.phonemes]
    assert starts == sorted(starts)
    for prev, cur in zip(speech.phonemes, speech.phonemes[1:], strict=False):
        assert cur.start >= prev.end - 1e-9  # no overlaps
    for p in speech.phonemes:
        assert 0.0 <= p.start < p.end <= speech.duration + 1e-6
    # The spoken phonemes (not pauses) should cover most of the audio that has sound.
    voiced = sum(p.end - p.start for p in speech.phonemes if not p.phoneme.startswith("_"))
    assert voiced > 0.5 * speech.duration


def test_backend_satisfies_protocol(backend: EspeakBackend) -> None:
    assert isinstance(backend, TTSBackend)


def test_english_synthesis_has_audio_and_phonemes(backend: EspeakBackend) -> None:
    speech = backend.synthesize("Hello from avatarbot, my bumpy friend.")
    assert speech.sample_rate == 22050
    assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1
    assert 1.0 < speech.duration < 5.0
    assert 0.05 < float(np.abs(speech.samples).max()) <= 1.0
    assert speech.language == "en-us"
    _assert_sane_timings(speech)
    names = [p.phoneme for p in speech.phonemes]
    assert "m" in names and "b" in names and "f" in names
    assert not any(n.startswith("'") for n in names)  # stress marks are stripped


def test_phoneme_times_match_the_audio(backend: EspeakBackend) -> None:
    """The pause after the comma must be quiet in the audio; a vowel must be loud."""
    speech = backend.synthesize("Mama, papa.")
    sr = speech.sample_rate
    loud_vowels = [p for p in speech.phonemes if p.phoneme.lstrip("'") in ("A:", "a", "a#", "V")]
    assert loud_vowels
    for v in loud_vowels:
        seg = speech.samples[int(v.start * sr) : int(v.end * sr)]
        assert float(np.sqrt(np.mean(seg**2))) > 0.02
    pauses = [p for p in speech.phonemes if p.phoneme.startswith("_") and p.end - p.start > 0.08]
    assert pauses, [p.phoneme for p in speech.phonemes]
    seg = speech.samples[int((pauses[0].start + 0.02) * sr) : int((pauses[0].end - 0.02) * sr)]
    assert float(np.sqrt(np.mean(seg**2))) < 0.01


def test_mandarin_synthesis(backend: EspeakBackend) -> None:
    speech = backend.synthesize("你好，欢迎使用数字人助手。")
    assert speech.language == "cmn"
    assert 1.5 < speech.duration < 6.0
    _assert_sane_timings(speech)
    names = {p.phoneme for p in speech.phonemes}
    assert {"n", "i"} <= names


def test_mixed_text_is_split_and_concatenated(backend: EspeakBackend) -> None:
    zh = backend.synthesize("你好，欢迎使用数字人助手。")
    en = backend.synthesize("Hello from avatarbot.")
    mixed = backend.synthesize(MIXED)
    assert mixed.language == "cmn+en-us"
    assert abs(mixed.duration - (zh.duration + en.duration)) < 0.3
    _assert_sane_timings(mixed)
    # English phonemes come after the Chinese audio ends.
    h_events = [p for p in mixed.phonemes if p.phoneme == "h"]
    assert h_events and h_events[0].start >= zh.duration - 0.01


def test_language_detection_and_runs() -> None:
    assert detect_language("你好") == "cmn"
    assert detect_language("Hello 123") == "en"
    assert split_language_runs(MIXED) == [
        ("cmn", "你好，欢迎使用数字人助手。"),
        ("en", "Hello from avatarbot."),
    ]
    assert split_language_runs("3个AI助手") == [("cmn", "3个"), ("en", "AI"), ("cmn", "助手")]


def test_explicit_language_and_voice(backend: EspeakBackend) -> None:
    assert backend.synthesize("Hello", language="en-gb").language == "en-gb"
    assert backend.synthesize("Hello", voice="English (America)").voice == "en-us"
    assert backend.synthesize("你好", language="zh").language == "cmn"
    with pytest.raises(InvalidInput, match="unknown voice"):
        backend.synthesize("Hello", voice="no-such-voice-x")


def test_speed_and_pitch_change_the_audio(backend: EspeakBackend) -> None:
    text = "This sentence is used to compare speaking rates."
    normal = backend.synthesize(text)
    fast = backend.synthesize(text, speed=1.8)
    assert fast.duration < 0.75 * normal.duration
    high = backend.synthesize(text, pitch=1.6)
    assert not np.array_equal(
        high.samples[: len(normal.samples)], normal.samples[: len(high.samples)]
    )
    with pytest.raises(InvalidInput, match="speed"):
        backend.synthesize(text, speed=10)


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_rejected(backend: EspeakBackend, text: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        backend.synthesize(text)


def test_too_long_text_rejected(backend: EspeakBackend) -> None:
    with pytest.raises(InvalidInput, match="5000"):
        backend.synthesize("字" * 20_000)


def test_voices_include_mandarin_and_english(backend: EspeakBackend) -> None:
    ids = {v.id for v in backend.voices()}
    assert {"cmn", "en-us", "en-gb"} <= ids
    assert all(v.backend == "espeak" for v in backend.voices())


def test_concurrent_calls_are_serialised(backend: EspeakBackend) -> None:
    results: dict[int, SpeechResult] = {}

    def work(i: int) -> None:
        results[i] = backend.synthesize("One two three." if i % 2 else "一二三。")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 6
    assert all(results[i].language == ("en-us" if i % 2 else "cmn") for i in range(6))
    # Same text, same phonemes: no call saw another call's audio or events.
    sequences = {tuple(p.phoneme for p in results[i].phonemes) for i in (1, 3, 5)}
    assert len(sequences) == 1
    # espeak's timing drifts by ~2 % depending on the voice used just before (its internal
    # speed state survives a voice switch), so durations are compared with that tolerance;
    # a garbled or interleaved call would differ far more.
    durations = [results[i].duration for i in (1, 3, 5)]
    assert max(durations) / min(durations) < 1.03


def test_registry_auto_and_errors() -> None:
    assert isinstance(tts.get_tts_backend(), EspeakBackend)
    assert isinstance(tts.get_tts_backend("espeak"), EspeakBackend)
    names = [name for name, _ in tts.list_tts_backends()]
    assert "espeak" in names
    with pytest.raises(InvalidInput, match="unknown TTS backend 'nope'"):
        tts.get_tts_backend("nope")


def test_registry_priority_and_unavailable_backend() -> None:
    class Broken:
        name = "fancy"

        def availability(self) -> Availability:
            return Availability.no("fancy: model file /models/fancy.onnx is missing")

    class Preferred(EspeakBackend):
        name = "preferred"

    try:
        tts.register_tts_backend(Broken, priority=1)
        tts.register_tts_backend(Preferred, priority=5)
        assert tts.get_tts_backend().name == "preferred"  # broken one skipped
        with pytest.raises(BackendUnavailable, match=r"fancy\.onnx is missing"):
            tts.get_tts_backend("fancy")
        avail = dict(tts.list_tts_backends())
        assert not avail["fancy"].ok and avail["espeak"].ok
        assert [n for n, _ in tts.list_tts_backends()][:2] == ["fancy", "preferred"]
        built = tts.get_tts_backend("preferred")
        assert tts.get_tts_backend("preferred") is built  # cached
        tts.forget_tts_instances()
        assert tts.get_tts_backend("preferred") is not built
    finally:
        tts._reset_registry_for_tests()
    assert tts.get_tts_backend().name == "espeak"


def test_text_cleanup_and_other_scripts(backend: EspeakBackend) -> None:
    # A NUL must not cut the text short; fullwidth letters are read as a word, not spelled.
    assert backend.synthesize("one\x00two three").duration > backend.synthesize("one").duration
    fullwidth = backend.synthesize("Ｈｅｌｌｏ")
    assert fullwidth.language == "en-us"
    assert abs(fullwidth.duration - backend.synthesize("Hello").duration) < 0.05
    assert backend.synthesize("Привет мир").language == "ru"
    assert split_language_runs("안녕 hello") == [("ko", "안녕 "), ("en", "hello")]
    with pytest.raises(InvalidInput, match="nothing speakable"):
        backend.synthesize("。。。")
