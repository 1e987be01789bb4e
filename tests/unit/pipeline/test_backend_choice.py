"""Modes choose backends: lipsync -> wav2lip, talking_head -> sadtalker, enhanced_* + gfpgan,
each falling back to the CPU backend with the reason; named backends are used as asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline import face as F
from avatarbot.pipeline.animators import get_animator
from avatarbot.pipeline.backend_choice import choices_by_mode, choose_backends
from avatarbot.pipeline.bootstrap import bootstrap_pipeline, current_runtime
from avatarbot.pipeline.types import FPS, AnimationJob, Mode, SpeechResult
from avatarbot.pipeline.visemes import mouth_track
from tests.conftest import make_settings
from tests.helpers.neural_fixtures import speech_like_audio


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    settings = make_settings(tmp_path)
    bootstrap_pipeline(settings)
    return settings.data_dir


def _place_model_files(data_dir: Path) -> None:
    """Files where the backends look for them (availability checks files, loads nothing)."""
    models = data_dir / "models"
    for rel in ("wav2lip/wav2lip_gan.pth", "gfpgan/GFPGANv1.4.pth"):
        (models / rel).parent.mkdir(parents=True, exist_ok=True)
        (models / rel).write_bytes(b"weights")
    checkout = models / "sadtalker" / "SadTalker"
    (checkout / "checkpoints").mkdir(parents=True)
    (checkout / "inference.py").write_text("# SadTalker's entry point\n")
    (checkout / "checkpoints" / "SadTalker_V0.0.2_256.safetensors").write_bytes(b"x")


def test_without_models_every_mode_falls_back_and_says_why(data_dir: Path) -> None:
    lipsync = choose_backends("lipsync")
    assert (lipsync.animator, lipsync.enhancer) == ("procedural", "none")
    assert "models/wav2lip/wav2lip_gan.pth" in lipsync.skipped["wav2lip"]
    head = choose_backends(Mode.TALKING_HEAD)
    assert head.animator == "procedural" and "SadTalker checkout" in head.skipped["sadtalker"]
    enhanced = choose_backends("enhanced_talking_head")
    assert (enhanced.animator, enhanced.enhancer) == ("procedural", "detail")
    assert set(enhanced.skipped) == {"sadtalker", "gfpgan"}
    assert "GFPGANv1.4.pth" in enhanced.skipped["gfpgan"]
    table = choices_by_mode()
    assert set(table) == {m.value for m in Mode}
    assert table["enhanced_lipsync"]["skipped"].keys() == {"wav2lip", "gfpgan"}


def test_with_models_each_mode_gets_its_neural_backend(data_dir: Path) -> None:
    pytest.importorskip("torch")  # the .pth backends need torch to be available
    _place_model_files(data_dir)
    assert choose_backends("lipsync").as_dict() == {
        "mode": "lipsync", "animator": "wav2lip", "enhancer": "none", "skipped": {},
    }  # fmt: skip
    assert choose_backends("talking_head").animator == "sadtalker"
    enhanced = choose_backends("enhanced_lipsync")
    assert (enhanced.animator, enhanced.enhancer, enhanced.skipped) == ("wav2lip", "gfpgan", {})
    assert choose_backends("enhanced_talking_head").animator == "sadtalker"


def test_named_backends_are_used_as_asked_and_unknown_names_are_invalid(data_dir: Path) -> None:
    choice = choose_backends("talking_head", "procedural", "gfpgan")
    assert (choice.animator, choice.enhancer, choice.skipped) == ("procedural", "none", {})
    assert choose_backends("enhanced_lipsync", "wav2lip", "none").enhancer == "none"
    with pytest.raises(InvalidInput, match=r"unknown animator backend 'nosuch' \(known: auto, "):
        choose_backends("lipsync", "nosuch")
    with pytest.raises(InvalidInput, match="unknown enhancer backend 'gfpgn'"):
        choose_backends("lipsync", "auto", "gfpgn")  # a typo is reported in any mode
    # Known but without its files: the render says what is missing (not "unknown").
    with pytest.raises(BackendUnavailable, match=r"wav2lip_gan\.pth"):
        get_animator(choose_backends("lipsync", "wav2lip").animator)


def test_the_process_has_one_model_manager_per_settings(tmp_path: Path) -> None:
    first = bootstrap_pipeline(make_settings(tmp_path))
    assert bootstrap_pipeline(make_settings(tmp_path)) is first  # idempotent
    assert current_runtime() is first and first.models.cache_dir == tmp_path / "data" / "models"
    assert first.models.known_device() is None  # "auto": picked on the first load, not here
    other = bootstrap_pipeline(make_settings(tmp_path, pipeline={"openai_tts_model": "x"}))
    assert other is not first and other.models is first.models  # same models dir and budget
    budget = bootstrap_pipeline(make_settings(tmp_path, pipeline={"model_memory_gb": 1.0}))
    assert budget.models is not first.models and budget.models.max_cache_bytes == 2**30


def _frames(mode: Mode) -> np.ndarray:
    choice = choose_backends(mode)
    portrait = F.load_portrait(None, 160)
    speech = SpeechResult(speech_like_audio(1.0), 22050)
    job = AnimationJob(
        portrait.image_bgr, speech, mouth_track(speech, FPS), mode, FPS, portrait.key, seed=3
    )
    return np.stack(list(get_animator(choice.animator).animate(job))).astype(np.int16)


def test_procedural_fallbacks_lipsync_keeps_the_head_still_talking_head_moves_it(
    data_dir: Path,
) -> None:
    box = F.analyse_portrait(F.load_portrait(None, 160)).box
    x, y, w, h = box
    forehead = (slice(None), slice(max(0, y - h // 3), y + h // 8), slice(x, x + w))  # hair, brow

    def motion(frames: np.ndarray) -> float:
        region = frames[forehead]
        return float(np.abs(region - region[0]).max())

    assert motion(_frames(Mode.LIPSYNC)) <= 2  # only the mouth moves
    assert motion(_frames(Mode.TALKING_HEAD)) > 10  # the whole head turns and nods
