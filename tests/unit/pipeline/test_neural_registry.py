"""Neural backends in the stage registries and in the /health status map, without model files."""

from __future__ import annotations

import pytest

from avatarbot.config import Settings
from avatarbot.errors import BackendUnavailable
from avatarbot.pipeline import animators, enhancers, tts
from avatarbot.pipeline.neural import register_neural_backends
from avatarbot.pipeline.neural_status import neural_backend_status


def test_status_without_models_names_every_missing_piece(tmp_path):
    status = neural_backend_status(tmp_path)
    assert set(status) == {"wav2lip", "gfpgan", "sadtalker", "piper", "coqui_xtts", "openai_speech"}
    assert all(v.startswith("unavailable: ") for v in status.values())
    assert "models/wav2lip/wav2lip_gan.pth" in status["wav2lip"]
    assert "models/gfpgan/GFPGANv1.4.pth" in status["gfpgan"]
    assert "inference.py" in status["sadtalker"]
    assert "piper-tts" in status["piper"] or "piper voice" in status["piper"]
    assert "coqui-tts" in status["coqui_xtts"] or "XTTS" in status["coqui_xtts"]
    assert "openai_tts_base_url" in status["openai_speech"]


def test_status_reads_app_settings(tmp_path):
    settings = Settings(data_dir=tmp_path, pipeline={"openai_tts_base_url": "http://127.0.0.1:1"})
    assert neural_backend_status(settings)["openai_speech"] == "ok"
    commercial = Settings(data_dir=tmp_path, pipeline={"commercial_use": True})
    assert "non-commercial" in neural_backend_status(commercial)["wav2lip"]


@pytest.fixture
def registered(tmp_path):
    register_neural_backends(Settings(data_dir=tmp_path))
    yield tmp_path
    # Leave the registries as other tests expect: neural entries unavailable is harmless,
    # but drop them so each test file sees only the builtins.
    for module in (animators, enhancers):
        module._registry._entries = {
            k: v for k, v in module._registry._entries.items()
            if k not in {"wav2lip", "sadtalker", "gfpgan"}
        }  # fmt: skip
    tts._reset_registry_for_tests()


def test_auto_falls_back_to_cpu_defaults_and_named_requests_explain(registered):
    names = [n for n, _ in animators.list_animators()]
    assert names[:2] == ["sadtalker", "wav2lip"] and names[-1] == "procedural"
    assert animators.get_animator("auto").name == "procedural"
    with pytest.raises(BackendUnavailable, match=r"wav2lip_gan\.pth"):
        animators.get_animator("wav2lip")
    assert enhancers.get_enhancer("auto").name == "detail"
    with pytest.raises(BackendUnavailable, match=r"GFPGANv1\.4\.pth"):
        enhancers.get_enhancer("gfpgan")
    tts_names = [n for n, _ in tts.list_tts_backends()]
    assert tts_names[:3] == ["coqui", "piper", "openai"] and tts_names[-1] == "espeak"
    with pytest.raises(BackendUnavailable, match="openai_tts_base_url"):
        tts.get_tts_backend("openai")
