"""Wav2Lip lip-sync animator (torch or ONNX Runtime). torch/onnxruntime load lazily."""

from __future__ import annotations

from avatarbot.pipeline.animators.wav2lip.animator import CHECKPOINT_NAMES, Wav2LipAnimator

__all__ = ["CHECKPOINT_NAMES", "Wav2LipAnimator"]
