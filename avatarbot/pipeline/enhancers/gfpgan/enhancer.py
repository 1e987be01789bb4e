"""`GFPGANEnhancer`: restores the face region of a frame with GFPGAN v1.4 (torch or ONNX)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from avatarbot.errors import BackendUnavailable
from avatarbot.pipeline.enhancers.gfpgan.runtime import FACE_SIZE, GFPGANRunner, load_runner
from avatarbot.pipeline.models import NetworkSlot
from avatarbot.pipeline.types import Availability

CHECKPOINT_NAMES = ("GFPGANv1.4.pth", "GFPGANv1.3.pth", "GFPGANv1.4.onnx")
# GFPGAN was trained on FFHQ-aligned crops where the face fills roughly the central 60%:
# grow the detector's tight box so hair, chin and background border come along.
CONTEXT_SCALE = 1.6


def square_crop(
    box: tuple[int, int, int, int], shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) square around the box centre, CONTEXT_SCALE larger, clamped to the frame."""
    fh, fw = shape[:2]
    x, y, w, h = box
    side = int(max(w, h) * CONTEXT_SCALE)
    side = max(8, min(side, fw, fh))
    cx, cy = x + w / 2.0, y + h / 2.0
    x1 = round(min(max(cx - side / 2, 0), fw - side))
    y1 = round(min(max(cy - side / 2, 0), fh - side))
    return x1, y1, x1 + side, y1 + side


def to_input(crop_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 crop -> (1,3,512,512) RGB float32 in [-1,1] (img2tensor + normalize(0.5, 0.5))."""
    import cv2

    face = cv2.resize(crop_bgr, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_LINEAR)
    rgb = face[:, :, ::-1].astype(np.float32) / 255.0
    return ((rgb - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


def to_bgr_uint8(output: np.ndarray) -> np.ndarray:
    """(1,3,512,512) RGB [-1,1] -> (512,512,3) BGR uint8 (tensor2img with min_max=(-1,1))."""
    img = (np.clip(output[0], -1.0, 1.0) + 1.0) / 2.0
    return np.round(img.transpose(1, 2, 0)[:, :, ::-1] * 255.0).astype(np.uint8)


def round_feather(size: int) -> np.ndarray:
    """(size, size, 1) weight: 1 in the middle, smooth fall-off to 0 at the square's edge."""
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    radius = np.sqrt(coords[None, :] ** 2 + coords[:, None] ** 2)
    weight = np.clip((1.0 - radius) / 0.25, 0.0, 1.0)  # flat core, 25%-radius ramp
    return (weight * weight * (3 - 2 * weight))[:, :, None]  # smoothstep


class GFPGANEnhancer:
    name = "gfpgan"

    def __init__(
        self,
        models_dir: str | Path,
        *,
        checkpoint: str | Path | None = None,
        runtime: str = "auto",  # auto | torch | onnx
        device: str = "cpu",
        strength: float = 1.0,  # 1 = fully restored face, 0 = original
        model_cache: Any = None,  # a ModelManager: its LRU holds the loaded network
    ) -> None:
        self.models_dir = Path(models_dir)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.runtime, self.device, self.strength = runtime, device, float(strength)
        self._network = NetworkSlot(model_cache)

    def _candidates(self) -> list[Path]:
        if self.checkpoint is not None:
            return [self.checkpoint]
        paths = [self.models_dir / "gfpgan" / n for n in CHECKPOINT_NAMES]
        if self.runtime == "onnx":
            return [p for p in paths if p.suffix == ".onnx"]
        if self.runtime == "torch":
            return [p for p in paths if p.suffix != ".onnx"]
        return paths

    @staticmethod
    def _missing_package(path: Path) -> str:
        package = "onnxruntime" if path.suffix == ".onnx" else "torch"
        return "" if importlib.util.find_spec(package) else f"pip install {package}"

    def resolve_checkpoint(self) -> Path | None:
        for path in self._candidates():
            if path.is_file() and not self._missing_package(path):
                return path
        return None

    def availability(self) -> Availability:
        if self.resolve_checkpoint() is not None:
            return Availability.yes()
        present = [p for p in self._candidates() if p.is_file()]
        if present:
            return Availability.no(f"{present[0].name}: {self._missing_package(present[0])}")
        where = self.checkpoint or f"models/gfpgan/{self._candidates()[0].name}"
        return Availability.no(f"missing {where} (place the file by hand)")

    def runner(self) -> GFPGANRunner:
        path = self.resolve_checkpoint()
        if path is None:
            raise BackendUnavailable(f"gfpgan: {self.availability().reason}")
        device = self._network.device(self.device)  # "auto": the ModelManager's pick
        return self._network.get(f"gfpgan:{path}", path, lambda: load_runner(path, device))

    def enhance(self, frame_bgr: np.ndarray, face_box: tuple[int, int, int, int]) -> np.ndarray:
        import cv2

        x1, y1, x2, y2 = square_crop(face_box, frame_bgr.shape)
        crop = frame_bgr[y1:y2, x1:x2]
        restored = to_bgr_uint8(self.runner().restore(to_input(crop)))
        restored = cv2.resize(restored, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
        weight = round_feather(x2 - x1) * self.strength
        out = frame_bgr.copy()
        blended = weight * restored.astype(np.float32) + (1.0 - weight) * crop.astype(np.float32)
        out[y1:y2, x1:x2] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out
