from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarbot.errors import Cancelled, InvalidInput
from avatarbot.pipeline import mux

RATE = 22050


def _frames(n: int, w: int = 160, h: int = 120, noisy: bool = False):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    for i in range(n):
        if noisy:
            yield rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        else:
            f = np.zeros((h, w, 3), np.uint8)
            f[:, : (i * 3) % w] = (40, 120, 200)
            yield f


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_mp4_is_h264_yuv420p_aac_faststart_with_matching_durations(tmp_path: Path) -> None:
    audio = _tone(1.93)  # not a whole number of frames
    n = mux.frames_for(len(audio) / RATE)
    assert n == 49
    out = tmp_path / "v.mp4"
    res = mux.encode_frames(_frames(n), audio, RATE, out, width=160, height=120, n_frames=n)
    assert res.size_bytes == out.stat().st_size > 0
    info = mux.probe(out)
    video, sound = info.stream("video"), info.stream("audio")
    assert video is not None and sound is not None
    assert (video.codec, sound.codec, info.pix_fmt) == ("h264", "aac", "yuv420p")
    assert info.faststart
    assert (info.width, info.height, info.fps) == (160, 120, 25.0)
    assert video.samples == n
    assert abs(video.duration - n / 25) < 1e-3
    assert abs(video.duration - sound.duration) <= 0.040
    decoded = mux.decode_frames(out)
    assert decoded.shape == (n, 120, 160, 3)
    assert abs(len(mux.decode_audio(out, 16000)) / 16000 - n / 25) <= 0.040


def test_probe_detects_moov_after_mdat(tmp_path: Path) -> None:
    import subprocess

    out = tmp_path / "v.mp4"
    mux.encode_frames(_frames(10), _tone(0.4), RATE, out, width=160, height=120, n_frames=10)
    slow = tmp_path / "slow.mp4"
    subprocess.run(
        [mux.ffmpeg_exe(), "-loglevel", "error", "-i", str(out), "-c", "copy", str(slow)],
        check=True,
    )
    assert mux.probe(out).faststart and not mux.probe(slow).faststart
    not_mp4 = tmp_path / "x.mp4"
    not_mp4.write_bytes(b"\0\0\0\x08free")
    with pytest.raises(InvalidInput):
        mux.probe(not_mp4)


def test_size_cap_reencodes_to_fit(tmp_path: Path) -> None:
    n = 50
    out = tmp_path / "big.mp4"
    plain = mux.encode_frames(
        _frames(n, 320, 240, noisy=True), _tone(2), RATE, out, width=320, height=240, n_frames=n
    )
    cap = plain.size_bytes // 3
    capped = mux.encode_frames(
        _frames(n, 320, 240, noisy=True), _tone(2), RATE, tmp_path / "fit.mp4",
        width=320, height=240, n_frames=n, max_bytes=cap,
    )  # fmt: skip
    assert capped.reencoded and capped.size_bytes <= cap
    info = mux.probe(capped.path)
    assert info.faststart and info.stream("audio") is not None and info.pix_fmt == "yuv420p"
    with pytest.raises(InvalidInput, match="cannot fit"):
        mux.shrink_to_fit(capped.path, 2000, 2.0)


def test_cancellation_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "c.mp4"
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(Cancelled):
        mux.encode_frames(
            _frames(40),
            _tone(1.6),
            RATE,
            out,
            width=160,
            height=120,
            n_frames=40,
            cancel_check=cancel,
        )
    assert not out.exists()


def test_wrong_frame_count_or_shape_fails_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "w.mp4"
    with pytest.raises(mux.EncodeError, match="expected 12"):
        mux.encode_frames(_frames(10), _tone(0.5), RATE, out, width=160, height=120, n_frames=12)
    assert not out.exists()
    with pytest.raises(InvalidInput, match="even"):
        mux.VideoEncoder(out, 161, 120, _tone(0.1), RATE)


def test_cover_is_a_jpeg(tmp_path: Path) -> None:
    import io

    from PIL import Image

    out = tmp_path / "v.mp4"
    mux.encode_frames(_frames(25), _tone(1), RATE, out, width=160, height=120, n_frames=25)
    jpg = mux.extract_cover(out)
    assert Image.open(io.BytesIO(jpg)).size == (160, 120)


def test_preset_follows_the_size_budget() -> None:
    assert mux.pick_preset(512, 512, 10, None)[0] == "veryfast"
    assert mux.pick_preset(512, 512, 10, 10 * 1024 * 1024)[0] == "veryfast"
    assert mux.pick_preset(512, 512, 120, 10 * 1024 * 1024)[0] in {"faster", "medium"}
    assert mux.fit_audio(np.ones(10, np.float32), 100, 1).shape == (4,)
    assert mux.fit_audio(np.ones(2, np.float32), 100, 1).tolist() == [1, 1, 0, 0]


def test_colours_survive_the_i420_feed(tmp_path: Path) -> None:
    """Frames go to ffmpeg as I420 converted by OpenCV (BT.601, limited range, like swscale):
    flat patches of strong colours decode back to what was drawn."""
    colours = [(40, 120, 200), (200, 40, 40), (30, 200, 60), (250, 250, 250), (10, 10, 10)]
    frame = np.zeros((120, 160, 3), np.uint8)
    for k, colour in enumerate(colours):
        frame[:, k * 32 : (k + 1) * 32] = colour
    out = tmp_path / "c.mp4"
    mux.encode_frames(iter([frame] * 5), _tone(0.2), RATE, out, width=160, height=120, n_frames=5)
    decoded = mux.decode_frames(out)[2].astype(int)
    for k, colour in enumerate(colours):
        patch = decoded[20:100, k * 32 + 8 : k * 32 + 24].reshape(-1, 3).mean(axis=0)
        assert np.abs(patch - np.array(colour)).max() < 8, (colour, patch)


def test_the_encoder_leaves_the_animator_a_core() -> None:
    import os

    threads = mux.encoder_threads()
    assert 1 <= threads <= 2
    assert threads < (os.cpu_count() or 2) or threads == 1


def test_the_video_takes_its_name_only_when_complete(tmp_path: Path) -> None:
    """While encoding, ffmpeg writes a hidden part file; a render killed half-way leaves no
    cut video under the name asked for, and a finished one leaves no part file."""
    out = tmp_path / "v.mp4"
    enc = mux.VideoEncoder(out, 160, 120, _tone(1.0), RATE)
    with enc:
        for frame in _frames(10):
            enc.write(frame)
        assert not out.exists()  # still encoding: nothing under the final name
        enc.finish()
    assert out.exists() and mux.probe(out).faststart
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_a_killed_renders_part_file_is_cleared_by_the_next_render(tmp_path: Path) -> None:
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".v.{gone}.part.mp4"  # what a kill -9 mid-render leaves
    stale.write_bytes(b"cut video")
    other = tmp_path / f".w.{gone}.part.mp4"  # another output's: not ours to touch
    other.write_bytes(b"x")
    out = tmp_path / "v.mp4"
    mux.encode_frames(_frames(5), _tone(0.2), RATE, out, width=160, height=120, n_frames=5)
    assert out.exists() and not stale.exists() and other.exists()
