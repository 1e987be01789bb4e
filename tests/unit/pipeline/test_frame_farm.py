"""Two processes draw one clip's frames: the same frames in the same order, whatever happens to
the helper, and no helper left behind."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from avatarbot.pipeline import frame_farm
from avatarbot.pipeline.frame_farm import farm_frames

SHAPE = (24, 32, 3)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def draw(i: int) -> np.ndarray:
    """A pure function of the index, cheap, different for every frame."""
    frame = np.zeros(SHAPE, np.uint8)
    frame[..., 0] = i % 256
    frame[..., 1] = (i * 7) % 256
    frame[i % SHAPE[0], :, 2] = 255
    return frame


def _children() -> set[int]:
    """Our own live (or unreaped) child processes."""
    me = str(os.getpid())
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # ppid
            pids.add(int(entry))
    return pids


_OTHERS: set[int] = set()  # children the test session had already (a test database server)


def _helper_pids() -> set[int]:
    return _children() - _OTHERS


@pytest.fixture(autouse=True)
def two_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    _OTHERS.clear()
    _OTHERS.update(_children())
    monkeypatch.setenv(frame_farm.ENV, "2")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def test_the_frames_come_out_in_order_and_equal_to_one_process() -> None:
    frames = list(farm_frames(draw, 101, SHAPE))
    assert len(frames) == 101
    for i, frame in enumerate(frames):
        assert np.array_equal(frame, draw(i)), i
    assert not _helper_pids()  # the helper was reaped


def test_the_odd_frames_really_come_from_another_process() -> None:
    me = os.getpid()

    def whose(i: int) -> np.ndarray:
        frame = np.zeros(SHAPE, np.uint8)
        frame.reshape(-1)[:4] = np.frombuffer(os.getpid().to_bytes(4, "little"), np.uint8)
        return frame

    pids = [
        int.from_bytes(f.reshape(-1)[:4].tobytes(), "little") for f in farm_frames(whose, 40, SHAPE)
    ]
    assert set(pids[0::2]) == {me}
    assert len(set(pids[1::2])) == 1 and pids[1] != me


def test_a_helper_killed_midway_costs_no_frame() -> None:
    frames = []
    it = farm_frames(draw, 80, SHAPE)
    for i, frame in enumerate(it):
        frames.append(frame)
        if i == 10:
            for pid in _helper_pids():
                os.kill(pid, signal.SIGKILL)
    assert len(frames) == 80
    assert all(np.array_equal(f, draw(i)) for i, f in enumerate(frames))


def test_a_helper_that_hangs_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frame_farm, "STALL_S", 0.5)
    parent = os.getpid()

    def stuck_in_helper(i: int) -> np.ndarray:
        if os.getpid() != parent and i >= 9:
            time.sleep(3600)  # a helper that never answers
        return draw(i)

    started = time.monotonic()
    frames = list(farm_frames(stuck_in_helper, 30, SHAPE))
    assert all(np.array_equal(f, draw(i)) for i, f in enumerate(frames))
    assert time.monotonic() - started < 30
    assert not _helper_pids()


def test_an_error_in_the_helper_is_met_again_here() -> None:
    def broken(i: int) -> np.ndarray:
        if i == 15:
            raise ValueError("frame 15 cannot be drawn")
        return draw(i)

    with pytest.raises(ValueError, match="frame 15"):
        list(farm_frames(broken, 40, SHAPE))
    assert not _helper_pids()


def test_stopping_early_leaves_no_helper() -> None:
    it = farm_frames(draw, 200, SHAPE)
    for i, _ in enumerate(it):
        if i == 5:
            break
    it.close()
    assert not _helper_pids()


def test_one_process_when_asked_or_short(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = os.getpid()
    seen: set[int] = set()

    def record(i: int) -> np.ndarray:
        seen.add(os.getpid())
        return draw(i)

    list(farm_frames(record, frame_farm.MIN_FRAMES - 1, SHAPE))  # too short to fork
    monkeypatch.setenv(frame_farm.ENV, "1")
    list(farm_frames(record, 60, SHAPE))
    assert seen == {parent}
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setenv(frame_farm.ENV, "2")
    assert frame_farm.render_processes() == 1


def test_a_procedural_clip_is_the_same_drawn_by_one_or_two_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from avatarbot.pipeline import face as F
    from avatarbot.pipeline.animators.procedural import ProceduralAnimator
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer
    from avatarbot.pipeline.types import FPS, AnimationJob, Mode
    from avatarbot.pipeline.visemes import mouth_track

    portrait = F.load_portrait(None, 256)
    landmarks = F.analyse_portrait(portrait).landmarks
    speech = VoiceSynthesizer().synthesize_speech("Hello there, how are you today?", language="en")
    track = mouth_track(speech, FPS)
    job = AnimationJob(portrait.image_bgr, speech, track, Mode.TALKING_HEAD, FPS, portrait.key, 3)
    assert track.n_frames >= frame_farm.MIN_FRAMES
    two = list(ProceduralAnimator().animate(job, landmarks=landmarks))
    monkeypatch.setenv(frame_farm.ENV, "1")
    one = list(ProceduralAnimator().animate(job, landmarks=landmarks))
    assert len(one) == len(two) == track.n_frames
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert not _helper_pids()
