"""GPU check: run the neural renders on a device and print Wav2Lip fps and GFPGAN ms per face.

    python -m avatarbot.pipeline.gpu_check                    # cuda, generated checkpoints
    python -m avatarbot.pipeline.gpu_check --device cpu --frames 8 --faces 1 --no-warmup
    scripts/gpu-check.sh                                      # the same, from a checkout

Without --models (or when that folder lacks the files) it writes checkpoints with random
weights in the official layouts (shared/model-manifests/: wav2lip_gan.pth as
{state_dict with "module." keys, optimizer, global_step, global_epoch}, GFPGANv1.4.pth as
{"params_ema": ...}, both in the legacy torch format) so the real loaders, networks and
the pipeline run end to end; the timings do not depend on the weights. The process is set up
by the pipeline bootstrap, like every other entry point.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

WAV2LIP_FILE = Path("wav2lip") / "wav2lip_gan.pth"
GFPGAN_FILE = Path("gfpgan") / "GFPGANv1.4.pth"


def write_official_checkpoints(models_dir: Path, *, seed: int = 0) -> Path:
    """Random-weight wav2lip_gan.pth and GFPGANv1.4.pth under models_dir, official layouts."""
    import torch

    from avatarbot.pipeline.animators.wav2lip.network import Wav2Lip
    from avatarbot.pipeline.enhancers.gfpgan.network import GFPGANv1Clean

    torch.manual_seed(seed)
    wav2lip = models_dir / WAV2LIP_FILE
    if not wav2lip.is_file():
        state = Wav2Lip().state_dict()
        first = next(iter(state))
        container = {
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            # torch 1.1-era Adam state: id()-int keys (trimmed to one parameter).
            "optimizer": {
                "state": {1: {"step": 1, "exp_avg": torch.zeros_like(state[first])}},
                "param_groups": [{"lr": 1e-4, "betas": (0.5, 0.999), "params": [1]}],
            },
            "global_step": 1,
            "global_epoch": 1,
        }
        _save_legacy(container, wav2lip)
    gfpgan = models_dir / GFPGAN_FILE
    if not gfpgan.is_file():
        net = GFPGANv1Clean()
        for name, module in net.named_modules():
            if name.endswith("modulation"):  # the official init: styles near identity
                module.bias.data.fill_(1.0)
        _save_legacy({"params_ema": net.state_dict()}, gfpgan)
    return models_dir


def _save_legacy(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part")
    torch.save(obj, part, _use_new_zipfile_serialization=False)
    part.replace(path)  # a reader never sees half a file


def _speech(seconds: float) -> Any:
    """Voiced syllables (120 Hz harmonics, 4 Hz envelope) as a SpeechResult."""
    from avatarbot.pipeline.types import SpeechResult

    rate = 16000
    t = np.arange(max(1, int(seconds * rate))) / rate
    phase = 2 * np.pi * 120.0 * t
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = 0.3 + 0.7 * np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None)
    samples = (0.5 * voiced * envelope / np.abs(voiced).max()).astype(np.float32)
    return SpeechResult(samples, rate, language="en")


def check_device(device: str) -> str:
    """The device name to report; SystemExit with a clear message when it is not usable."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("error: CUDA is not available here (try --device cpu)")
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    if device == "mps" and not torch.backends.mps.is_available():
        raise SystemExit("error: MPS is not available here (try --device cpu)")
    return device


