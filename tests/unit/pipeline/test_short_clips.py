"""A clip of one frame renders in every procedural mode and gets a cover (both used to fail:
head motion's smoothing kernel was longer than the clip; the cover was sought past the end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatarbot.pipeline import face as F
from avatarbot.pipeline import mux
from avatarbot.pipeline.generator import VideoGenerator
from avatarbot.pipeline.types import SpeechResult
from tests.helpers.neural_fixtures import speech_like_audio


@pytest.mark.parametrize("mode", ["talking_head", "lipsync"])
def test_one_frame_clip_renders_and_has_a_cover(mode: str, tmp_path: Path) -> None:
    gen = VideoGenerator(size=128, face_cache=F.FaceAnalysisCache(tmp_path / "face"))
    speech = SpeechResult(speech_like_audio(0.04), 22050)
    result = gen.generate_from_speech(speech, output_path=tmp_path / "one.mp4", mode=mode)
    assert result.n_frames == 1 and result.animator == "procedural"
    assert mux.extract_cover(result.path).startswith(b"\xff\xd8")
