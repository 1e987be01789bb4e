"""Plugin management API. Installing or changing plugins is superuser-only: plugin code runs
in-process with the server's full rights. Secret config values are never returned."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from avatarbot.api.deps import CurrentUser, ServicesDep, SessionDep, SuperUser
from avatarbot.errors import BackendUnavailable, InvalidInput, TooLarge
from avatarbot.plugins.config import SECRET_MASK
from avatarbot.plugins.install import MAX_ARCHIVE_BYTES
from avatarbot.plugins.service import PluginService
from avatarbot.storage.models import PluginState

router = APIRouter(prefix="/plugins", tags=["plugins"])


def get_plugins(services: ServicesDep) -> PluginService:
    if services.plugins is None:
        raise BackendUnavailable("the plugin system is not running")
    return services.plugins


PluginsDep = Annotated[PluginService, Depends(get_plugins)]


class ReloadRequest(BaseModel):
    name: str | None = Field(None, description="plugin to reload; omitted = every loaded plugin")


class ConfigUpdate(BaseModel):
    values: dict[str, Any]


class SyncRequest(BaseModel):
    url: str = Field(..., description="registry index URL (JSON)")


async def _record_state(
    session: Any, info: dict[str, Any], source: str | None = None, sha256: str | None = None
) -> None:
    """Mirror a plugin's state into plugin_states (the manager's own record is the JSON file
    in DATA_DIR, which also serves the CLI); kept for audit and for other processes to read."""
    row = await session.get(PluginState, info["name"])
    if row is None:
        row = PluginState(name=info["name"])
        session.add(row)
    row.version = str(info.get("version") or "")
    row.enabled = bool(info.get("enabled", True))
    row.source = source or ("builtin" if info.get("origin") == "builtin" else "local")
    if sha256:
        row.sha256 = sha256.lower()
    await session.commit()


@router.get("/list")
async def list_plugins(_user: CurrentUser, plugins: PluginsDep) -> dict[str, Any]:
    """Every discovered plugin: version, origin, enabled/loaded, dependencies, tools, error."""
    return {"plugins": await asyncio.to_thread(plugins.describe_all)}


@router.get("/tools")
async def list_tools(_user: CurrentUser, plugins: PluginsDep) -> dict[str, Any]:
    """Tools that enabled plugins offer agents: name, description, JSON-schema parameters."""
    return {
        "tools": [
            {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "capability": t.capability,
                "source": t.source,
            }
            for t in plugins.all_tools()
        ]
    }


async def _save_upload(upload: UploadFile, folder: Path) -> Path:
    target = folder / "upload.bin"
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > MAX_ARCHIVE_BYTES:
                raise TooLarge("plugin archive is larger than 200 MB")
            out.write(chunk)
    if size == 0:
        raise InvalidInput("the uploaded archive is empty")
    return target


# The body is read by hand (multipart *or* JSON), so FastAPI cannot infer it: documented here.
INSTALL_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "sha256"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "the plugin archive (.zip, .whl or .tar.gz)",
                    },
                    "sha256": {
                        "type": "string",
                        "pattern": "^[0-9a-fA-F]{64}$",
                        "description": "SHA-256 of the archive (hex)",
                    },
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "description": "a plugin from the synced registry",
                    }
                },
            }
        },
    },
}


@router.post("/install", openapi_extra={"requestBody": INSTALL_REQUEST_BODY})
async def install_plugin(
    request: Request, user: SuperUser, plugins: PluginsDep, session: SessionDep
) -> dict[str, Any]:
    """Multipart `file` (.zip/.whl/.tar.gz) + `sha256`, or JSON {"name"} from the synced registry."""
    actor = user.email
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload, sha256 = form.get("file"), form.get("sha256")
        if not isinstance(upload, UploadFile) or not isinstance(sha256, str) or not sha256:
            raise InvalidInput("send the archive as `file` and its `sha256`")
        folder = Path(tempfile.mkdtemp(prefix="avatarbot-plugin-upload-"))
        try:
            archive = await _save_upload(upload, folder)
            info = await asyncio.to_thread(plugins.install_archive, archive, sha256, actor=actor)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        await _record_state(session, info, "local", sha256)
    else:
        try:
            body = await request.json()
        except ValueError as exc:
            raise InvalidInput('send multipart (file, sha256) or JSON {"name": ...}') from exc
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidInput("JSON body needs the registry plugin `name`")
        info = await asyncio.to_thread(plugins.install_from_registry, name, actor=actor)
        entry = plugins.registry.get(name)
        await _record_state(session, info, "registry", entry.sha256 if entry else None)
    return {"installed": True, "plugin": info}


@router.post("/reload")
async def reload_plugins(
    body: ReloadRequest, _user: SuperUser, plugins: PluginsDep
) -> dict[str, Any]:
    """Hot-reload from disk. A failing reload keeps the previous version serving (422 for one)."""
    results = await asyncio.to_thread(plugins.reload, body.name)
    if body.name and not results[body.name]["ok"]:
        item = results[body.name]
        raise InvalidInput(f"{item['error']} (version {item['version']} keeps serving)")
    return {"results": results}


@router.post("/{name}/enable")
async def enable_plugin(
    name: str, _user: SuperUser, plugins: PluginsDep, session: SessionDep
) -> dict[str, Any]:
    async with plugins.state_change():
        try:
            await asyncio.to_thread(plugins.enable, name)
        finally:  # enabled even when loading then fails (the error is reported)
            if plugins.is_enabled(name):
                await _record_state(session, await asyncio.to_thread(plugins.describe, name))
    return await asyncio.to_thread(plugins.describe, name)


@router.post("/{name}/disable")
async def disable_plugin(
    name: str, _user: SuperUser, plugins: PluginsDep, session: SessionDep
) -> dict[str, Any]:
    async with plugins.state_change():
        await asyncio.to_thread(plugins.disable, name)
        info = await asyncio.to_thread(plugins.describe, name)
        await _record_state(session, info)
    return info


def _schema_view(config: Any) -> dict[str, Any]:
    return {
        field.name: {
            "type": field.type,
            "required": field.required,
            "default": SECRET_MASK if field.secret and field.default else field.default,
            "description": field.description,
            "choices": field.choices,
            "min": field.min_value,
            "max": field.max_value,
            "secret": field.secret,
        }
        for field in config.schema.fields.values()
    }


@router.get("/{name}/config")
async def get_config(name: str, _user: SuperUser, plugins: PluginsDep) -> dict[str, Any]:
    config = await asyncio.to_thread(plugins.config_for, name)
    return {"values": config.as_dict(mask_secrets=True), "schema": _schema_view(config)}


@router.put("/{name}/config")
async def put_config(
    name: str, body: ConfigUpdate, _user: SuperUser, plugins: PluginsDep
) -> dict[str, Any]:
    """Validate, save and apply (the plugin is reloaded). A masked secret sent back unchanged
    keeps its stored value, so clients can round-trip GET -> PUT."""
    values = {k: v for k, v in body.values.items() if v != SECRET_MASK}
    saved = await asyncio.to_thread(plugins.set_config, name, values)
    return {"values": saved}


@router.get("/registry")
async def registry_list(
    _user: CurrentUser, plugins: PluginsDep, query: str | None = None, tag: str | None = None
) -> dict[str, Any]:
    entries = plugins.registry.search(query, [tag] if tag else None)
    return {
        "plugins": [{k: v for k, v in e.to_dict().items() if k != "sha256"} for e in entries],
        "stats": plugins.registry.get_stats(),
    }


@router.post("/registry/sync")
async def registry_sync(body: SyncRequest, _user: SuperUser, plugins: PluginsDep) -> dict:
    """Fetch a registry index: adds available plugins and reports updates for installed ones."""
    ok, message = await asyncio.to_thread(plugins.registry.sync_from_remote, body.url)
    if not ok:
        raise InvalidInput(message)
    updates = await asyncio.to_thread(plugins.registry.check_updates, body.url)
    return {
        "message": message,
        "updates": [{"name": n, "installed": c, "latest": v} for n, c, v in updates],
    }
