"""GFPGAN v1.4: exact official keys; a generated params_ema checkpoint restores a face."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from avatarbot.errors import BackendUnavailable, InvalidInput
from tests.helpers.neural_fixtures import drawn_portrait, manifest_tensors

torch = pytest.importorskip("torch")

from avatarbot.pipeline.enhancers.gfpgan import GFPGANEnhancer  # noqa: E402
from avatarbot.pipeline.enhancers.gfpgan.network import GFPGANv1Clean  # noqa: E402
from avatarbot.pipeline.enhancers.gfpgan.runtime import load_gfpgan  # noqa: E402

FACE_BOX = (80, 70, 96, 120)


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory) -> Path:
    """Laid out like GFPGANv1.4.pth: legacy torch format, {"params_ema": state_dict}, no prefix."""
    torch.manual_seed(0)
    net = GFPGANv1Clean()
    for name, module in net.named_modules():
        if name.endswith("modulation"):  # the official init: bias 1 keeps styles near identity
            module.bias.data.fill_(1.0)
    path = tmp_path_factory.mktemp("models") / "gfpgan" / "GFPGANv1.4.pth"
    path.parent.mkdir(parents=True)
    torch.save({"params_ema": net.state_dict()}, path, _use_new_zipfile_serialization=False)
    return path


def test_state_dict_matches_official_manifest_exactly():
    expected = manifest_tensors("gfpgan_v1.4.json")
    state = GFPGANv1Clean().state_dict()
    assert list(state) == list(expected)
    for key, meta in expected.items():
        assert list(state[key].shape) == meta["shape"], key
    assert sum(p.numel() for p in GFPGANv1Clean().parameters()) == 86_444_252


def test_loader_reads_params_ema_and_rejects_other_nets(official_checkpoint, tmp_path):
    model = load_gfpgan(official_checkpoint)
    saved = torch.load(official_checkpoint, map_location="cpu", weights_only=True)["params_ema"]
    assert torch.equal(model.state_dict()["final_linear.weight"], saved["final_linear.weight"])
    bad = tmp_path / "x.pth"
    torch.save({"params_ema": {"conv.weight": torch.zeros(1)}}, bad)
    with pytest.raises(InvalidInput, match="not a GFPGAN"):
        load_gfpgan(bad)


def _assert_face_restored(frame: np.ndarray, out: np.ndarray) -> None:
    assert out.shape == frame.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    x, y, w, h = FACE_BOX
    assert diff[y + h // 2, x + w // 2] > 0, "face centre unchanged"
    assert diff[:20].sum() == 0 and diff[-20:].sum() == 0, "pixels far from the face changed"


@pytest.mark.slow
def test_generated_checkpoint_torch_and_onnx(official_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    from avatarbot.pipeline.enhancers.gfpgan.runtime import OnnxGFPGAN, export_onnx

    frame = drawn_portrait(256, 320)
    enhancer = GFPGANEnhancer(official_checkpoint.parent.parent, runtime="torch")
    assert enhancer.availability().ok
    enhancer.runner()
    t0 = time.perf_counter()
    out_torch = enhancer.enhance(frame, FACE_BOX)
    print(f"gfpgan torch CPU: {(time.perf_counter() - t0) * 1000:.0f} ms/face")
    _assert_face_restored(frame, out_torch)

    onnx_path = export_onnx(enhancer.runner().module, tmp_path / "gfpgan" / "GFPGANv1.4.onnx")
    onnx_enhancer = GFPGANEnhancer(tmp_path, runtime="onnx")
    assert onnx_enhancer.resolve_checkpoint() == onnx_path
    assert isinstance(onnx_enhancer.runner(), OnnxGFPGAN)
    t0 = time.perf_counter()
    out_onnx = onnx_enhancer.enhance(frame, FACE_BOX)
    print(f"gfpgan onnx CPU: {(time.perf_counter() - t0) * 1000:.0f} ms/face")
    _assert_face_restored(frame, out_onnx)
    # Same weights, same stored noise: the runtimes agree to rounding.
    assert np.abs(out_onnx.astype(int) - out_torch.astype(int)).max() <= 2


def test_unavailable_without_checkpoint(tmp_path):
    enhancer = GFPGANEnhancer(tmp_path)
    assert "models/gfpgan/GFPGANv1.4.pth" in enhancer.availability().reason
    with pytest.raises(BackendUnavailable, match="GFPGANv1"):
        enhancer.enhance(drawn_portrait(), FACE_BOX)
