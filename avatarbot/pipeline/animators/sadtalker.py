"""SadTalker as an external installation, run as a subprocess.

SadTalker's code is GPL and heavy, so we never import it: the operator checks it out (with its
own virtualenv and checkpoints) and configures the paths. Contract, from SadTalker's CLI:

    <python> inference.py --driven_audio A.wav --source_image I.png --result_dir D
        --checkpoint_dir C [--enhancer gfpgan] [--still] [--preprocess full]

run with cwd = the checkout. It writes D/<timestamp>.mp4 (25 fps, 256/512 px face video with
audio) and reports progress as tqdm bars ("Face Renderer:  40%|..."), which we map to percent.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avatarbot.errors import BackendUnavailable, Cancelled, ExternalServiceError
from avatarbot.pipeline.types import AnimationJob, Availability, CancelCheck, ProgressCallback

# SadTalker's tqdm stage names -> (start %, end %) of our overall progress.
STAGES: tuple[tuple[str, float, float], ...] = (
    ("landmark det", 0, 10),
    ("3dmm extraction", 10, 20),
    ("mel", 20, 25),
    ("audio2exp", 25, 30),
    ("audio2pose", 25, 30),
    ("face renderer", 30, 85),
    ("seamlessclone", 85, 95),
    ("face enhancer", 85, 99),
)
_BAR = re.compile(r"([A-Za-z0-9 ]+?):+\s*(\d{1,3})%\|")
CHECKPOINT_PATTERNS = ("*.safetensors", "*.pth.tar", "*.pth")


def parse_progress(line: str) -> tuple[str, float] | None:
    """('face renderer', 47.5) for a tqdm line of a known stage, else None."""
    match = _BAR.search(line)
    if not match:
        return None
    label, pct = match.group(1).strip().lower(), min(100, int(match.group(2)))
    for stage, start, end in STAGES:
        if label.startswith(stage):
            return stage, start + (end - start) * pct / 100.0
    return None


@dataclass(frozen=True)
class SadTalkerConfig:
    checkout_dir: Path
    checkpoint_dir: Path
    python: str = sys.executable  # the interpreter of SadTalker's own virtualenv
    timeout_s: float = 1800.0
    size: int = 256
    preprocess: str = "full"  # keep the whole portrait, not only the face crop


def _apply_progress(on_progress: ProgressCallback | None, line: str) -> None:
    found = parse_progress(line) if on_progress else None
    if found and on_progress:
        on_progress("animate", found[1], f"sadtalker: {found[0]}")


class SadTalkerAnimator:
    name = "sadtalker"

    def __init__(self, config: SadTalkerConfig) -> None:
        self.config = config

    @classmethod
    def from_settings(cls, settings: Any, data_dir: str | Path) -> SadTalkerAnimator:
        from avatarbot.pipeline.backend_settings import pipeline_setting

        base = Path(data_dir) / "models" / "sadtalker"

        def get(name: str) -> Any:
            return pipeline_setting(settings, name)

        checkout = Path(get("sadtalker_dir") or base / "SadTalker")
        return cls(
            SadTalkerConfig(
                checkout_dir=checkout,
                checkpoint_dir=Path(get("sadtalker_checkpoint_dir") or checkout / "checkpoints"),
                python=str(get("sadtalker_python") or sys.executable),
            )
        )

    def availability(self) -> Availability:
        cfg = self.config
        if not (cfg.checkout_dir / "inference.py").is_file():
            return Availability.no(
                f"missing SadTalker checkout: {cfg.checkout_dir}/inference.py "
                "(git clone https://github.com/OpenTalker/SadTalker and set sadtalker_dir)"
            )
        if not cfg.checkpoint_dir.is_dir() or not any(
            next(cfg.checkpoint_dir.glob(p), None) for p in CHECKPOINT_PATTERNS
        ):
            return Availability.no(f"missing SadTalker checkpoints in {cfg.checkpoint_dir}")
        if not Path(cfg.python).exists():
            return Availability.no(f"SadTalker python not found: {cfg.python}")
        return Availability.yes()

    def command(
        self, audio: Path, image: Path, result_dir: Path, *, enhancer: str | None, still: bool
    ) -> list[str]:
        cfg = self.config
        cmd = [
            cfg.python, "inference.py",
            "--driven_audio", str(audio), "--source_image", str(image),
            "--result_dir", str(result_dir), "--checkpoint_dir", str(cfg.checkpoint_dir),
            "--size", str(cfg.size), "--preprocess", cfg.preprocess,
        ]  # fmt: skip
        if enhancer:
            cmd += ["--enhancer", enhancer]
        if still:
            cmd.append("--still")
        return cmd

    def run(
        self,
        audio: Path,
        image: Path,
        result_dir: Path,
        *,
        enhancer: str | None = None,
        still: bool = False,
        on_progress: ProgressCallback | None = None,
        cancelled: CancelCheck | None = None,
    ) -> Path:
        """Run inference.py; return the result MP4. Raises on timeout, failure or no output."""
        avail = self.availability()
        if not avail.ok:
            raise BackendUnavailable(f"sadtalker: {avail.reason}")
        result_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        proc = subprocess.Popen(
            self.command(audio, image, result_dir, enhancer=enhancer, still=still),
            cwd=self.config.checkout_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        tail: list[str] = []

        def pump() -> None:  # tqdm redraws with \r: split on both \r and \n
            assert proc.stdout is not None
            buf = b""
            while chunk := proc.stdout.read1(4096):
                buf += chunk
                *lines, buf = re.split(rb"[\r\n]", buf)
                for raw in lines:
                    line = raw.decode("utf-8", "replace").strip()
                    if line:
                        tail[:] = [*tail[-19:], line]
                        _apply_progress(on_progress, line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        deadline = started + self.config.timeout_s
        while proc.poll() is None:
            if cancelled and cancelled():
                proc.kill()
                proc.wait()
                raise Cancelled("sadtalker run cancelled")
            if time.time() > deadline:
                proc.kill()
                proc.wait()
                raise ExternalServiceError(
                    f"sadtalker timed out after {self.config.timeout_s:.0f} s"
                )
            time.sleep(0.05)
        reader.join(timeout=5)
        if proc.returncode != 0:
            raise ExternalServiceError(
                f"sadtalker exited with {proc.returncode}: {' | '.join(tail[-3:])[:500]}"
            )
        found = [p for p in result_dir.rglob("*.mp4") if p.stat().st_mtime >= started - 1]
        if not found:
            raise ExternalServiceError(f"sadtalker finished but wrote no .mp4 under {result_dir}")
        # The final video sits at the top level; intermediate ones live in sub-folders.
        return max(found, key=lambda p: (p.parent == result_dir, p.stat().st_mtime))

    def animate(self, job: AnimationJob) -> Iterator[np.ndarray]:
        """Yield job.track.n_frames BGR frames of the portrait's size from SadTalker's video."""
        import cv2
        import imageio_ffmpeg
        import soundfile as sf

        h, w = job.portrait_bgr.shape[:2]
        with tempfile.TemporaryDirectory(prefix="sadtalker-") as tmp:
            work = Path(tmp)
            cv2.imwrite(str(work / "portrait.png"), job.portrait_bgr)
            sf.write(work / "speech.wav", job.speech.samples, job.speech.sample_rate)
            mp4 = self.run(
                work / "speech.wav", work / "portrait.png", work / "out",
                still=not job.mode.moves_head,
            )  # fmt: skip
            reader = imageio_ffmpeg.read_frames(
                str(mp4), pix_fmt="bgr24", output_params=["-r", str(job.fps)]
            )
            meta = next(reader)
            fw, fh = meta["size"]
            last = None
            emitted = 0
            for raw in reader:
                if emitted >= job.track.n_frames:
                    break
                frame = np.frombuffer(raw, np.uint8).reshape(fh, fw, 3)
                last = cv2.resize(frame, (w, h)) if (fw, fh) != (w, h) else frame.copy()
                emitted += 1
                yield last
            reader.close()
        while emitted < job.track.n_frames:  # video a little short: hold the last frame
            emitted += 1
            yield last if last is not None else job.portrait_bgr.copy()
