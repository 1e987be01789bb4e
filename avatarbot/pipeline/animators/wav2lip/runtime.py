"""Run the Wav2Lip generator with torch or ONNX Runtime behind one numpy interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

ONNX_INPUTS = ("mel", "face")
ONNX_OUTPUT = "pred"


class Wav2LipRunner(Protocol):
    def predict(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        """mel (B,1,80,16), face (B,6,96,96) float32 -> (B,3,96,96) float32 in [0,1] BGR."""
        ...


class TorchWav2Lip:
    def __init__(self, module: Any, device: str = "cpu") -> None:
        self.module = module
        self.device = device

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> TorchWav2Lip:
        from avatarbot.pipeline.animators.wav2lip.checkpoint import load_wav2lip

        return cls(load_wav2lip(path, device), device)

    def predict(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.module(
                torch.from_numpy(np.ascontiguousarray(mel)).to(self.device),
                torch.from_numpy(np.ascontiguousarray(face)).to(self.device),
            )
        return out.float().cpu().numpy()


class OnnxWav2Lip:
    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(path), opts, providers=providers or ort.get_available_providers()
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    def predict(self, mel: np.ndarray, face: np.ndarray) -> np.ndarray:
        arrays = (mel.astype(np.float32), face.astype(np.float32))
        feeds = dict(zip(self.input_names, arrays, strict=True))
        return self.session.run(None, feeds)[0]


def export_onnx(module: Any, path: str | Path, opset: int = 17) -> Path:
    """Export an eval-mode Wav2Lip module to ONNX with a dynamic batch axis."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    example = (torch.zeros(2, 1, 80, 16), torch.zeros(2, 6, 96, 96))
    torch.onnx.export(
        module,
        example,
        str(path),
        input_names=list(ONNX_INPUTS),
        output_names=[ONNX_OUTPUT],
        dynamic_axes={"mel": {0: "batch"}, "face": {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
        opset_version=opset,
        dynamo=False,  # the TorchScript exporter needs no onnxscript
    )
    return path


def load_runner(path: str | Path, device: str = "cpu") -> Wav2LipRunner:
    path = Path(path)
    if path.suffix == ".onnx":
        providers = None if device != "cpu" else ["CPUExecutionProvider"]
        return OnnxWav2Lip(path, providers)
    return TorchWav2Lip.from_checkpoint(path, device)
