"""Plugin manifests: plugin.yaml / plugin.yml / plugin.json at the root of a plugin folder."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from avatarbot.errors import InvalidInput

MANIFEST_NAMES = ("plugin.yaml", "plugin.yml", "plugin.json")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ENTRY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ToolDeclaration:
    """A tool the manifest promises; the plugin's tools() must provide `<plugin>.<name>`."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class PluginManifest:
    name: str
    version: str
    description: str = ""
    entry_point: str = "plugin:Plugin"  # "module:Class", module relative to the plugin folder
    dependencies: tuple[str, ...] = ()  # "other_plugin>=2,<3", "other ^1.2", ...
    config_schema: dict[str, dict[str, Any]] = field(default_factory=dict)
    tools: tuple[ToolDeclaration, ...] = ()
    author: str = ""
    tags: tuple[str, ...] = ()
    capability: str = "plugins"

    @property
    def module(self) -> str:
        return self.entry_point.split(":", 1)[0]

    @property
    def class_name(self) -> str:
        return self.entry_point.split(":", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "entry_point": self.entry_point,
            "dependencies": list(self.dependencies),
            "config_schema": self.config_schema,
            "tools": [{"name": t.name, "description": t.description} for t in self.tools],
            "author": self.author,
            "tags": list(self.tags),
            "capability": self.capability,
        }


def find_manifest(folder: Path) -> Path | None:
    for name in MANIFEST_NAMES:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def load_manifest(folder: Path) -> PluginManifest:
    path = find_manifest(folder)
    if path is None:
        raise InvalidInput(f"no plugin manifest ({', '.join(MANIFEST_NAMES)}) in {folder.name}")
    return read_manifest_file(path)


def read_manifest_file(path: Path) -> PluginManifest:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path.name}: not valid {path.suffix[1:]}: {exc}") from exc
    return parse_manifest(data, source=path.name)


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):  # {"other": ">=1.0"} form
        return tuple(f"{k} {v}".strip() if v else str(k) for k, v in value.items())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"manifest: {what} must be a list of strings")
    return tuple(value)


def parse_manifest(data: Any, source: str = "manifest") -> PluginManifest:
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: must be a mapping")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(f"{source}: name must match {NAME_RE.pattern}, got {name!r}")
    version = str(data.get("version", ""))
    try:
        Version(version)
    except InvalidVersion as exc:
        raise InvalidInput(f"{source}: version {version!r} is not a valid version") from exc
    entry = data.get("entry_point", data.get("entry", "plugin:Plugin"))
    if not isinstance(entry, str) or not ENTRY_RE.match(entry):
        raise InvalidInput(f"{source}: entry_point must look like 'module:Class', got {entry!r}")
    schema = data.get("config_schema", data.get("config", {})) or {}
    if not isinstance(schema, dict) or not all(isinstance(v, dict) for v in schema.values()):
        raise InvalidInput(f"{source}: config_schema must map field names to field definitions")
    tools: list[ToolDeclaration] = []
    for item in data.get("tools", []) or []:
        if isinstance(item, str):
            tools.append(ToolDeclaration(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            tools.append(ToolDeclaration(item["name"], str(item.get("description", ""))))
        else:
            raise InvalidInput(f"{source}: each tool needs a name")
    return PluginManifest(
        name=name,
        version=version,
        description=str(data.get("description", "")),
        entry_point=entry,
        dependencies=_str_list(data.get("dependencies"), "dependencies"),
        config_schema=schema,
        tools=tuple(tools),
        author=str(data.get("author", "")),
        tags=_str_list(data.get("tags"), "tags"),
        capability=str(data.get("capability", "plugins")),
    )
