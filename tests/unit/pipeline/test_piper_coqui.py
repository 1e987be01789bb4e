"""Piper and Coqui XTTS glue: availability reasons, and the calls made into each package's API.

Neither package nor any voice model is installed in CI, so the packages are replaced by small
stand-in modules that record how they are called and return real audio arrays.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.tts.coqui import CoquiXTTS, xtts_language
from avatarbot.pipeline.tts.piper import PiperTTS
from tests.helpers.neural_fixtures import speech_like_audio


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


@pytest.fixture
def fake_piper(monkeypatch):
    calls: list[dict] = []

    @dataclass
    class SynthesisConfig:
        length_scale: float | None = None

    @dataclass
    class AudioChunk:
        sample_rate: int
        audio_float_array: np.ndarray

    class PiperVoice:
        def __init__(self, path, config_path):
            self.config = types.SimpleNamespace(sample_rate=22050)
            calls.append({"load": path, "config": config_path})

        @classmethod
        def load(cls, path, config_path=None):
            return cls(path, config_path)

        def synthesize(self, text, syn_config=None):
            calls.append({"text": text, "length_scale": syn_config.length_scale})
            yield AudioChunk(22050, np.full(1000, 0.1, np.float32))
            yield AudioChunk(22050, np.full(500, -0.1, np.float32))

    monkeypatch.setitem(
        sys.modules,
        "piper",
        _module("piper", PiperVoice=PiperVoice, SynthesisConfig=SynthesisConfig),
    )
    return calls


def test_piper_reasons_then_synthesis(tmp_path, monkeypatch, fake_piper):
    voices = tmp_path / "models" / "piper"
    tts = PiperTTS(None, voices_dir=voices)
    assert "missing piper voice model" in tts.availability().reason
    voices.mkdir(parents=True)
    (voices / "en_US-amy-medium.onnx").write_bytes(b"onnx")
    assert "missing piper voice config" in tts.availability().reason
    (voices / "en_US-amy-medium.onnx.json").write_text(json.dumps({"language": {"code": "en_US"}}))
    assert tts.availability().ok
    assert [(v.id, v.language) for v in tts.voices()] == [("en_US-amy-medium", "en_US")]
    result = tts.synthesize("hello", speed=2.0)
    assert result.sample_rate == 22050 and len(result.samples) == 1500
    assert result.voice == "en_US-amy-medium"
    assert fake_piper[1] == {"text": "hello", "length_scale": 0.5}
    with pytest.raises(InvalidInput, match="unknown piper voice"):
        tts.synthesize("hello", voice="de_DE-x")


def test_piper_without_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "piper", None)  # import and find_spec both fail
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    tts = PiperTTS(tmp_path / "v.onnx")
    assert "pip install piper-tts" in tts.availability().reason
    with pytest.raises(BackendUnavailable, match="piper-tts"):
        tts.synthesize("hi")


@pytest.fixture
def fake_tts(monkeypatch):
    calls: list[tuple] = []

    class XttsConfig:
        def load_json(self, path):
            calls.append(("config", path))

    class Xtts:
        @classmethod
        def init_from_config(cls, config):
            return cls()

        def load_checkpoint(self, config, checkpoint_dir, use_deepspeed):
            calls.append(("checkpoint", checkpoint_dir, use_deepspeed))

        def to(self, device):
            return self

        def eval(self):
            return self

        def get_conditioning_latents(self, audio_path):
            calls.append(("latents", tuple(audio_path)))
            return "gpt", "spk"

        def inference(self, text, language, gpt, spk, speed=1.0):
            calls.append(("inference", text, language, gpt, spk, speed))
            return {"wav": np.linspace(-0.5, 0.5, 4800, dtype=np.float32)}

    for name in ("TTS", "TTS.tts", "TTS.tts.configs", "TTS.tts.models"):
        monkeypatch.setitem(sys.modules, name, _module(name))
    monkeypatch.setitem(
        sys.modules, "TTS.tts.configs.xtts_config", _module("x", XttsConfig=XttsConfig)
    )
    monkeypatch.setitem(sys.modules, "TTS.tts.models.xtts", _module("y", Xtts=Xtts))
    return calls


def test_coqui_reasons_then_cloned_synthesis(tmp_path, fake_tts):
    model_dir = tmp_path / "models" / "coqui" / "xtts_v2"
    backend = CoquiXTTS.from_settings(tmp_path, tmp_path)
    assert "missing XTTS v2 model files" in backend.availability().reason
    model_dir.mkdir(parents=True)
    for name in ("model.pth", "config.json", "vocab.json"):
        (model_dir / name).write_bytes(b"{}")
    assert "no voice profile" in backend.availability().reason
    ref = tmp_path / "voices" / "ann" / "reference.wav"
    ref.parent.mkdir(parents=True)
    sf.write(ref, speech_like_audio(3.0, 22050), 22050)
    assert backend.availability().ok and [v.id for v in backend.voices()] == ["ann"]
    out = backend.synthesize("你好", voice="ann", language="zh", speed=1.1)
    out2 = backend.synthesize("again", language="en")
    assert out.sample_rate == 24000 and len(out.samples) == 4800 and out.voice == "ann"
    assert len(out2.samples) == 4800
    kinds = [c[0] for c in fake_tts]
    assert kinds == ["config", "checkpoint", "latents", "inference", "inference"]  # cached
    assert fake_tts[3][1:3] == ("你好", "zh-cn") and fake_tts[3][5] == 1.1
    with pytest.raises(InvalidInput, match="unknown voice profile"):
        backend.synthesize("x", voice="bob")


def test_xtts_language_mapping():
    assert xtts_language("zh-CN") == "zh-cn" and xtts_language("en_US") == "en"
    with pytest.raises(InvalidInput):
        xtts_language("xx")
