"""GFPGAN v1.4 face restoration enhancer (torch or ONNX Runtime), loaded lazily."""

from __future__ import annotations

from avatarbot.pipeline.enhancers.gfpgan.enhancer import CHECKPOINT_NAMES, GFPGANEnhancer

__all__ = ["CHECKPOINT_NAMES", "GFPGANEnhancer"]
