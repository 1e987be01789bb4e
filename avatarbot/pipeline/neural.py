"""Wire the neural backends into the stage registries.

Processes call it through the pipeline bootstrap (avatarbot.pipeline.bootstrap), which also
hands in the process's ModelManager so loaded networks live in its LRU:

    register_neural_backends(settings, model_cache=manager)   # or a DATA_DIR path

Factories are lazy: nothing heavy is imported until a backend is asked for, and each backend's
availability() names the missing file or package, so "auto" falls through to the CPU defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatarbot.pipeline.backend_settings import data_dir_of, pipeline_setting
from avatarbot.pipeline.neural_status import neural_backend_status

__all__ = ["neural_backend_status", "register_neural_backends"]


def _device(settings: Any) -> str:
    return str(pipeline_setting(settings, "device", "cpu"))


def register_neural_backends(settings_or_data_dir: Any, *, model_cache: Any = None) -> None:
    from avatarbot.pipeline.animators import register_animator
    from avatarbot.pipeline.enhancers import register_enhancer
    from avatarbot.pipeline.tts import register_tts_backend

    settings = settings_or_data_dir
    data_dir: Path = data_dir_of(settings)
    models = data_dir / "models"
    commercial = bool(pipeline_setting(settings, "commercial_use", False))

    def make_wav2lip() -> Any:
        from avatarbot.pipeline.animators.wav2lip import Wav2LipAnimator

        animator = Wav2LipAnimator(
            models,
            checkpoint=pipeline_setting(settings, "wav2lip_checkpoint"),
            device=_device(settings),
            model_cache=model_cache,
        )
        return (
            _LicenceGuard(animator, "Wav2Lip weights are non-commercial")
            if commercial
            else animator
        )

    def make_sadtalker() -> Any:
        from avatarbot.pipeline.animators.sadtalker import SadTalkerAnimator

        return SadTalkerAnimator.from_settings(settings, data_dir)

    def make_gfpgan() -> Any:
        from avatarbot.pipeline.enhancers.gfpgan import GFPGANEnhancer

        return GFPGANEnhancer(
            models,
            checkpoint=pipeline_setting(settings, "gfpgan_checkpoint"),
            device=_device(settings),
            model_cache=model_cache,
        )

    def make_piper() -> Any:
        from avatarbot.pipeline.tts.piper import PiperTTS

        return PiperTTS.from_settings(settings, data_dir)

    def make_coqui() -> Any:
        from avatarbot.pipeline.tts.coqui import CoquiXTTS

        backend = CoquiXTTS.from_settings(settings, data_dir)
        return _LicenceGuard(backend, "XTTS v2 (CPML) is non-commercial") if commercial else backend

    def make_openai() -> Any:
        from avatarbot.pipeline.tts.openai_speech import OpenAISpeechTTS

        return OpenAISpeechTTS.from_settings(settings)

    register_animator(make_sadtalker, name="sadtalker")
    register_animator(make_wav2lip, name="wav2lip")
    register_enhancer(make_gfpgan, name="gfpgan")
    register_tts_backend(make_coqui, name="coqui")
    register_tts_backend(make_piper, name="piper")
    register_tts_backend(make_openai, name="openai")


class _LicenceGuard:
    """Wraps a backend whose model licence forbids commercial use: never available."""

    def __init__(self, inner: Any, why: str) -> None:
        self._inner = inner
        self.name = inner.name
        self._why = why

    def availability(self) -> Any:
        from avatarbot.pipeline.types import Availability

        return Availability.no(f"{self._why} and this deployment is commercial (commercial_use)")

    def __getattr__(self, item: str) -> Any:
        return getattr(self._inner, item)
