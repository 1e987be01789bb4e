"""Video avatars through Wav2Lip: a generated checkpoint in the official layout re-syncs every
frame of a looping clip on that frame's own face crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarbot.pipeline import video_source as V
from avatarbot.pipeline.types import SpeechResult
from avatarbot.pipeline.visemes import mouth_track
from tests.helpers.avatar_sources import sway_video
from tests.helpers.neural_fixtures import speech_like_audio

torch = pytest.importorskip("torch")

from avatarbot.pipeline.animators.video_loop import animate_video  # noqa: E402
from avatarbot.pipeline.animators.wav2lip import Wav2LipAnimator  # noqa: E402
from tests.unit.pipeline.test_wav2lip import _random_state_dict  # noqa: E402

pytestmark = pytest.mark.slow


def test_wav2lip_resyncs_each_frame_of_the_loop(tmp_path: Path) -> None:
    ckpt = tmp_path / "models" / "wav2lip" / "wav2lip.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in _random_state_dict().items()}}, ckpt)
    animator = Wav2LipAnimator(
        tmp_path / "models", runtime="torch", batch_size=8
    )  # one batch: ~0.5 s a frame on a busy CPU
    assert animator.availability().ok

    source = V.open_video(sway_video(tmp_path / "clip.mp4", 0.12), 256, "full")
    speech = SpeechResult(speech_like_audio(0.28, 16000), 16000)
    track = mouth_track(speech)
    out = list(animate_video(source, track, speech, animator))
    src = source.frames(track.n_frames)
    m = len(src)
    assert len(out) == track.n_frames >= 2 * m  # the clip loops
    for i, (frame, box) in enumerate(out):
        s = V.pingpong(i, m)
        x, y, w, h = box
        assert frame.shape == src[s].shape
        diff = np.abs(frame.astype(int) - src[s].astype(int)).sum(axis=2)
        assert diff[y + h // 2 : y + h, x : x + w].mean() > 5  # the mouth was redrawn
        # everything away from this frame's face is the clip's own frame
        away = np.ones(diff.shape, bool)
        away[max(0, y - 10) : y + h + 30, max(0, x - 10) : x + w + 10] = False
        assert diff[away].max() == 0
