"""Wav2Lip: exact official keys; generated checkpoint -> frames -> MP4 on CPU (torch, ONNX)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.types import VISEMES, AnimationJob, Mode, MouthTrack, SpeechResult
from tests.helpers.neural_fixtures import (
    drawn_portrait,
    manifest_tensors,
    speech_like_audio,
    write_mp4,
)

torch = pytest.importorskip("torch")

from avatarbot.pipeline.animators.wav2lip import Wav2LipAnimator  # noqa: E402
from avatarbot.pipeline.animators.wav2lip.checkpoint import load_wav2lip  # noqa: E402
from avatarbot.pipeline.animators.wav2lip.network import Wav2Lip  # noqa: E402


def _random_state_dict() -> dict:
    """Random weights that keep signal alive through 20+ layers, so the audio changes the mouth."""
    torch.manual_seed(0)
    net = Wav2Lip()
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            module.weight.data *= 0.7
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.uniform_(0.5, 1.5)
            module.running_mean.normal_(0.0, 0.1)
            module.num_batches_tracked.fill_(1234)
    return net.state_dict()


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory) -> Path:
    """A file laid out like wav2lip_gan.pth: legacy torch format, module.-prefixed keys."""
    state = _random_state_dict()
    path = tmp_path_factory.mktemp("models") / "wav2lip" / "wav2lip_gan.pth"
    path.parent.mkdir(parents=True)
    container = {
        "state_dict": {f"module.{k}": v for k, v in state.items()},
        # torch 1.1-era Adam state: id()-int keys, tuples, floats (trimmed to one parameter).
        "optimizer": {
            "state": {
                140001: {"step": 7, "exp_avg": torch.zeros(16), "exp_avg_sq": torch.ones(16)}
            },
            "param_groups": [
                {
                    "lr": 1e-4,
                    "betas": (0.5, 0.999),
                    "eps": 1e-8,
                    "weight_decay": 0,
                    "amsgrad": False,
                    "params": [140001],
                }
            ],
        },
        "global_step": 1234,
        "global_epoch": 5,
    }
    torch.save(container, path, _use_new_zipfile_serialization=False)
    return path


def test_state_dict_matches_official_manifest_exactly():
    expected = manifest_tensors("wav2lip.json")
    state = Wav2Lip().state_dict()
    assert list(state) == list(expected)  # same keys, same order
    for key, meta in expected.items():
        assert list(state[key].shape) == meta["shape"], key
    n_params = sum(p.numel() for p in Wav2Lip().parameters())
    assert n_params == 36_298_035


def test_loader_strips_module_prefix_and_keeps_weights(official_checkpoint):
    model = load_wav2lip(official_checkpoint)
    saved = torch.load(official_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    key = "audio_encoder.0.conv_block.0.weight"
    assert torch.equal(model.state_dict()[key], saved[f"module.{key}"])
    assert not model.training


def test_loader_rejects_foreign_checkpoint(tmp_path):
    bad = tmp_path / "other.pth"
    torch.save({"state_dict": {"module.fc.weight": torch.zeros(2, 2)}}, bad)
    with pytest.raises(InvalidInput, match="not a Wav2Lip generator"):
        load_wav2lip(bad)


def test_torchscript_file_is_detected_and_loaded(tmp_path):
    example = (torch.zeros(1, 1, 80, 16), torch.zeros(1, 6, 96, 96))
    scripted = torch.jit.trace(Wav2Lip().eval(), example)
    path = tmp_path / "Wav2Lip-SD-GAN.pt"
    scripted.save(str(path))
    module = load_wav2lip(path)
    assert isinstance(module, torch.jit.ScriptModule)
    out = module(torch.zeros(1, 1, 80, 16), torch.zeros(1, 6, 96, 96))
    assert tuple(out.shape) == (1, 3, 96, 96)


def _job(fps: int = 25) -> AnimationJob:
    sr = 22050
    audio = speech_like_audio(1.2, sr)
    n_frames = round(len(audio) / sr * fps)
    track = MouthTrack(
        fps=fps,
        weights=np.zeros((n_frames, len(VISEMES)), np.float32),
        openness=np.zeros(n_frames, np.float32),
    )
    return AnimationJob(
        portrait_bgr=drawn_portrait(),
        speech=SpeechResult(samples=audio, sample_rate=sr),
        track=track,
        mode=Mode.LIPSYNC,
        fps=fps,
    )


def _check_frames(frames: list[np.ndarray], job: AnimationJob) -> None:
    assert len(frames) == job.track.n_frames
    portrait = job.portrait_bgr
    for frame in frames:
        assert frame.shape == portrait.shape and frame.dtype == np.uint8
    diff = np.abs(frames[0].astype(int) - portrait.astype(int)).sum(axis=2)
    ys, _ = np.nonzero(diff)
    assert len(ys) > 0, "the generator output was not pasted"
    # Only the (padded) face region changes; corners stay the portrait.
    assert diff[:10, :10].sum() == 0 and diff[-10:, -10:].sum() == 0
    # Different audio windows give different mouths.
    assert any(not np.array_equal(frames[0], f) for f in frames[1:])


@pytest.mark.slow
def test_generated_checkpoint_end_to_end_torch_to_mp4(official_checkpoint, tmp_path):
    """Shipped default portrait (mediapipe face box) + speech -> Wav2Lip frames -> project mux."""
    from avatarbot.pipeline.face import load_portrait
    from avatarbot.pipeline.mux import encode_frames, probe

    models_dir = official_checkpoint.parent.parent
    animator = Wav2LipAnimator(models_dir, runtime="torch")
    assert animator.availability().ok
    job = _job()
    job.portrait_bgr = load_portrait(None, 256).image_bgr
    animator.runner()  # load outside the timing
    t0 = time.perf_counter()
    frames = list(animator.animate(job))
    per_frame_ms = (time.perf_counter() - t0) * 1000 / len(frames)
    print(f"wav2lip torch CPU: {per_frame_ms:.1f} ms/frame over {len(frames)} frames")
    _check_frames(frames, job)
    h, w = job.portrait_bgr.shape[:2]
    result = encode_frames(
        frames, job.speech.samples, job.speech.sample_rate, tmp_path / "w.mp4",
        width=w, height=h, n_frames=len(frames),
    )  # fmt: skip
    info = probe(result.path)
    assert info.stream("video").samples == len(frames)
    assert info.stream("audio") is not None
    assert info.duration == pytest.approx(len(frames) / 25, abs=0.1)


@pytest.mark.slow
def test_generated_face_through_imageio_ffmpeg(official_checkpoint, tmp_path):
    import imageio_ffmpeg

    fixed_box = lambda img: (64, 70, 128, 128)  # noqa: E731
    animator = Wav2LipAnimator(official_checkpoint.parent.parent, face_box_fn=fixed_box)
    job = _job()
    frames = list(animator.animate(job))
    _check_frames(frames, job)
    mp4 = write_mp4(frames, job.speech.samples, job.speech.sample_rate, tmp_path / "w.mp4", 25)
    n, secs = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert n == len(frames) and secs == pytest.approx(len(frames) / 25, abs=0.1)


@pytest.mark.slow
def test_onnx_export_matches_torch_and_animates(official_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    from avatarbot.pipeline.animators.wav2lip.runtime import OnnxWav2Lip, export_onnx

    model = load_wav2lip(official_checkpoint)
    onnx_path = export_onnx(model, tmp_path / "models" / "wav2lip" / "wav2lip_gan.onnx")
    rng = np.random.default_rng(1)
    mel = rng.uniform(-4, 4, (3, 1, 80, 16)).astype(np.float32)
    face = rng.uniform(0, 1, (3, 6, 96, 96)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(mel), torch.from_numpy(face)).numpy()
    got = OnnxWav2Lip(onnx_path).predict(mel, face)
    assert got.shape == (3, 3, 96, 96)
    np.testing.assert_allclose(got, expected, atol=1e-4)

    animator = Wav2LipAnimator(tmp_path / "models", runtime="onnx")
    assert animator.resolve_checkpoint() == onnx_path
    job = _job()
    t0 = time.perf_counter()
    frames = list(animator.animate(job))
    print(f"wav2lip onnx CPU: {(time.perf_counter() - t0) * 1000 / len(frames):.1f} ms/frame")
    _check_frames(frames, job)


def test_unavailable_without_checkpoint_names_the_file(tmp_path):
    animator = Wav2LipAnimator(tmp_path)
    avail = animator.availability()
    assert not avail.ok and "models/wav2lip/wav2lip_gan.pth" in avail.reason
    with pytest.raises(BackendUnavailable, match=r"wav2lip_gan\.pth"):
        list(animator.animate(_job()))


def test_shared_model_cache_holds_and_evicts_the_network(official_checkpoint, tmp_path):
    from avatarbot.pipeline.models import ModelManager

    manager = ModelManager(tmp_path, device="cpu", max_cache_size_gb=1.0)
    animator = Wav2LipAnimator(official_checkpoint.parent.parent, model_cache=manager)
    runner = animator.runner()
    assert animator.runner() is runner
    key = f"wav2lip:{official_checkpoint}"
    assert manager.loaded_keys() == [key]
    manager.get_loaded("other", object, 2**30)  # 1 GiB newcomer pushes Wav2Lip out
    assert manager.loaded_keys() == ["other"]
    assert animator.runner() is not runner  # reloaded on demand
