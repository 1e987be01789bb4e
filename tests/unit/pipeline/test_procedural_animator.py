from __future__ import annotations

import numpy as np
import pytest

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline import animators as A
from avatarbot.pipeline import face as F
from avatarbot.pipeline.animators.procedural import ProceduralAnimator
from avatarbot.pipeline.types import (
    FPS,
    VISEMES,
    AnimationJob,
    Availability,
    Mode,
    MouthTrack,
    SpeechResult,
    Viseme,
)
from tests.helpers.lipmetrics import measure_lips
from tests.helpers.speech import script_track_and_audio


@pytest.fixture(scope="module")
def portrait() -> F.Portrait:
    return F.load_portrait(None, 256)


@pytest.fixture(scope="module")
def landmarks(portrait: F.Portrait) -> np.ndarray:
    return F.analyse_image(portrait.image_bgr).landmarks


def _hold(viseme: Viseme, n: int, openness: float) -> MouthTrack:
    w = np.zeros((n, len(VISEMES)), np.float32)
    w[:, VISEMES.index(viseme)] = 1.0
    return MouthTrack(FPS, w, np.full(n, openness, np.float32))


def _job(portrait: F.Portrait, track: MouthTrack, mode: Mode = Mode.LIPSYNC) -> AnimationJob:
    speech = SpeechResult(np.zeros(track.n_frames * 640, np.float32), 16000)
    return AnimationJob(portrait.image_bgr, speech, track, mode, FPS, portrait.key)


def test_registry_auto_is_procedural_and_unknown_names_fail() -> None:
    assert A.get_animator("auto").name == "procedural"
    assert ("procedural", Availability.yes()) in A.list_animators()
    with pytest.raises(InvalidInput, match="unknown animator backend 'nope'"):
        A.get_animator("nope")


def test_unavailable_backend_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    class Missing:
        name = "wav2lip"

        def availability(self) -> Availability:
            return Availability.no("wav2lip needs models/wav2lip_gan.pth")

    monkeypatch.setattr(A._registry, "_entries", dict(A._registry._entries))
    A.get_animator("auto")  # builtins loaded before we add ours
    A.register_animator(Missing, name="wav2lip")
    with pytest.raises(BackendUnavailable, match=r"wav2lip_gan\.pth"):
        A.get_animator("wav2lip")
    assert A.get_animator("auto").name == "procedural"  # falls through to the CPU default


def test_yields_exactly_n_frames_of_the_portrait_shape(
    portrait: F.Portrait, landmarks: np.ndarray
) -> None:
    track, _ = script_track_and_audio()
    frames = list(ProceduralAnimator().animate(_job(portrait, track), landmarks=landmarks))
    assert len(frames) == track.n_frames
    assert all(f.shape == portrait.image_bgr.shape and f.dtype == np.uint8 for f in frames)


def test_rest_keeps_the_face_and_open_opens_the_mouth(
    portrait: F.Portrait, landmarks: np.ndarray
) -> None:
    anim = ProceduralAnimator()
    rest = next(iter(anim.animate(_job(portrait, _hold(Viseme.REST, 1, 0.0)), landmarks=landmarks)))
    opened = next(
        iter(anim.animate(_job(portrait, _hold(Viseme.OPEN, 1, 0.9)), landmarks=landmarks))
    )
    spread = next(
        iter(anim.animate(_job(portrait, _hold(Viseme.SPREAD, 1, 0.6)), landmarks=landmarks))
    )
    rounded = next(
        iter(anim.animate(_job(portrait, _hold(Viseme.ROUND, 1, 0.6)), landmarks=landmarks))
    )
    diff = np.abs(rest.astype(int) - portrait.image_bgr.astype(int))
    assert diff.mean() < 0.5  # closed-mouth portrait at rest: (almost) the original
    m = measure_lips(np.stack([rest, opened, spread, rounded]))
    assert m.gap[0] < 0.03 and m.gap[1] > 0.15
    assert m.width[2] > m.width[0] * 1.04  # spread widens the corners
    assert m.width[3] < m.width[0] * 0.92  # round narrows them


def test_an_open_mouth_portrait_can_close(portrait: F.Portrait, landmarks: np.ndarray) -> None:
    anim = ProceduralAnimator()
    opened = next(
        iter(anim.animate(_job(portrait, _hold(Viseme.OPEN, 1, 1.0)), landmarks=landmarks))
    )
    open_portrait = F.Portrait(opened, "open-mouth-test")
    closed = next(iter(anim.animate(_job(open_portrait, _hold(Viseme.MBP, 1, 0.0)))))
    m = measure_lips(np.stack([opened, closed]))
    assert m.gap[0] > 0.15
    assert m.gap[1] < 0.04


def test_background_is_still_and_render_is_deterministic(
    portrait: F.Portrait, landmarks: np.ndarray
) -> None:
    track, _ = script_track_and_audio()
    for mode in (Mode.LIPSYNC, Mode.TALKING_HEAD):
        a = np.stack(
            list(
                ProceduralAnimator(seed=3).animate(_job(portrait, track, mode), landmarks=landmarks)
            )
        )
        b = np.stack(
            list(
                ProceduralAnimator(seed=3).animate(_job(portrait, track, mode), landmarks=landmarks)
            )
        )
        assert np.array_equal(a, b)
        x, y, w, h = F._box_of(landmarks, a.shape[2], a.shape[1])
        # Far from the head nothing changes at all: left and right strips of the image.
        strips = np.concatenate([a[:, :, : max(1, x - w // 2)], a[:, :, x + w + w // 2 :]], axis=2)
        assert np.array_equal(strips, np.broadcast_to(strips[:1], strips.shape))
    still = np.stack(
        list(
            ProceduralAnimator(seed=3).animate(
                _job(portrait, track, Mode.LIPSYNC), landmarks=landmarks
            )
        )
    )
    moving = np.stack(
        list(
            ProceduralAnimator(seed=3).animate(
                _job(portrait, track, Mode.TALKING_HEAD), landmarks=landmarks
            )
        )
    )
    forehead = (slice(None), slice(y, y + h // 4), slice(x, x + w))
    assert np.abs(np.diff(still[forehead].astype(int), axis=0)).mean() < 0.05  # lipsync: head still
    assert np.abs(np.diff(moving[forehead].astype(int), axis=0)).mean() > 0.2  # talking head moves


def test_blinks_close_the_eyes(portrait: F.Portrait, landmarks: np.ndarray) -> None:
    n = 8 * FPS  # at least one blink in 8 s
    frames = np.stack(
        list(
            ProceduralAnimator(seed=1).animate(
                _job(portrait, _hold(Viseme.REST, n, 0.0)), landmarks=landmarks
            )
        )
    )
    x0, x1 = int(landmarks[33, 0]) - 4, int(landmarks[133, 0]) + 4
    y0, y1 = int(landmarks[159, 1]) - 3, int(landmarks[145, 1]) + 3
    eye = frames[:, y0:y1, x0:x1].astype(int)
    change = np.abs(eye - eye[0]).mean(axis=(1, 2, 3))
    assert change.max() > 4  # some frames have the lid down
    assert (change < 1).mean() > 0.7  # most frames eyes open
