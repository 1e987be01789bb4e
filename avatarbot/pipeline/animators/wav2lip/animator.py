"""`Wav2LipAnimator`: the Animator stage backed by the Wav2Lip generator (torch or ONNX)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avatarbot.errors import BackendUnavailable
from avatarbot.pipeline.animators.wav2lip import face as facemod
from avatarbot.pipeline.animators.wav2lip.mel import mel_windows, melspectrogram, to_16k_mono
from avatarbot.pipeline.animators.wav2lip.runtime import Wav2LipRunner, load_runner
from avatarbot.pipeline.models import NetworkSlot
from avatarbot.pipeline.types import AnimationJob, Availability

# Preference order inside DATA_DIR/models/wav2lip/: GAN weights look sharper.
CHECKPOINT_NAMES = (
    "wav2lip_gan.pth",
    "wav2lip.pth",
    "wav2lip_gan.onnx",
    "wav2lip.onnx",
    "Wav2Lip-SD-GAN.pt",
    "Wav2Lip-SD-NOGAN.pt",
)


def _module_present(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


class Wav2LipAnimator:
    name = "wav2lip"

    def __init__(
        self,
        models_dir: str | Path,
        *,
        checkpoint: str | Path | None = None,
        runtime: str = "auto",  # auto | torch | onnx
        device: str = "cpu",
        batch_size: int = 32,
        face_box_fn: facemod.FaceBoxFn | None = None,
        model_cache: Any = None,  # a ModelManager: its LRU holds the loaded network
    ) -> None:
        self.models_dir = Path(models_dir)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.runtime = runtime
        self.device = device
        self.batch_size = batch_size
        self.face_box_fn = face_box_fn or facemod.default_face_box
        self._network = NetworkSlot(model_cache)

    def _candidates(self) -> list[Path]:
        if self.checkpoint is not None:
            return [self.checkpoint]
        paths = [self.models_dir / "wav2lip" / n for n in CHECKPOINT_NAMES]
        if self.runtime == "onnx":
            paths = [p for p in paths if p.suffix == ".onnx"]
        elif self.runtime == "torch":
            paths = [p for p in paths if p.suffix != ".onnx"]
        return paths

    def _usable(self, path: Path) -> str:
        """'' when this file can run here, else why not."""
        if not path.is_file():
            return f"missing {path}"
        if path.suffix == ".onnx":
            return "" if _module_present("onnxruntime") else "pip install onnxruntime"
        return "" if _module_present("torch") else "pip install torch (avatarbot[neural])"

    def resolve_checkpoint(self) -> Path | None:
        for path in self._candidates():
            if not self._usable(path):
                return path
        return None

    def availability(self) -> Availability:
        if self.resolve_checkpoint() is not None:
            return Availability.yes()
        present = [p for p in self._candidates() if p.is_file()]
        if present:
            return Availability.no(f"{present[0].name}: {self._usable(present[0])}")
        if self.checkpoint is not None:
            return Availability.no(f"missing {self.checkpoint}")
        names = " or ".join(p.name for p in self._candidates()[:3])
        return Availability.no(f"missing models/wav2lip/{names} (place the file by hand)")

    def runner(self) -> Wav2LipRunner:
        path = self.resolve_checkpoint()
        if path is None:
            raise BackendUnavailable(f"wav2lip: {self.availability().reason}")
        device = self._network.device(self.device)  # "auto": the ModelManager's pick
        return self._network.get(f"wav2lip:{path}", path, lambda: load_runner(path, device))

    def animate(self, job: AnimationJob) -> Iterator[np.ndarray]:
        n_frames = job.track.n_frames
        if n_frames == 0:
            return
        runner = self.runner()
        portrait = job.portrait_bgr
        coords = facemod.padded_crop_coords(self.face_box_fn(portrait), portrait.shape)
        y1, y2, x1, x2 = coords
        face = facemod.face_input(portrait[y1:y2, x1:x2])  # static portrait: one crop
        mask = facemod.feather_mask(y2 - y1, x2 - x1)
        wav = to_16k_mono(job.speech.samples, job.speech.sample_rate)
        windows = mel_windows(melspectrogram(wav), n_frames, job.fps)[:, None]  # (N,1,80,16)
        for start in range(0, n_frames, self.batch_size):
            mel = windows[start : start + self.batch_size]
            # A real (writable) batch: a 1-frame broadcast view is read-only, and torch warns.
            faces = np.repeat(face[None], len(mel), axis=0)
            preds = runner.predict(mel, faces)
            for pred in preds:
                yield facemod.paste_back(portrait, pred, coords, mask)
