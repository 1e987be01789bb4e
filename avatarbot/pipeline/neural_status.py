"""One place that says which neural backends can run here, for /health and `models list`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from avatarbot.pipeline.backend_settings import data_dir_of as _data_dir_of
from avatarbot.pipeline.backend_settings import pipeline_setting
from avatarbot.pipeline.types import Availability

__all__ = ["NON_COMMERCIAL", "neural_backend_status", "pipeline_setting"]


def _probes(settings: Any, data_dir: Path) -> dict[str, Callable[[], Availability]]:
    models = data_dir / "models"

    def wav2lip() -> Availability:
        from avatarbot.pipeline.animators.wav2lip import Wav2LipAnimator

        return Wav2LipAnimator(
            models, checkpoint=pipeline_setting(settings, "wav2lip_checkpoint")
        ).availability()

    def gfpgan() -> Availability:
        from avatarbot.pipeline.enhancers.gfpgan import GFPGANEnhancer

        return GFPGANEnhancer(
            models, checkpoint=pipeline_setting(settings, "gfpgan_checkpoint")
        ).availability()

    def sadtalker() -> Availability:
        from avatarbot.pipeline.animators.sadtalker import SadTalkerAnimator

        return SadTalkerAnimator.from_settings(settings, data_dir).availability()

    def piper() -> Availability:
        from avatarbot.pipeline.tts.piper import PiperTTS

        return PiperTTS.from_settings(settings, data_dir).availability()

    def coqui() -> Availability:
        from avatarbot.pipeline.tts.coqui import CoquiXTTS

        return CoquiXTTS.from_settings(settings, data_dir).availability()

    def openai_speech() -> Availability:
        from avatarbot.pipeline.tts.openai_speech import OpenAISpeechTTS

        return OpenAISpeechTTS.from_settings(settings).availability()

    return {
        "wav2lip": wav2lip,
        "gfpgan": gfpgan,
        "sadtalker": sadtalker,
        "piper": piper,
        "coqui_xtts": coqui,
        "openai_speech": openai_speech,
    }


# Backends whose model licence forbids commercial use.
NON_COMMERCIAL = {"wav2lip": "Wav2Lip weights", "coqui_xtts": "XTTS v2 (CPML)"}


def neural_backend_status(settings_or_data_dir: Any) -> dict[str, str]:
    """name -> "ok" | "unavailable: <reason>" (never raises: a broken probe is reported)."""
    data_dir = _data_dir_of(settings_or_data_dir)
    commercial = bool(pipeline_setting(settings_or_data_dir, "commercial_use", False))
    out: dict[str, str] = {}
    for name, probe in _probes(settings_or_data_dir, data_dir).items():
        if commercial and name in NON_COMMERCIAL:
            out[name] = (
                f"unavailable: {NON_COMMERCIAL[name]} non-commercial, deployment is commercial"
            )
            continue
        try:
            avail = probe()
        except ImportError as exc:
            avail = Availability.no(f"backend module missing ({exc.name})")
        except Exception as exc:  # a status page must not crash on one bad backend
            avail = Availability.no(f"probe failed: {type(exc).__name__}: {exc}")
        out[name] = "ok" if avail.ok else f"unavailable: {avail.reason}"
    return out
