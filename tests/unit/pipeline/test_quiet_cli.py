"""The CLI as typed: no mediapipe / TensorFlow Lite / absl log lines on the terminal, and every
command has the same backends as the server (the pipeline bootstrap)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from avatarbot.pipeline.native_logs import filter_noise, quiet_native_stderr
from tests.helpers.neural_fixtures import speech_like_audio

REPO = Path(__file__).resolve().parents[3]
NATIVE_CHATTER = re.compile(
    r"TensorFlow Lite|XNNPACK|absl|^[IWEF]\d{4} \d\d:|\.cc:\d+\]|inference_feedback|NORM_RECT",
    re.MULTILINE,
)


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
    env.update(
        AVATARBOT_DATA_DIR=str(tmp_path / "data"),
        AVATARBOT_CACHE_DIR=str(tmp_path / "cache"),  # empty: mediapipe really runs
        PYTHONPATH=str(REPO),
    )
    return env


def test_render_prints_no_native_log_lines(tmp_path: Path) -> None:
    audio = tmp_path / "short.wav"
    sf.write(audio, speech_like_audio(0.08), 22050)  # two frames: also a short-clip regression
    out = tmp_path / "out.mp4"
    run = subprocess.run(
        [sys.executable, "-m", "avatarbot", "render", "--audio", str(audio), "--size", "128",
         "--mode", "talking_head", "-o", str(out)],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 0
    assert any((tmp_path / "cache" / "face").iterdir()), "mediapipe did not analyse the portrait"
    assert "100%" in run.stderr  # the progress bar is ours and stays
    assert not NATIVE_CHATTER.search(run.stderr), run.stderr
    assert "talking_head: animator procedural" in run.stdout
    assert "sadtalker skipped: missing SadTalker checkout" in run.stdout


def test_voice_commands_see_the_neural_tts_backends(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "avatarbot", "voice", "backends"],
        cwd=tmp_path, env=cli_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    names = [line.split()[0] for line in run.stdout.splitlines() if line.strip()]
    assert names == ["coqui", "piper", "openai", "espeak"], run.stdout


def test_the_filter_drops_native_chatter_and_keeps_the_rest(capfd: pytest.CaptureFixture) -> None:
    chatter = (
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        b"W0000 00:00:1796283213.998892   14037 inference_feedback_manager.cc:114] Feedback\n"
    )
    assert filter_noise(chatter + b"error: real problem\n") == b"error: real problem\n"
    # A progress bar redrawn with "\r" may sit in front of a native line.
    assert filter_noise(b"\rbar 10%" + chatter) == b"\rbar 10%"
    with quiet_native_stderr():
        os.write(2, chatter)
        os.write(2, b"a line of ours\n")
    err = capfd.readouterr().err
    assert err == "a line of ours\n"


def test_agent_chat_renders_its_video_in_process(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    env.update(
        AVATARBOT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        AVATARBOT_AUTH__SECRET_KEY="cli-test-secret-0123456789abcdef0123",
        AVATARBOT_PIPELINE__VIDEO_SIZE="128",
    )
    run = subprocess.run(
        [sys.executable, "-m", "avatarbot", "agent", "chat", "make a video saying hi", "--wait"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # The video handler is there (the bootstrap registered it), and the render was quiet.
    assert re.search(r"-> completed \S+\.mp4", run.stdout), run.stdout
    assert not NATIVE_CHATTER.search(run.stderr), run.stderr


def test_commands_that_run_no_jobs_skip_the_database_layer(tmp_path: Path) -> None:
    """`render`, `voice` and `bench` bootstrap without the job handlers, whose database models
    (SQLAlchemy) are a third of a second of start-up; serve, worker and agent chat get them."""
    probe = (
        "import sys\n"
        "from avatarbot.pipeline.bootstrap import bootstrap_from_environment\n"
        "bootstrap_from_environment(jobs=False)\n"
        "from avatarbot.pipeline.animators import animator_names\n"
        "assert 'wav2lip' in animator_names()\n"
        "lean = sorted(m for m in ('sqlalchemy', 'httpx') if m in sys.modules)\n"
        "bootstrap_from_environment()\n"
        "from avatarbot.jobs.handlers import has_handler\n"
        "from avatarbot.storage.models import TaskType\n"
        "print(lean, has_handler(TaskType.VIDEO_GENERATION))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=cli_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] True"
