from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
import zipfile

import pytest

from avatarbot.errors import InvalidInput
from avatarbot.plugins.install import PluginInstaller
from avatarbot.plugins.manager import PluginManager
from avatarbot.plugins.registry import PluginRegistry
from tests.helpers.plugin_factory import PLUGIN_TEMPLATE

MANIFEST = "name: hello\nversion: 1.2.0\nentry_point: main:TestPlugin\ntools: [ask]\n"
SOURCE = PLUGIN_TEMPLATE.format(cls="TestPlugin", answer="hello from archive")


def make_zip(path, members: dict[str, bytes], symlink: str | None = None):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def installer(tmp_path):
    return PluginInstaller(tmp_path / "data", PluginRegistry(tmp_path / "data" / "registry.json"))


def test_install_zip_then_load(installer, tmp_path):
    archive = tmp_path / "hello.zip"
    digest = make_zip(archive, {"hello/plugin.yaml": MANIFEST, "hello/main.py": SOURCE})
    manifest = installer.install_archive(archive, digest.upper(), actor="admin@example.com")
    assert manifest.name == "hello"
    assert (installer.plugins_dir / "hello" / "main.py").is_file()
    assert [p.name for p in installer.plugins_dir.iterdir()] == ["hello"]  # staging removed
    logged = [json.loads(line) for line in installer.log_path.read_text().splitlines()]
    assert logged[-1]["ok"] and logged[-1]["actor"] == "admin@example.com"
    assert installer.registry.get("hello").installed
    manager = PluginManager(installer.data_dir, builtin_dir=None)
    manager.load_plugin("hello")
    assert manager.call_tool("hello.ask")["answer"] == "hello from archive"
    manager.shutdown()


def test_install_tar_gz_replaces_previous(installer, tmp_path):
    archive = tmp_path / "hello.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in {"plugin.yaml": MANIFEST, "main.py": SOURCE}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (installer.plugins_dir / "hello").mkdir(parents=True)
    (installer.plugins_dir / "hello" / "stale.py").write_text("old")
    installer.install_archive(archive, digest, actor="admin")
    assert files_under(installer.plugins_dir / "hello") == ["main.py", "plugin.yaml"]


@pytest.mark.parametrize(
    "members",
    [
        {"hello/plugin.yaml": MANIFEST, "../escaped.py": "print('pwned')"},
        {"hello/plugin.yaml": MANIFEST, "hello/../../escaped.py": "x"},
        {"plugin.yaml": MANIFEST, "/tmp/escaped.py": "x"},
    ],
)
def test_traversal_rejected_and_nothing_written(installer, tmp_path, members):
    archive = tmp_path / "evil.zip"
    digest = make_zip(archive, members)
    before = files_under(tmp_path)
    with pytest.raises(InvalidInput, match=r"escapes|absolute"):
        installer.install_archive(archive, digest, actor="admin")
    after = [p for p in files_under(tmp_path) if not p.startswith("data/logs")]
    assert after == sorted([*before, "data", "data/plugins"])
    assert list(installer.plugins_dir.iterdir()) == []
    assert not (tmp_path.parent / "escaped.py").exists()
    assert json.loads(installer.log_path.read_text().splitlines()[-1])["ok"] is False


def test_symlink_member_rejected(installer, tmp_path):
    archive = tmp_path / "link.zip"
    digest = make_zip(archive, {"plugin.yaml": MANIFEST}, symlink="main.py")
    with pytest.raises(InvalidInput, match="link"):
        installer.install_archive(archive, digest, actor="admin")
    assert list(installer.plugins_dir.iterdir()) == []


def test_tar_symlink_rejected(installer, tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("plugin.yaml")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(InvalidInput, match="link"):
        installer.install_archive(archive, digest, actor="admin")


def test_wrong_sha256_rejected(installer, tmp_path):
    archive = tmp_path / "hello.zip"
    make_zip(archive, {"plugin.yaml": MANIFEST, "main.py": SOURCE})
    with pytest.raises(InvalidInput, match="sha256"):
        installer.install_archive(archive, "0" * 64, actor="admin")
    assert not installer.plugins_dir.exists()  # checked before anything was created


def test_archive_without_manifest_rejected(installer, tmp_path):
    archive = tmp_path / "none.zip"
    digest = make_zip(archive, {"main.py": SOURCE})
    with pytest.raises(InvalidInput, match="manifest"):
        installer.install_archive(archive, digest, actor="admin")
    assert list(installer.plugins_dir.iterdir()) == []


def test_wheel_dropped_into_plugins_folder_is_discovered(tmp_path):
    data = tmp_path / "data"
    (data / "plugins").mkdir(parents=True)
    make_zip(
        data / "plugins" / "hello-1.2.0-py3-none-any.whl",
        {
            "hello/plugin.yaml": MANIFEST,
            "hello/main.py": SOURCE,
            "hello-1.2.0.dist-info/METADATA": "Name: hello\n",
        },
    )
    manager = PluginManager(data, builtin_dir=None)
    assert manager.load_all() == {"hello": None}
    assert manager.describe("hello")["origin"] == "archive"
    assert manager.call_tool("hello.ask")["answer"] == "hello from archive"
    manager.shutdown()
