"""VoiceCloner: reference quality checks, profile files under DATA_DIR/voices, cloned synthesis."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avatarbot.errors import BackendUnavailable, InvalidInput, NotFound
from avatarbot.pipeline.types import SpeechResult
from avatarbot.pipeline.voice_clone import VoiceCloner, VoiceProfile
from tests.helpers.neural_fixtures import speech_like_audio

SR = 22050


def _wav_file(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, audio, sr)
    return path


class RecordingBackend:
    name = "fake-clone"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Path, str | None]] = []

    def synthesize_cloned(self, text, reference_wav, language, speed=1.0):
        self.calls.append((text, reference_wav, language))
        return SpeechResult(np.zeros(2400, np.float32), 24000, language=language or "")


def test_profile_from_two_recordings_is_stored_and_listed(tmp_path):
    cloner = VoiceCloner(tmp_path)
    a = _wav_file(tmp_path / "a.wav", speech_like_audio(2.5, SR))
    b = speech_like_audio(2.0, 16000)
    profile = cloner.create_profile([a, (b, 16000)], name="Ann", language="en", profile_id="ann")
    ref = tmp_path / "voices" / "ann" / "reference.wav"
    assert Path(profile.reference_path) == ref and ref.is_file()
    info = sf.info(ref)
    assert info.samplerate == SR and 3.0 <= info.duration <= 5.5
    assert profile.quality["ok"] and profile.quality["snr_db"] >= 15
    assert cloner.get_profile("ann") == profile
    assert [p.id for p in cloner.list_profiles()] == ["ann"]
    assert VoiceProfile.from_dict(profile.to_dict()) == profile
    assert cloner.delete_profile("ann") and not ref.exists()
    with pytest.raises(NotFound):
        cloner.get_profile("ann")


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (speech_like_audio(1.5, SR), "too short"),
        (np.concatenate([speech_like_audio(4.0, SR)] * 17), "too long"),
        (np.clip(speech_like_audio(4.0, SR) * 4, -1, 1), "clipped"),
        (
            (
                speech_like_audio(4.0, SR) * 0.1 + np.random.default_rng(0).normal(0, 0.1, 4 * SR)
            ).astype(np.float32),
            "noisy",
        ),
    ],
)
def test_bad_references_are_rejected_with_the_reason(tmp_path, audio, message):
    cloner = VoiceCloner(tmp_path)
    with pytest.raises(InvalidInput, match=message):
        cloner.create_profile([(audio.astype(np.float32), SR)], name="x")
    assert not (tmp_path / "voices").exists() or not any((tmp_path / "voices").iterdir())


def test_wav_bytes_input_and_cloned_synthesis(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, speech_like_audio(3.5, SR), SR, format="WAV")
    backend = RecordingBackend()
    cloner = VoiceCloner(tmp_path, backend=backend)
    profile = cloner.train([buf.getvalue()], name="Bob", language="de")
    wav = cloner.synthesize("Guten Tag", profile.id)
    data, sr = sf.read(io.BytesIO(wav))
    assert sr == 24000 and len(data) == 2400
    assert backend.calls == [("Guten Tag", Path(profile.reference_path), "de")]
    with pytest.raises(BackendUnavailable, match="coqui"):
        VoiceCloner(tmp_path).synthesize("x", profile)
    with pytest.raises(InvalidInput):
        cloner.create_profile([], name="none")
    with pytest.raises(InvalidInput, match="voice id"):
        cloner.create_profile([buf.getvalue()], name="x", profile_id="../evil")
