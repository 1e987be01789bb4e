"""Plugins REST API through the real app (lifespan, auth, SQLite)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from avatarbot.app import create_app
from avatarbot.storage.models import PluginState
from tests.conftest import make_settings, register_and_login
from tests.helpers.http_server import serve_files
from tests.helpers.plugin_factory import PLUGIN_TEMPLATE


def archive_bytes(version: str, answer: str, *, evil: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(
            "hello/plugin.yaml",
            f"name: hello\nversion: {version}\nentry_point: main:TestPlugin\n"
            "config_schema:\n  token: {type: string, secret: true, default: ''}\n"
            "  limit: {type: integer, default: 3, min: 1, max: 10}\n",
        )
        zf.writestr("hello/main.py", PLUGIN_TEMPLATE.format(cls="TestPlugin", answer=answer))
        if evil:
            zf.writestr("../../outside.txt", "pwned")
    return buffer.getvalue()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict, dict, object]]:
    settings = make_settings(tmp_path, auth={"secret_key": "k" * 40, "open_registration": True})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admin = await register_and_login(client)
            user = await register_and_login(client, email="user@example.com")
            yield client, admin, user, app


async def test_list_requires_auth_and_shows_builtins(env):
    client, _admin, user, _app = env
    assert (await client.get("/api/v1/plugins/list")).status_code == 401
    r = await client.get("/api/v1/plugins/list", headers=user)
    assert r.status_code == 200
    plugins = {p["name"]: p for p in r.json()["plugins"]}
    assert {
        "cache_manager",
        "image_processor",
        "video_editor",
        "audio_enhancer",
        "model_downloader",
    } <= set(plugins)
    assert (
        plugins["video_editor"]["loaded"]
        and "video_editor.trim" in plugins["video_editor"]["tools"]
    )
    r = await client.get("/api/v1/plugins/tools", headers=user)
    tools = {t["name"]: t for t in r.json()["tools"]}
    trim = tools["video_editor.trim"]
    assert trim["capability"] == "video" and trim["source"] == "plugin:video_editor"
    assert trim["parameters"]["required"] == ["input_path", "output_path"]
    assert tools["cache_manager.get"]["capability"] == "plugins"


async def test_install_upload_reload_config_disable(env, tmp_path):
    client, admin, user, app = env
    body = archive_bytes("1.0.0", "v1")
    digest = hashlib.sha256(body).hexdigest()
    files = {"file": ("hello.zip", body, "application/zip")}
    r = await client.post(
        "/api/v1/plugins/install", files=files, data={"sha256": digest}, headers=user
    )
    assert r.status_code == 403
    r = await client.post(
        "/api/v1/plugins/install", files=files, data={"sha256": "0" * 64}, headers=admin
    )
    assert r.status_code == 422 and "sha256" in r.json()["detail"]
    r = await client.post(
        "/api/v1/plugins/install", files=files, data={"sha256": digest}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["plugin"]["loaded"] and r.json()["plugin"]["version"] == "1.0.0"
    services = app.state.services
    assert (await services.plugins.acall_tool("hello.ask"))["answer"] == "v1"
    log_lines = (services.settings.data_dir / "logs" / "plugin_installs.log").read_text()
    assert "admin@example.com" in log_lines

    # edit on disk -> reload via the API -> v2 serves, no restart
    main_py = services.settings.data_dir / "plugins" / "hello" / "main.py"
    main_py.write_text(PLUGIN_TEMPLATE.format(cls="TestPlugin", answer="v2"))
    r = await client.post("/api/v1/plugins/reload", json={"name": "hello"}, headers=admin)
    assert r.status_code == 200 and r.json()["results"]["hello"]["ok"]
    assert (await services.plugins.acall_tool("hello.ask"))["answer"] == "v2"
    main_py.write_text("def broken(:\n")
    r = await client.post("/api/v1/plugins/reload", json={"name": "hello"}, headers=admin)
    assert r.status_code == 422 and "keeps serving" in r.json()["detail"]
    assert "SyntaxError" in r.json()["detail"]
    assert (await services.plugins.acall_tool("hello.ask"))["answer"] == "v2"
    r = await client.put(
        "/api/v1/plugins/hello/config", json={"values": {"limit": 4}}, headers=admin
    )
    assert r.status_code == 422 and "settings not applied" in r.json()["detail"]
    main_py.write_text(PLUGIN_TEMPLATE.format(cls="TestPlugin", answer="v2"))

    # config: secrets masked, validation errors as 422, masked value round-trips
    r = await client.put(
        "/api/v1/plugins/hello/config",
        json={"values": {"token": "s3cr3t", "limit": 5}},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["values"]["token"] == "********"
    r = await client.get("/api/v1/plugins/hello/config", headers=admin)
    assert r.json()["values"] == {"token": "********", "limit": 5}
    assert r.json()["schema"]["limit"]["max"] == 10
    assert "s3cr3t" not in r.text
    r = await client.put(
        "/api/v1/plugins/hello/config",
        json={"values": {"token": "********", "limit": 11}},
        headers=admin,
    )
    assert r.status_code == 422 and "at most 10" in r.json()["detail"]
    assert (await client.get("/api/v1/plugins/hello/config", headers=user)).status_code == 403

    r = await client.post("/api/v1/plugins/hello/disable", headers=admin)
    assert r.status_code == 200 and not r.json()["enabled"] and not r.json()["loaded"]
    async with services.db.session() as session:
        row = await session.get(PluginState, "hello")
        assert row is not None and row.enabled is False and row.sha256 == digest
        assert row.source == "local" and row.version == "1.0.0"
    assert all(t.name != "hello.ask" for t in services.plugins.all_tools())
    main_py.write_text("def broken(:\n")
    r = await client.post("/api/v1/plugins/hello/enable", headers=admin)
    assert r.status_code == 422 and "SyntaxError" in r.json()["detail"]
    r = await client.post("/api/v1/plugins/nope/enable", headers=admin)
    assert r.status_code == 404


async def test_traversal_archive_rejected(env, tmp_path):
    client, admin, _user, app = env
    body = archive_bytes("1.0.0", "v1", evil=True)
    files = {"file": ("evil.zip", body, "application/zip")}
    digest = hashlib.sha256(body).hexdigest()
    r = await client.post(
        "/api/v1/plugins/install", files=files, data={"sha256": digest}, headers=admin
    )
    assert r.status_code == 422 and "escapes" in r.json()["detail"]
    data_dir = app.state.services.settings.data_dir
    assert not (data_dir / "plugins" / "hello").exists()
    assert not list(tmp_path.rglob("outside.txt"))


async def test_registry_sync_and_install_by_name(env):
    client, admin, user, app = env
    body = archive_bytes("2.0.0", "from registry")
    with serve_files({"/hello.zip": body}) as (base, _):
        index = {
            "plugins": [
                {
                    "name": "hello",
                    "version": "2.0.0",
                    "author": "ana",
                    "tags": ["demo"],
                    "download_url": f"{base}/hello.zip",
                    "sha256": hashlib.sha256(body).hexdigest(),
                },
                {"name": "video_editor", "version": "9.0.0"},
            ]
        }
        with serve_files({"/index.json": json.dumps(index).encode()}) as (index_base, _):
            r = await client.post(
                "/api/v1/plugins/registry/sync",
                json={"url": f"{index_base}/index.json"},
                headers=admin,
            )
        assert r.status_code == 200, r.text
        assert {"name": "video_editor", "installed": "1.0.0", "latest": "9.0.0"} in r.json()[
            "updates"
        ]
        r = await client.get("/api/v1/plugins/registry?tag=demo", headers=user)
        assert [p["name"] for p in r.json()["plugins"]] == ["hello"]
        r = await client.post("/api/v1/plugins/install", json={"name": "hello"}, headers=admin)
    assert r.status_code == 200, r.text
    assert (await app.state.services.plugins.acall_tool("hello.ask"))["answer"] == "from registry"
    r = await client.post("/api/v1/plugins/install", json={"name": "ghost"}, headers=admin)
    assert r.status_code == 404


async def test_broken_plugin_does_not_stop_the_server(tmp_path):
    settings = make_settings(tmp_path)
    broken = settings.data_dir / "plugins" / "broken"
    broken.mkdir(parents=True)
    (broken / "plugin.yaml").write_text("name: broken\nversion: 1.0.0\nentry_point: main:X\n")
    (broken / "main.py").write_text("raise RuntimeError('boom at import')\n")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = await register_and_login(client)
            assert (await client.get("/health")).status_code == 200
            rows = {
                p["name"]: p
                for p in (await client.get("/api/v1/plugins/list", headers=headers)).json()[
                    "plugins"
                ]
            }
    assert "boom at import" in rows["broken"]["error"] and not rows["broken"]["loaded"]
    assert rows["cache_manager"]["loaded"] and rows["cache_manager"]["error"] is None