def run_check(
    *,
    work: Path,
    device: str,
    models_dir: Path,
    frames: int,
    faces: int,
    size: int,
    warmup: bool,
) -> dict[str, Any]:
    """Two renders through the generator the server and workers use: lipsync (Wav2Lip) for
    the fps, enhanced_lipsync (Wav2Lip + GFPGAN on every frame) for the ms per face."""
    from avatarbot.config import Settings
    from avatarbot.pipeline import face as F
    from avatarbot.pipeline.bootstrap import bootstrap_pipeline
    from avatarbot.pipeline.generator import VideoGenerator
    from avatarbot.pipeline.types import FPS, Mode

    data_dir = work / "data"
    for rel in (WAV2LIP_FILE, GFPGAN_FILE):  # the models folder, linked, not copied
        (data_dir / "models" / rel).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / "models" / rel).symlink_to((models_dir / rel).resolve())
    runtime = bootstrap_pipeline(Settings(data_dir=data_dir, pipeline={"device": device}))
    report: dict[str, Any] = {"device": check_device(device)}
    gen = VideoGenerator(size=size, face_cache=F.FaceAnalysisCache(work / "face"))

    # The generator times each stage per frame; both networks hand back numpy arrays, so a
    # CUDA stage's time includes its kernels (the copy to the host waits for them).
    def render(mode: Mode, n_frames: int, name: str) -> Any:
        return gen.generate_from_speech(
            _speech(n_frames / FPS), output_path=work / f"{name}.mp4", mode=mode
        )

    if warmup:  # loads both networks and lets cuDNN pick its kernels
        render(Mode.ENHANCED_LIPSYNC, 2, "warmup")
    lipsync = render(Mode.LIPSYNC, frames, "lipsync")
    animate_s = lipsync.timings_ms["animate"] / 1000
    report["wav2lip_fps"] = round(lipsync.n_frames / max(animate_s, 1e-9), 1)
    report["wav2lip_frames"] = lipsync.n_frames
    enhanced = render(Mode.ENHANCED_LIPSYNC, faces, "enhanced")
    report["gfpgan_ms_per_face"] = round(enhanced.timings_ms["enhance"] / enhanced.n_frames, 1)
    report["gfpgan_faces"] = enhanced.n_frames
    total_s = enhanced.timings_ms["total"] / 1000
    report["render"] = {
        "mode": enhanced.mode.value,
        "animator": enhanced.animator,
        "enhancer": enhanced.enhancer,
        "seconds": round(enhanced.duration, 2),
        "size": f"{enhanced.width}x{enhanced.height}",
        "total_s": round(total_s, 2),
        "rtf": round(total_s / max(enhanced.duration, 1e-9), 2),
    }
    if lipsync.animator != "wav2lip" or enhanced.enhancer != "gfpgan":
        raise SystemExit(f"error: the neural backends did not run: {enhanced.skipped}")
    report["models_loaded"] = runtime.models.loaded_keys()
    report["model_loads"] = runtime.models.loads
    return report


def format_report(report: dict[str, Any]) -> str:
    render = report["render"]
    return "\n".join(
        [
            f"device:  {report['device']}",
            f"wav2lip: {report['wav2lip_fps']:.1f} fps ({report['wav2lip_frames']} frames, "
            "96x96 faces, pasted back)",
            f"gfpgan:  {report['gfpgan_ms_per_face']:.1f} ms per face "
            f"(512x512, {report['gfpgan_faces']} faces)",
            f"render:  {render['mode']} {render['seconds']:.2f} s at {render['size']} in "
            f"{render['total_s']:.2f} s (RTF {render['rtf']:.2f}), animator {render['animator']},"
            f" enhancer {render['enhancer']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gpu-check", description="Wav2Lip fps and GFPGAN ms per face on a device."
    )
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, mps or cpu")
    parser.add_argument(
        "--models", type=Path, default=None, help="folder with wav2lip/ and gfpgan/ (generated)"
    )
    parser.add_argument("--frames", type=int, default=250, help="frames of the Wav2Lip render")
    parser.add_argument(
        "--faces", type=int, default=100, help="frames of the Wav2Lip + GFPGAN render"
    )
    parser.add_argument("--size", type=int, default=512, help="video size (long side)")
    parser.add_argument("--no-warmup", action="store_true", help="time the first calls too")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.faces < 1:
        parser.error("--frames and --faces must be positive")
    try:
        import torch  # noqa: F401
    except ImportError:
        print("error: torch is not installed (pip install 'avatarbot[neural]')", file=sys.stderr)
        return 2
    check_device(args.device)
    needed = (WAV2LIP_FILE, GFPGAN_FILE)
    if args.models is not None and not all((args.models / rel).is_file() for rel in needed):
        missing = ", ".join(str(args.models / rel) for rel in needed)
        print(f"error: --models needs {missing}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="avatarbot-gpu-check-") as tmp:
        work = Path(tmp)
        models = args.models or write_official_checkpoints(work / "generated")
        report = run_check(
            work=work,
            device=args.device,
            models_dir=models,
            frames=args.frames,
            faces=args.faces,
            size=args.size,
            warmup=not args.no_warmup,
        )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
