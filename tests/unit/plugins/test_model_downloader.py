from __future__ import annotations

import hashlib
import os

import pytest

from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.plugins.manager import PluginManager
from tests.helpers.http_server import serve_files

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.fixture
def manager(tmp_path):
    """The plugin over avatarbot.pipeline.download (the product's one downloader)."""
    mgr = PluginManager(tmp_path / "data")
    mgr.set_config("model_downloader", {"chunk_size": 4096})
    mgr.load_plugin("model_downloader")
    yield mgr
    mgr.shutdown()


def test_interrupted_download_resumes_with_range(manager):
    models = manager.data_dir / "models"
    with serve_files({"/m.onnx": BODY}, cut_first={"/m.onnx": 100_000}) as (base, requests):
        with pytest.raises(ExternalServiceError, match="interrupted"):
            manager.call_tool(
                "model_downloader.download", url=f"{base}/m.onnx", name="m.onnx", sha256=SHA
            )
        kept = (models / "m.onnx.part").stat().st_size
        assert 50_000 < kept <= 100_000  # what arrived before the cut (whole chunks)
        assert not (models / "m.onnx").exists()
        out = manager.call_tool(
            "model_downloader.download", url=f"{base}/m.onnx", name="m.onnx", sha256=SHA
        )
        assert requests == ["/m.onnx", f"/m.onnx range={kept}-"]
        # a second call finds the verified file and downloads nothing
        manager.call_tool(
            "model_downloader.download", url=f"{base}/m.onnx", name="m.onnx", sha256=SHA
        )
        assert len(requests) == 2
    assert (models / "m.onnx").read_bytes() == BODY and out["size"] == len(BODY)
    assert not (models / "m.onnx.part").exists()
    stats = manager.get_plugin("model_downloader").downloader.get_stats()
    assert stats["resumed"] == 1 and stats["cached"] == 1 and stats["failed"] == 1
    assert stats["bytes"] == len(BODY)  # before the cut + the resumed rest, nothing twice
    assert manager.call_tool("model_downloader.list") == {
        "models": [{"name": "m.onnx", "size": len(BODY)}]
    }
    assert manager.call_tool("model_downloader.delete", name="m.onnx") == {"deleted": True}


def test_server_without_range_support_restarts(manager):
    models = manager.data_dir / "models"
    with serve_files({"/m.bin": BODY}, cut_first={"/m.bin": 5000}, ranges=False) as (base, _):
        with pytest.raises(ExternalServiceError):
            manager.call_tool(
                "model_downloader.download", url=f"{base}/m.bin", name="m.bin", sha256=SHA
            )
        manager.call_tool(
            "model_downloader.download", url=f"{base}/m.bin", name="m.bin", sha256=SHA
        )
    assert (models / "m.bin").read_bytes() == BODY


def test_bad_checksum_and_unsafe_input_rejected(manager):
    models = manager.data_dir / "models"
    with serve_files({"/m.bin": BODY}) as (base, _):
        with pytest.raises(InvalidInput, match=r"sha256.*does not match"):
            manager.call_tool(
                "model_downloader.download", url=f"{base}/m.bin", name="m.bin", sha256="a" * 64
            )
        assert not any(models.iterdir())
        with pytest.raises(InvalidInput, match="invalid model file name"):
            manager.call_tool(
                "model_downloader.download", url=f"{base}/m.bin", name="../x.bin", sha256=SHA
            )
        with pytest.raises(InvalidInput, match="http"):
            manager.call_tool(
                "model_downloader.download", url="file:///etc/passwd", name="p", sha256=SHA
            )
        with pytest.raises(InvalidInput, match="required"):
            manager.call_tool(
                "model_downloader.download", url=f"{base}/m.bin", name="m.bin", sha256=""
            )
    manager.set_config("model_downloader", {"allowed_hosts": ["models.example.com"]})
    with pytest.raises(InvalidInput, match="allowed_hosts"):
        manager.call_tool(
            "model_downloader.download", url="http://127.0.0.1/x", name="x", sha256=SHA
        )
