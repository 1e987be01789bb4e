"""Loading the official Wav2Lip checkpoints.

Classic `wav2lip.pth` / `wav2lip_gan.pth`: a dict {state_dict, optimizer, global_step,
global_epoch} whose state_dict keys carry nn.DataParallel's `module.` prefix, saved in the
legacy (non-zip) format from `cuda:0`, so we always load with map_location="cpu".
Newer `Wav2Lip-SD-*.pt` links are TorchScript archives: detected and loaded with torch.jit.load.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput

MODULE_PREFIX = "module."


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips holding code/ and constants.pkl; torch.save zips are not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any(n.endswith("constants.pkl") for n in names) or any("/code/" in n for n in names)


def strip_module_prefix(state_dict: dict[str, Any]) -> dict[str, Any]:
    return {
        (k[len(MODULE_PREFIX) :] if k.startswith(MODULE_PREFIX) else k): v
        for k, v in state_dict.items()
    }


def extract_state_dict(obj: Any) -> dict[str, Any]:
    """Accept the official container, a bare state_dict, or a `params`-style wrapper."""
    if not isinstance(obj, dict):
        raise InvalidInput(f"Wav2Lip checkpoint is a {type(obj).__name__}, expected a dict")
    for key in ("state_dict", "params_ema", "params"):
        if key in obj and isinstance(obj[key], dict):
            return strip_module_prefix(obj[key])
    if all(isinstance(k, str) for k in obj) and any(k.endswith(".weight") for k in obj):
        return strip_module_prefix(obj)
    raise InvalidInput(
        f"Wav2Lip checkpoint has no 'state_dict' (top-level keys: {sorted(map(str, obj))[:6]})"
    )


def load_wav2lip(path: str | Path, device: str = "cpu") -> Any:
    """Return an eval-mode module taking (mel (B,1,80,16), face (B,6,96,96)) -> (B,3,96,96)."""
    import torch

    from avatarbot.pipeline.animators.wav2lip.network import Wav2Lip

    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"Wav2Lip checkpoint not found: {path}")
    if is_torchscript(path):
        # Wav2Lip-SD-*.pt: a scripted module with the same call signature, not a state_dict.
        module = torch.jit.load(str(path), map_location=device)
        module.eval()
        return module
    try:
        # weights_only: the file is data, never code; the legacy format loads fine this way.
        obj = torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:
        raise InvalidInput(f"cannot read Wav2Lip checkpoint {path.name}: {exc}") from exc
    state = extract_state_dict(obj)
    model = Wav2Lip()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InvalidInput(
            f"{path.name} is not a Wav2Lip generator checkpoint: "
            f"{len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    return model.to(device).eval()
