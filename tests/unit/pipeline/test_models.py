"""ModelManager: catalogue, cache layout, verify, licences, LRU, device info; `models` CLI."""

from __future__ import annotations

import hashlib
import os

import pytest
from typer.testing import CliRunner

from avatarbot.errors import NotFound, PermissionDenied
from avatarbot.pipeline.model_catalogue import ModelFile, ModelInfo
from avatarbot.pipeline.models import ModelManager
from avatarbot.pipeline.models_cli import app
from tests.helpers.range_server import ServerState, range_server

BLOB = os.urandom(50_000)
TOY = ModelInfo(
    name="toy",
    version="1.0",
    backend="toy",
    files=(ModelFile("toy.bin", hashlib.sha256(BLOB).hexdigest(), len(BLOB), None),),
    license="Apache-2.0",
    commercial_use=True,
    source_url="https://example.invalid/toy",
)


def _mgr(tmp_path, **kw) -> ModelManager:
    return ModelManager(tmp_path / "models", device="cpu", catalogue=[TOY], **kw)


def test_catalogue_round_trip_and_versions(tmp_path):
    mgr = ModelManager(tmp_path, device="cpu")
    info = mgr.get_model_info("gfpgan_v1.4")
    assert info.license == "Apache-2.0" and info.commercial_use
    assert ModelInfo.from_dict(info.to_dict()) == info
    assert not mgr.get_model_info("wav2lip_gan").commercial_use
    mgr.register_model(ModelInfo.from_dict({**info.to_dict(), "version": "1.10"}))
    assert mgr.get_model_info("gfpgan_v1.4").version == "1.10"  # numeric, not lexical
    assert mgr.get_model_info("gfpgan_v1.4", "1.4") == info
    with pytest.raises(NotFound, match="unknown model"):
        mgr.status("nope")


def test_placed_file_verify_and_corruption(tmp_path):
    mgr = _mgr(tmp_path)
    assert "missing" in mgr.status("toy").reason and "place it by hand" in mgr.status("toy").reason
    path = tmp_path / "models" / "toy" / "toy.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(BLOB)
    assert mgr.status("toy").ok and mgr.get_model_path("toy") == path
    assert [c.ok for c in mgr.verify("toy")] == [True]
    path.write_bytes(BLOB[:-1] + bytes([BLOB[-1] ^ 1]))
    (check,) = mgr.verify("toy")
    assert not check.ok and "sha256" in check.problem
    path.write_bytes(BLOB[:10])
    assert "size" in mgr.verify("toy")[0].problem


def test_explicit_path_override(tmp_path):
    elsewhere = tmp_path / "mine.bin"
    elsewhere.write_bytes(BLOB)
    mgr = _mgr(tmp_path, paths={"toy": elsewhere})
    assert mgr.get_model_path("toy") == elsewhere and mgr.verify("toy")[0].ok
    assert mgr.delete_model("toy") is False and elsewhere.exists()  # never deletes user files


def test_commercial_deployment_refuses_non_commercial_models(tmp_path):
    mgr = ModelManager(tmp_path, device="cpu", commercial=True)
    assert "forbids commercial use" in mgr.status("wav2lip_gan").reason
    with pytest.raises(PermissionDenied, match="non-commercial"):
        mgr.download("wav2lip_gan")
    assert not ModelManager(tmp_path, device="cpu").status("wav2lip_gan").ok  # file missing


def test_download_into_cache_layout(tmp_path):
    state = ServerState(files={"/toy.bin": BLOB})
    mgr = _mgr(tmp_path)
    with range_server(state) as base:
        (path,) = mgr.download("toy", url=f"{base}/toy.bin")
    assert path == tmp_path / "models" / "toy" / "toy.bin" and mgr.is_model_cached("toy")
    with pytest.raises(NotFound, match="no download URL"):
        ModelManager(tmp_path / "b", device="cpu").download("wav2lip")


def test_lru_eviction_by_memory_budget(tmp_path):
    mgr = _mgr(tmp_path, max_cache_size_gb=3 / 1024)  # 3 MiB budget
    loads: list[str] = []

    def loader(name):
        return lambda: loads.append(name) or name

    mib = 2**20
    assert mgr.get_loaded("a", loader("a"), mib) == "a"
    mgr.get_loaded("b", loader("b"), mib)
    mgr.get_loaded("a", loader("a"), mib)  # hit: a becomes most recent
    mgr.get_loaded("c", loader("c"), 2 * mib)  # 4 MiB > 3: evict the LRU (b)
    assert mgr.loaded_keys() == ["a", "c"] and loads == ["a", "b", "c"]
    mgr.get_loaded("huge", loader("huge"), 10 * mib)  # alone over budget: still kept
    assert mgr.loaded_keys() == ["huge"]
    assert mgr.get_cache_stats()["loaded_bytes"] == 10 * mib


def test_device_info_without_gpu(tmp_path):
    mgr = ModelManager(tmp_path)
    info = mgr.get_device_info()
    assert info["device"] in {"cpu", "cuda", "mps"} and info["ram_total_mb"] > 0
    mgr.set_device("cpu")
    assert mgr.get_device() == "cpu"
    with pytest.raises(ValueError):
        mgr.set_device("tpu")


def test_cli_list_verify_download(tmp_path, monkeypatch):
    monkeypatch.delenv("AVATARBOT_PIPELINE__COMMERCIAL_USE", raising=False)
    runner = CliRunner()
    data = tmp_path / "data"
    res = runner.invoke(app, ["list", "--data-dir", str(data)])
    assert res.exit_code == 0, res.output
    assert "gfpgan_v1.4" in res.output and "unavailable: missing" in res.output
    assert "wav2lip: unavailable: missing models/wav2lip/wav2lip_gan.pth" in res.output

    gfpgan = data / "models" / "gfpgan" / "GFPGANv1.4.pth"
    gfpgan.parent.mkdir(parents=True)
    gfpgan.write_bytes(b"not the real weights")
    res = runner.invoke(app, ["verify", "--data-dir", str(data)])
    assert res.exit_code == 1 and "FAILED" in res.output and "corrupted" in res.output
    res = runner.invoke(app, ["verify", "gfpgan_v1.4", "--data-dir", str(data)])
    assert res.exit_code == 1

    state = ServerState(files={"/w.pth": b"weights"})
    with range_server(state) as base:
        res = runner.invoke(
            app, ["download", "wav2lip", "--url", f"{base}/w.pth", "--data-dir", str(data)]
        )
    assert res.exit_code == 0, res.output
    assert (data / "models" / "wav2lip" / "wav2lip.pth").read_bytes() == b"weights"
    res = runner.invoke(app, ["download", "wav2lip_gan", "--data-dir", str(data)])
    assert res.exit_code == 1 and "no download URL" in res.output
