from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avatarbot.errors import Cancelled, InvalidInput
from avatarbot.pipeline import face as F
from avatarbot.pipeline import mux
from avatarbot.pipeline.generator import VideoGenerator


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> VideoGenerator:
    cache = F.FaceAnalysisCache(tmp_path_factory.mktemp("face-cache"))
    return VideoGenerator(size=256, face_cache=cache, output_dir=tmp_path_factory.mktemp("videos"))


def test_text_to_mp4_with_progress_stages(gen: VideoGenerator, tmp_path: Path) -> None:
    events: list[tuple[str, float, str]] = []
    out = tmp_path / "hello.mp4"
    result = gen.generate_from_text(
        "你好，欢迎使用数字人助手。Hello from avatarbot.", output_path=out, mode="talking_head",
        progress=lambda s, p, m: events.append((s, p, m)),
    )  # fmt: skip
    assert result.path == out and out.exists() and str(result) == str(out)
    info = mux.probe(out)
    assert info.faststart and info.pix_fmt == "yuv420p" and max(info.width, info.height) == 256
    v, a = info.stream("video"), info.stream("audio")
    assert v is not None and a is not None and abs(v.duration - a.duration) <= 0.04
    assert abs(result.duration - v.duration) < 1e-3 and v.samples == result.n_frames
    stages = [s for s, _, _ in events]
    for stage in ("tts", "analyse", "animate", "encode"):
        assert stage in stages
    percents = [p for _, p, _ in events]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert set(result.timings_ms) >= {"tts", "analyse", "animate", "enhance", "encode", "total"}
    assert result.animator == "procedural" and result.enhancer == "none"
    # The cover is taken from the middle frame while rendering: what ffmpeg decodes there.
    import cv2

    assert result.cover_jpeg is not None and result.cover_jpeg.startswith(b"\xff\xd8")
    cover = cv2.imdecode(np.frombuffer(result.cover_jpeg, np.uint8), cv2.IMREAD_COLOR)
    middle = mux.decode_frames(out)[result.n_frames // 2]
    assert cover.shape == middle.shape
    assert np.abs(cover.astype(int) - middle.astype(int)).mean() < 4


def test_enhanced_mode_uses_the_cpu_enhancer(gen: VideoGenerator, tmp_path: Path) -> None:
    result = gen.generate_from_text(
        "Hello.", output_path=tmp_path / "e.mp4", mode="enhanced_lipsync"
    )
    assert result.enhancer == "detail" and result.timings_ms["enhance"] > 0
    none = gen.generate_from_text(
        "Hello.", output_path=tmp_path / "n.mp4", mode="enhanced_lipsync", enhancer="none"
    )
    assert none.enhancer == "none"


def test_cancel_mid_render_leaves_no_file(gen: VideoGenerator, tmp_path: Path) -> None:
    out = tmp_path / "cancelled.mp4"
    polls = {"n": 0}

    def cancel() -> bool:
        polls["n"] += 1
        return polls["n"] > 10

    with pytest.raises(Cancelled):
        gen.generate_from_text(
            "This sentence is long enough to be cancelled halfway through.",
            output_path=out,
            cancel_check=cancel,
        )
    assert polls["n"] > 10 and not out.exists()


def test_bad_inputs_are_invalid_input(gen: VideoGenerator, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        gen.generate_from_text("   ")
    with pytest.raises(InvalidInput, match="too long"):
        gen.generate_from_text("字" * 20000)
    with pytest.raises(InvalidInput, match="mode"):
        gen.generate_from_text("hi", mode="dance")
    noface = tmp_path / "noface.png"
    from PIL import Image

    Image.fromarray(np.full((200, 200, 3), 120, np.uint8)).save(noface)
    with pytest.raises(InvalidInput, match="no face"):
        gen.generate_from_text("hi", noface, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio" * 10)
    with pytest.raises(InvalidInput):
        gen.generate_from_audio(None, junk, tmp_path / "y.mp4")


def test_audio_to_mp4(gen: VideoGenerator, tmp_path: Path) -> None:
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    envelope = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    wav = tmp_path / "in.wav"
    sf.write(wav, 0.4 * envelope * np.sign(np.sin(2 * np.pi * 150 * t)), rate)
    result = gen.generate_from_audio(None, wav, tmp_path / "a.mp4", mode="lipsync")
    info = mux.probe(result.path)
    assert abs(info.duration - 1.5) <= 0.04 and info.stream("audio") is not None


def test_cli_render_and_clean_errors(tmp_path: Path) -> None:
    from avatarbot.cli import app

    runner = CliRunner()
    out = tmp_path / "cli.mp4"
    ok = runner.invoke(
        app, ["render", "--text", "Hello there.", "--size", "256", "-q", "-o", str(out)]
    )
    assert ok.exit_code == 0, ok.output
    assert out.exists() and mux.probe(out).faststart
    bad = runner.invoke(app, ["render", "--text", "", "-o", str(tmp_path / "b.mp4")])
    assert bad.exit_code == 2 and "empty" in bad.output
    both = runner.invoke(app, ["render", "-o", str(tmp_path / "c.mp4")])
    assert both.exit_code == 2
    # sadtalker is registered in every process (the pipeline bootstrap): without its checkout
    # it is unavailable, and the message says what is missing; it is not an unknown name.
    missing = runner.invoke(
        app,
        ["render", "--text", "hi", "--backend", "sadtalker", "-q", "-o", str(tmp_path / "d.mp4")],
        env={"AVATARBOT_DATA_DIR": str(tmp_path / "data")},
    )
    assert missing.exit_code == 2, missing.output
    assert "unknown" not in missing.output
    assert "sadtalker" in missing.output and "missing SadTalker checkout" in missing.output
    unknown = runner.invoke(
        app, ["render", "--text", "hi", "--backend", "nosuch", "-q", "-o", str(tmp_path / "e.mp4")]
    )
    assert unknown.exit_code == 2 and "unknown animator backend 'nosuch'" in unknown.output
    assert "wav2lip" in unknown.output  # the known names include the neural backends
    assert not (tmp_path / "d.mp4").exists() and not (tmp_path / "e.mp4").exists()


def test_seed_makes_renders_repeatable(tmp_path: Path) -> None:
    """Same speech + same seed -> identical video (espeak itself adds random noise, so the
    speech is synthesised once)."""
    cache = F.FaceAnalysisCache(tmp_path / "cache")
    speech = VideoGenerator()._synthesizer().synthesize_speech("Hello there, how are you?")

    def frames(seed: int, name: str) -> np.ndarray:
        gen = VideoGenerator(size=256, face_cache=cache, seed=seed, mode="talking_head")
        return mux.decode_frames(gen.generate_from_speech(speech, output_path=tmp_path / name).path)

    a, b, c = frames(1, "a.mp4"), frames(1, "b.mp4"), frames(2, "c.mp4")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
