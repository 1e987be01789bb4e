"""VoiceSynthesizer facade: arrays, files in every channel format, voices, options, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.audio import AudioPreprocessor
from avatarbot.pipeline.audio_io import ffmpeg_exe
from avatarbot.pipeline.synthesizer import VoiceSynthesizer


def test_synthesize_to_array_and_speech() -> None:
    synth = VoiceSynthesizer()
    assert synth.backend_name == "espeak"
    samples, sr = synth.synthesize_to_array("你好，世界。Hello world.")
    assert sr == 22050 and samples.dtype == np.float32 and len(samples) > sr
    speech = synth.synthesize_speech("Hello world.", language="en")
    assert speech.phonemes and speech.language == "en-us"


def test_synthesize_to_wav_file(tmp_path: Path) -> None:
    synth = VoiceSynthesizer(backend="espeak")
    path = synth.synthesize("Hello from avatarbot.", tmp_path / "hello.wav")
    data, sr = soundfile.read(path)
    assert sr == 22050 and 1.0 < len(data) / sr < 3.0
    assert np.abs(data).max() > 0.05


@pytest.mark.parametrize(("fmt", "codec"), [("mp3", "mp3"), ("opus", "opus"), ("amr", "amr_nb")])
def test_synthesize_to_channel_formats(tmp_path: Path, fmt: str, codec: str) -> None:
    path = VoiceSynthesizer().synthesize("测试语音消息。", tmp_path / f"msg.{fmt}")
    probe = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True, text=True
    )
    assert f"Audio: {codec}" in probe.stderr
    audio, _ = AudioPreprocessor(sample_rate=16000).load_audio(path)
    assert len(audio) > 8000


def test_temp_file_and_cleanup() -> None:
    synth = VoiceSynthesizer()
    path = Path(synth.synthesize("Temporary."))
    assert path.exists() and path.suffix == ".wav"
    synth.cleanup()
    assert not path.exists()
    with pytest.raises(BackendUnavailable):
        synth.synthesize("after cleanup")


def test_sample_rate_speed_pitch_defaults() -> None:
    text = "Speed and pitch options are remembered."
    normal = VoiceSynthesizer().synthesize_speech(text)
    fast = VoiceSynthesizer(speed=1.6, sample_rate=16000).synthesize_speech(text)
    assert fast.sample_rate == 16000
    assert fast.duration < 0.8 * normal.duration
    assert fast.phonemes[-1].end <= fast.duration + 1e-3


def test_list_voices_and_models() -> None:
    synth = VoiceSynthesizer()
    assert {"cmn"} <= {v.id for v in synth.list_voices("zh")}
    english = {v.id for v in synth.list_voices("en")}
    assert {"en-us", "en-gb"} <= english and "cmn" not in english
    assert len(synth.list_voices()) > 50
    assert VoiceSynthesizer.list_available_models() == ["espeak"]


def test_errors() -> None:
    with pytest.raises(InvalidInput, match="unknown TTS backend"):
        VoiceSynthesizer(backend="coqui-not-installed")
    synth = VoiceSynthesizer()
    with pytest.raises(InvalidInput):
        synth.synthesize_speech("  ")
    with pytest.raises(BackendUnavailable, match="cannot clone"):
        synth.synthesize_speech("hello", speaker_wav="/nonexistent/ref.wav")
