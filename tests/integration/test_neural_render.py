"""Neural backends on generated checkpoints in the official layouts, through the front doors:
`avatarbot render --backend wav2lip --enhancer gfpgan` as typed, the process's ModelManager
sharing the loaded network between renders, and scripts/gpu-check.sh on the CPU.

GFPGAN restores a 512x512 face per frame, seconds each on a small CPU: its clips are 1 frame.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from tests.helpers.neural_fixtures import link_models, official_models, speech_like_audio

pytest.importorskip("torch")
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NATIVE_CHATTER = ("TensorFlow Lite", "absl", "W0000", "I0000", ".cc:", "Warning")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return official_models(tmp_path_factory)


def _env(data_dir: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
    env.update(
        AVATARBOT_DATA_DIR=str(data_dir),
        AVATARBOT_CACHE_DIR=str(cache),
        PYTHONPATH=str(REPO),
    )
    return env


def test_cli_render_with_wav2lip_and_gfpgan(models: Path, tmp_path: Path) -> None:
    from avatarbot.pipeline import mux

    data_dir = link_models(models, tmp_path / "data")
    audio = tmp_path / "one-frame.wav"
    sf.write(audio, speech_like_audio(0.04), 22050)
    out = tmp_path / "neural.mp4"
    run = subprocess.run(
        [sys.executable, "-m", "avatarbot", "render", "--audio", str(audio),
         "--mode", "enhanced_lipsync", "--backend", "wav2lip", "--enhancer", "gfpgan",
         "--size", "128", "-o", str(out)],
        cwd=tmp_path, env=_env(data_dir, tmp_path / "cache"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "enhanced_lipsync: animator wav2lip, enhancer gfpgan" in run.stdout, run.stdout
    info = mux.probe(out)
    assert info.stream("video") is not None and info.stream("audio") is not None
    assert not [w for w in NATIVE_CHATTER if w in run.stderr], run.stderr


def test_renders_share_the_loaded_network_through_the_model_manager(
    models: Path, tmp_path: Path
) -> None:
    from avatarbot.pipeline import face as F
    from avatarbot.pipeline.bootstrap import bootstrap_pipeline
    from avatarbot.pipeline.generator import VideoGenerator
    from avatarbot.pipeline.types import SpeechResult
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, pipeline={"device": "auto"})
    link_models(models, settings.data_dir)
    runtime = bootstrap_pipeline(settings)
    speech = SpeechResult(speech_like_audio(0.2), 22050)
    results = []
    for i in range(2):  # two tasks of this process, each with its own generator
        gen = VideoGenerator(size=128, face_cache=F.FaceAnalysisCache(tmp_path / "face"))
        results.append(
            gen.generate_from_speech(speech, output_path=tmp_path / f"{i}.mp4", mode="lipsync")
        )
    assert [r.animator for r in results] == ["wav2lip", "wav2lip"]  # the mode chose it
    assert results[0].skipped == {}
    manager = runtime.models
    assert manager.loads == 1 and manager.hits >= 1  # loaded once, then served from the LRU
    assert [k.split(":")[0] for k in manager.loaded_keys()] == ["wav2lip"]
    # Charged at what the network holds (manifest: 145,283,548 B of fp32 weights and
    # buffers), not at the file, whose optimizer state is never loaded.
    assert manager.get_cache_stats()["loaded_bytes"] == 145_283_548
    assert manager.known_device() in {"cpu", "cuda", "mps"}  # "auto", picked at first load


def test_gpu_check_script_runs_on_cpu(models: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu-check.sh"), "--device", "cpu", "--models",
         str(models), "--frames", "4", "--faces", "1", "--size", "128",
         "--no-warmup", "--json"],
        cwd=tmp_path, env={**_env(tmp_path / "unused", tmp_path / "cache"),
                           "PYTHON": sys.executable},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["device"] == "cpu" and report["wav2lip_frames"] == 4
    assert report["wav2lip_fps"] > 0 and report["gfpgan_ms_per_face"] > 0
    render = report["render"]
    assert (render["animator"], render["enhancer"]) == ("wav2lip", "gfpgan")
    # The timing runs and the full render shared one load of each network.
    assert report["model_loads"] == 2 and len(report["models_loaded"]) == 2
    print(f"gpu-check on cpu: {report}")
