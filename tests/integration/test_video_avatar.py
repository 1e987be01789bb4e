"""Video avatars: a generated clip of the built-in portrait swaying (with a marker sliding over
the background) is re-synced to new speech. Measured on the rendered MP4 with mediapipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatarbot.errors import InvalidInput
from avatarbot.pipeline import mux
from avatarbot.pipeline import video_source as V
from avatarbot.pipeline.face import FaceAnalysisCache
from avatarbot.pipeline.generator import VideoGenerator
from avatarbot.pipeline.types import PhonemeEvent, SpeechResult
from tests.helpers import avatar_sources as S
from tests.helpers.lipmetrics import measure_lips, rms_envelope

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]
RATE = 16000
CLIP_S = 1.6  # 40 frames: not a whole sway period, so a plain wrap-around loop would jump


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return S.sway_video(tmp_path_factory.mktemp("clip") / "sway.mp4", CLIP_S)


@pytest.fixture(scope="module")
def rendered(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    gen = VideoGenerator(size=320, face_cache=FaceAnalysisCache(None))
    synth = gen._synthesizer()
    a = synth.synthesize_speech("Hello, my name is Ava. I will be your digital presenter today.")
    b = synth.synthesize_speech("Maybe we can talk about the weather, or my purple umbrella.")
    gap = np.zeros(int(0.6 * a.sample_rate), np.float32)
    shift = a.duration + 0.6
    speech = SpeechResult(
        np.concatenate([a.samples, gap, b.samples]).astype(np.float32),
        a.sample_rate,
        [
            *a.phonemes,
            *(PhonemeEvent(p.start + shift, p.end + shift, p.phoneme) for p in b.phonemes),
        ],
    )
    out = tmp_path_factory.mktemp("out") / "video_avatar.mp4"
    result = gen.generate_from_speech(speech, clip, out, mode="lipsync")
    source = V.open_video(clip, 320, "auto")
    return {
        "result": result,
        "frames": mux.decode_frames(out),
        "audio": mux.decode_audio(out, RATE),
        "source_frames": source.frames(10_000),
        "source_landmarks": source.landmarks(),
        "lips": measure_lips(mux.decode_frames(out)),
    }


def test_the_mouth_follows_the_new_speech(rendered: dict) -> None:
    frames = rendered["frames"]
    assert len(frames) == rendered["result"].n_frames > 4 * len(rendered["source_frames"])
    lips = rendered["lips"]
    assert np.isnan(lips.gap).sum() == 0
    rms = rms_envelope(rendered["audio"], RATE, len(frames))
    corr = float(np.corrcoef(lips.gap, rms)[0, 1])
    print(f"video avatar: Pearson(inner-lip gap, RMS) = {corr:.3f}")
    assert corr >= 0.6, f"Pearson(inner-lip gap, RMS) = {corr:.3f}"


def test_head_motion_and_background_are_the_clips(rendered: dict) -> None:
    frames, src = rendered["frames"], rendered["source_frames"]
    m = len(src)
    order = [V.pingpong(i, m) for i in range(len(frames))]
    # the head: the nose tip where the clip has it, frame by frame
    lips = rendered["lips"]
    nose_out = np.array([p[1] for p in lips.landmarks])
    nose_src = rendered["source_landmarks"][order, 1]
    assert float(np.std(nose_src[:, 0])) > 2.0  # the clip really sways
    assert float(np.corrcoef(nose_out[:, 0], nose_src[:, 0])[0, 1]) > 0.95
    assert float(np.abs(nose_out - nose_src).mean()) < 1.5

    # the background: the marker sliding along the top-left corner is where the clip has it
    def marker_x(frame: np.ndarray) -> int:
        band = frame[6:16, :80].astype(int)
        yellow = (band[..., 0] < 120) & (band[..., 1] > 150) & (band[..., 2] > 190)
        return int(np.argmax(yellow.sum(axis=0) >= 5))

    xs_out = np.array([marker_x(f) for f in frames])
    xs_src = np.array([marker_x(src[s]) for s in order])
    # Within 2 px: the square's left edge is found by colour, and 4:2:0 chroma smears a sharp
    # colour edge over two pixels in each of the two lossy encodes (the clip's and ours). That
    # it shows the clip's own frame, not one further along, is checked below on the corner.
    assert np.abs(xs_out - xs_src).max() <= 2
    assert np.mean(np.abs(xs_out - xs_src) <= 1) > 0.95
    assert xs_src.max() - xs_src.min() > 10  # and it moves
    # the rest of the corner matches the clip's frame better than any other of its frames
    corner = (slice(0, 40), slice(0, 80))

    def err(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a[corner].astype(int) - b[corner].astype(int)).mean())

    for i in range(0, len(frames), 7):
        s = order[i]
        assert err(frames[i], src[s]) < min(err(frames[i], src[(s + k) % m]) for k in (5, 10, 20))


def test_no_jump_where_the_loop_turns(rendered: dict) -> None:
    frames, src = rendered["frames"], rendered["source_frames"]
    m = len(src)
    upper = slice(0, frames.shape[1] // 2)  # eyes, forehead, background: the mouth is not judged
    steps = np.array(
        [np.abs(frames[i + 1][upper].astype(int) - frames[i][upper].astype(int)).mean() for i in range(len(frames) - 1)]
    )  # fmt: skip
    typical = float(np.percentile(steps, 90))
    for turn in (m - 1, 2 * (m - 1)):  # last frame played forwards, then first played backwards
        assert steps[turn - 1 : turn + 1].max() <= 1.5 * typical + 0.5
    # a plain wrap-around would jump: the clip's last and first frames differ a lot
    wrap = float(np.abs(src[-1][upper].astype(int) - src[0][upper].astype(int)).mean())
    assert wrap > 3 * typical


def test_face_analysis_is_cached_next_to_the_clip(clip: Path) -> None:
    first = V.analyse_video(clip)
    cached = V.cache_path(clip, first.sha)
    assert cached.is_file()
    with np.load(cached) as data:
        np.testing.assert_allclose(data["landmarks"], first.landmarks)
    # the next analysis reads the file instead of running mediapipe again
    np.savez(cached, landmarks=first.landmarks + 0.01)
    again = V.analyse_video(clip)
    np.testing.assert_allclose(again.landmarks, first.landmarks + 0.01)
    np.savez(cached, landmarks=first.landmarks)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")},
        "PYTHONPATH": str(REPO_ROOT),
        "AVATARBOT_DATA_DIR": str(cwd / "data"),
        "AVATARBOT_CACHE_DIR": str(cwd / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "avatarbot", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=180,
    )  # fmt: skip


def test_render_accepts_a_webm_clip(tmp_path: Path) -> None:
    clip = S.sway_video(tmp_path / "me.webm", 1.0)
    out = tmp_path / "out.mp4"
    done = _cli(["render", "--text", "Hello there.", "--image", str(clip), "--size", "256", "-q", "-o", str(out)], tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames = mux.decode_frames(out)
    assert frames.shape[1:3] == (256, 218)
    assert list(tmp_path.glob(".me.webm.*.faces.npz"))


BAD_CLIPS = {
    "too_long.mp4": (S.long_video, "60 s"),
    "two_faces.mp4": (S.two_face_video, "several faces"),
    "no_face.mov": (S.no_face_video, "no face"),
    "corrupt.mp4": (S.corrupt_video, "corrupt"),
}


def test_bad_clips_are_clear_cli_errors_and_leave_nothing(tmp_path: Path) -> None:
    # two of the four through the CLI (each start costs seconds); the API test takes all four
    for name in ("two_faces.mp4", "corrupt.mp4"):
        make, message = BAD_CLIPS[name]
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        clip = make(folder / name)
        out = folder / "out.mp4"
        done = _cli(
            ["render", "--text", "Hello.", "--image", str(clip), "-q", "-o", str(out)], folder
        )
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr, (name, done.stderr)
        assert sorted(p.name for p in folder.iterdir()) == [name], name  # no output, no cache


def test_bad_clips_fail_before_any_work(tmp_path: Path) -> None:
    for name, (make, message) in BAD_CLIPS.items():
        clip = make(tmp_path / name)
        with pytest.raises(InvalidInput, match=message):
            V.open_video(clip, 256)


def test_a_full_body_clip_is_auto_framed(tmp_path: Path) -> None:
    """The face is ~10 % of the width: too small for FaceMesh alone, found by the full-range
    detector, then the loop is cropped to head and shoulders."""
    wide = []
    for f in S.sway_frames(0.4, size=320):
        canvas = np.empty((1080, 1080, 3), np.uint8)
        canvas[:] = f[5, 5]
        canvas[100 : 100 + f.shape[0], 400 : 400 + f.shape[1]] = f
        wide.append(canvas)
    assert S.detected_face_widths(wide[:1])[0] < 0.12
    source = V.open_video(S._encode(tmp_path / "standing.mp4", wide), 256, "auto")
    assert source.size == (256, 256)
    assert min(S.detected_face_widths(source.frames(10))) >= 0.33
