"""SadTalker subprocess contract, exercised with a stand-in inference.py that really writes an MP4."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from avatarbot.errors import BackendUnavailable, ExternalServiceError
from avatarbot.pipeline.animators.sadtalker import (
    SadTalkerAnimator,
    SadTalkerConfig,
    parse_progress,
)
from avatarbot.pipeline.types import VISEMES, AnimationJob, Mode, MouthTrack, SpeechResult
from tests.helpers.neural_fixtures import drawn_portrait, speech_like_audio

FAKE_INFERENCE = textwrap.dedent(
    """
    import argparse, json, os, subprocess, sys, time
    p = argparse.ArgumentParser()
    for a in ("--driven_audio", "--source_image", "--result_dir", "--checkpoint_dir",
              "--size", "--preprocess", "--enhancer"):
        p.add_argument(a)
    p.add_argument("--still", action="store_true")
    args = p.parse_args()
    if os.environ.get("FAKE_FAIL"):
        print("RuntimeError: CUDA out of memory", flush=True); sys.exit(3)
    json.dump(vars(args), open(os.path.join(os.path.dirname(__file__), "args.json"), "w"))
    for pct in (0, 50, 100):
        sys.stderr.write(f"\\rFace Renderer:: {pct:3d}%|####| {pct}/100"); sys.stderr.flush()
    sys.stderr.write("\\n")
    if os.environ.get("FAKE_SLEEP"):
        time.sleep(float(os.environ["FAKE_SLEEP"]))
    os.makedirs(os.path.join(args.result_dir, "tmp"), exist_ok=True)
    out = os.path.join(args.result_dir, time.strftime("%Y_%m_%d_%H.%M.%S") + ".mp4")
    subprocess.run([os.environ["FFMPEG"], "-y", "-loglevel", "error", "-loop", "1",
                    "-i", args.source_image, "-i", args.driven_audio, "-vf", "scale=128:160",
                    "-r", "25", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast",
                    "-shortest", out], check=True)
    print("The generated video is named:", out, flush=True)
    """
)


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    import imageio_ffmpeg

    root = tmp_path / "SadTalker"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "SadTalker_V0.0.2_256.safetensors").write_bytes(b"x")
    (root / "inference.py").write_text(FAKE_INFERENCE)
    monkeypatch.setenv("FFMPEG", imageio_ffmpeg.get_ffmpeg_exe())
    return root


def _animator(root: Path, timeout: float = 120) -> SadTalkerAnimator:
    cfg = SadTalkerConfig(root, root / "checkpoints", python=sys.executable, timeout_s=timeout)
    return SadTalkerAnimator(cfg)


def test_progress_lines_are_mapped_to_percent():
    assert parse_progress("Face Renderer::  50%|#####     | 5/10") == ("face renderer", 57.5)
    assert parse_progress("3DMM Extraction In Video:: 100%|##| 1/1")[1] == 20
    assert parse_progress("random log line") is None


def test_availability_names_what_is_missing(tmp_path, checkout):
    reason = _animator(tmp_path / "nowhere").availability().reason
    assert "inference.py" in reason and "sadtalker_dir" in reason
    (checkout / "checkpoints" / "SadTalker_V0.0.2_256.safetensors").unlink()
    assert "checkpoints" in _animator(checkout).availability().reason
    settings_default = SadTalkerAnimator.from_settings(tmp_path, tmp_path)
    assert str(tmp_path / "models" / "sadtalker") in settings_default.availability().reason


@pytest.mark.slow
def test_animate_runs_the_stand_in_and_returns_portrait_sized_frames(checkout, tmp_path):
    sr = 16000
    audio = speech_like_audio(1.0, sr)
    n = 25
    job = AnimationJob(
        portrait_bgr=drawn_portrait(200, 240),
        speech=SpeechResult(audio, sr),
        track=MouthTrack(25, np.zeros((n, len(VISEMES)), np.float32), np.zeros(n, np.float32)),
        mode=Mode.LIPSYNC,
    )
    animator = _animator(checkout)
    assert animator.availability().ok
    frames = list(animator.animate(job))
    assert len(frames) == n
    assert all(f.shape == (240, 200, 3) and f.dtype == np.uint8 for f in frames)
    args = json.loads((checkout / "args.json").read_text())
    assert args["still"] is True and args["preprocess"] == "full"
    assert args["checkpoint_dir"] == str(checkout / "checkpoints")


@pytest.mark.slow
def test_run_reports_progress_and_finds_the_video(checkout, tmp_path):
    import cv2
    import soundfile as sf

    cv2.imwrite(str(tmp_path / "p.png"), drawn_portrait())
    sf.write(tmp_path / "a.wav", speech_like_audio(0.5, 16000), 16000)
    events: list[tuple[str, float, str]] = []
    mp4 = _animator(checkout).run(
        tmp_path / "a.wav",
        tmp_path / "p.png",
        tmp_path / "results",
        enhancer="gfpgan",
        on_progress=lambda *e: events.append(e),
    )
    assert mp4.parent == tmp_path / "results" and mp4.stat().st_size > 0
    assert [round(p) for _, p, _ in events] == [30, 58, 85]


def test_failure_and_timeout_are_clear_errors(checkout, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "1")
    with pytest.raises(
        ExternalServiceError, match="exited with 3: RuntimeError: CUDA out of memory"
    ):
        _animator(checkout).run(tmp_path / "a.wav", tmp_path / "p.png", tmp_path / "r")
    monkeypatch.delenv("FAKE_FAIL")
    monkeypatch.setenv("FAKE_SLEEP", "30")
    with pytest.raises(ExternalServiceError, match="timed out"):
        _animator(checkout, timeout=1.0).run(tmp_path / "a.wav", tmp_path / "p.png", tmp_path / "r")
    with pytest.raises(BackendUnavailable):
        _animator(tmp_path / "missing").run(tmp_path / "a.wav", tmp_path / "p.png", tmp_path / "r")
