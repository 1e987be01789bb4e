"""PluginRegistry against a real HTTP server on 127.0.0.1; install by registry name."""

from __future__ import annotations

import hashlib
import json
import zipfile

from avatarbot.plugins.install import PluginInstaller
from avatarbot.plugins.registry import PluginMetadata, PluginRegistry
from tests.helpers.http_server import serve_files
from tests.helpers.plugin_factory import PLUGIN_TEMPLATE


def test_sync_search_updates_and_persistence(tmp_path):
    registry = PluginRegistry(tmp_path / "registry.json")
    registry.register(
        PluginMetadata("weather", "1.0.0", "Weather reports", "ana", ["web"], installed=True)
    )
    index = {
        "plugins": [
            {"name": "weather", "version": "1.2.0", "author": "ana", "tags": ["web"]},
            {"name": "stocks", "version": "0.3.0", "description": "Stock quotes", "author": "bo"},
        ]
    }
    files = {"/index.json": json.dumps(index).encode()}
    with serve_files(files) as (base, requests):
        assert registry.check_updates(f"{base}/index.json") == [("weather", "1.0.0", "1.2.0")]
        ok, message = registry.sync_from_remote(f"{base}/index.json")
        assert ok, message
        assert requests == ["/index.json", "/index.json"]
        ok, message = registry.sync_from_remote(f"{base}/missing.json")
        assert not ok and "404" in message
    assert registry.get("weather").installed and registry.get("weather").version == "1.0.0"
    assert registry.get("stocks").source == "remote" and not registry.get("stocks").installed
    assert [p.name for p in registry.search("quotes")] == ["stocks"]
    assert [p.name for p in registry.search(tags=["web"])] == ["weather"]
    assert [p.name for p in registry.search(author="BO")] == ["stocks"]
    stats = registry.get_stats()
    assert stats["total"] == 2 and stats["installed"] == 1 and stats["updates_available"] == 1
    assert stats["by_author"] == {"ana": 1, "bo": 1}

    reopened = PluginRegistry(tmp_path / "registry.json")
    assert [p.name for p in reopened.list_all()] == ["stocks", "weather"]
    exported = tmp_path / "export.json"
    reopened.export_to_file(exported)
    fresh = PluginRegistry(tmp_path / "other.json")
    assert fresh.import_from_file(exported, merge=False) == (True, "imported 2 plugins")
    assert fresh.get("weather").latest_version == "1.2.0"
    assert fresh.unregister("stocks") and not fresh.unregister("stocks")


def test_corrupt_registry_is_moved_aside(tmp_path):
    path = tmp_path / "registry.json"
    path.write_text("{not json")
    registry = PluginRegistry(path)
    assert registry.list_all() == []
    assert len(list(tmp_path.glob("registry.json.corrupt-*"))) == 1


def test_install_by_name_from_registry(tmp_path):
    archive = tmp_path / "hello.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("plugin.yaml", "name: hello\nversion: 2.0.0\nentry_point: main:TestPlugin\n")
        zf.writestr("main.py", PLUGIN_TEMPLATE.format(cls="TestPlugin", answer="remote"))
    body = archive.read_bytes()
    registry = PluginRegistry(tmp_path / "data" / "registry.json")
    installer = PluginInstaller(tmp_path / "data", registry)
    with serve_files({"/hello.zip": body}) as (base, _):
        index = [
            {
                "name": "hello",
                "version": "2.0.0",
                "download_url": f"{base}/hello.zip",
                "sha256": hashlib.sha256(body).hexdigest(),
            }
        ]
        index_files = {"/index.json": json.dumps(index).encode()}
        with serve_files(index_files) as (index_base, _):
            assert registry.sync_from_remote(f"{index_base}/index.json")[0]
        manifest = installer.install_from_registry("hello", actor="root")
    assert manifest.version == "2.0.0"
    assert (installer.plugins_dir / "hello" / "main.py").is_file()
    assert registry.get("hello").installed
