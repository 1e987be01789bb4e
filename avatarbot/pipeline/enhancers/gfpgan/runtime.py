"""GFPGAN checkpoint loading and the torch / ONNX Runtime runners (one 512x512 face per call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avatarbot.errors import InvalidInput

FACE_SIZE = 512


class GFPGANRunner(Protocol):
    def restore(self, face: np.ndarray) -> np.ndarray:
        """(1,3,512,512) float32 RGB in [-1,1] -> same shape, unclamped."""
        ...


def load_gfpgan(path: str | Path, device: str = "cpu") -> Any:
    """GFPGANv1Clean from the official {"params_ema": state_dict} (or {"params": ...}) file."""
    import torch

    from avatarbot.pipeline.enhancers.gfpgan.network import GFPGANv1Clean

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"GFPGAN checkpoint not found: {path}")
    try:
        obj = torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:
        raise InvalidInput(f"cannot read GFPGAN checkpoint {path.name}: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidInput(f"GFPGAN checkpoint is a {type(obj).__name__}, expected a dict")
    key = "params_ema" if "params_ema" in obj else "params" if "params" in obj else None
    state = obj[key] if key else obj
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = GFPGANv1Clean()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InvalidInput(
            f"{path.name} is not a GFPGAN v1.3/v1.4 (clean) checkpoint: {len(missing)} missing "
            f"keys (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    return model.to(device).eval()


class TorchGFPGAN:
    def __init__(self, module: Any, device: str = "cpu") -> None:
        self.module, self.device = module, device

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> TorchGFPGAN:
        return cls(load_gfpgan(path, device), device)

    def restore(self, face: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(face)).to(self.device))
        return out.float().cpu().numpy()


class OnnxGFPGAN:
    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(path), opts, providers=providers or ort.get_available_providers()
        )
        self.input_name = self.session.get_inputs()[0].name

    def restore(self, face: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: face.astype(np.float32)})[0]


def export_onnx(module: Any, path: str | Path, opset: int = 17) -> Path:
    """Export with the stored noise maps (deterministic), batch 1 like the official inference."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        module.eval(),
        (torch.zeros(1, 3, FACE_SIZE, FACE_SIZE),),
        str(path),
        input_names=["input"],
        output_names=["output"],
        opset_version=opset,
        dynamo=False,  # the TorchScript exporter needs no onnxscript
    )
    return path


def load_runner(path: str | Path, device: str = "cpu") -> GFPGANRunner:
    path = Path(path)
    if path.suffix == ".onnx":
        return OnnxGFPGAN(path, ["CPUExecutionProvider"] if device == "cpu" else None)
    return TorchGFPGAN.from_checkpoint(path, device)
