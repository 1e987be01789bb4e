"""PluginRegistry: a JSON-persisted index of installed and available plugins.

The remote registry index is JSON served over HTTP: either a list of plugin entries or
`{"plugins": [...]}`, each entry with name, version, description, author, tags, and the
download_url + sha256 that installation needs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
from packaging.version import InvalidVersion, Version

from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.plugins.fsutil import atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class PluginMetadata:
    name: str
    version: str
    description: str = ""
    author: str = ""
    tags: list[str] = field(default_factory=list)
    homepage: str = ""
    download_url: str = ""
    sha256: str = ""
    dependencies: list[str] = field(default_factory=list)
    installed: bool = False
    latest_version: str = ""  # newest version seen in a remote index
    source: str = "local"  # "local" | "remote" | "builtin"
    updated_at: float = field(default_factory=time.time)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PluginMetadata:
        if not isinstance(data, dict) or not data.get("name") or not data.get("version"):
            raise InvalidInput("registry entry needs a name and a version")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["version"] = str(values["version"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _newer(candidate: str, current: str) -> bool:
    try:
        return Version(candidate) > Version(current)
    except InvalidVersion:
        return False


def _entries(payload: Any) -> list[PluginMetadata]:
    items = payload.get("plugins", []) if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise InvalidInput("registry index must be a list of plugins or {'plugins': [...]}")
    return [PluginMetadata.from_dict(item) for item in items]


class PluginRegistry:
    def __init__(self, path: Path, *, timeout: float = 15.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._lock = threading.RLock()
        self._plugins: dict[str, PluginMetadata] = {}
        self._load()

    # -- persistence ----------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            entries = _entries(json.loads(self.path.read_text(encoding="utf-8")))
        except (ValueError, InvalidInput, TypeError) as exc:
            # Keep the damaged file for inspection and start afresh instead of refusing to run.
            backup = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            self.path.replace(backup)
            log.warning("plugin registry %s was corrupt (%s); moved to %s", self.path, exc, backup)
            return
        self._plugins = {e.name: e for e in entries}

    def _save(self) -> None:
        payload = {"plugins": [p.to_dict() for p in self.list_all()]}
        atomic_write_text(self.path, json.dumps(payload, indent=2, sort_keys=True))

    # -- entries --------------------------------------------------------------------------
    def register(self, metadata: PluginMetadata) -> None:
        with self._lock:
            metadata.updated_at = time.time()
            self._plugins[metadata.name] = metadata
            self._save()

    def unregister(self, name: str) -> bool:
        with self._lock:
            if self._plugins.pop(name, None) is None:
                return False
            self._save()
            return True

    def get(self, name: str) -> PluginMetadata | None:
        return self._plugins.get(name)

    def list_all(self) -> list[PluginMetadata]:
        with self._lock:
            return sorted(self._plugins.values(), key=lambda p: p.name)

    def search(
        self, query: str | None = None, tags: list[str] | None = None, author: str | None = None
    ) -> list[PluginMetadata]:
        needle = (query or "").lower()
        wanted = {t.lower() for t in tags or []}
        found = []
        for item in self.list_all():
            if needle and needle not in f"{item.name} {item.description}".lower():
                continue
            if wanted and not wanted <= {t.lower() for t in item.tags}:
                continue
            if author and author.lower() != item.author.lower():
                continue
            found.append(item)
        return found

    def get_stats(self) -> dict[str, Any]:
        items = self.list_all()
        return {
            "total": len(items),
            "installed": sum(1 for p in items if p.installed),
            "available": sum(1 for p in items if not p.installed),
            "updates_available": sum(
                1 for p in items if p.installed and _newer(p.latest_version, p.version)
            ),
            "by_author": dict(Counter(p.author or "unknown" for p in items)),
            "by_tag": dict(Counter(t for p in items for t in p.tags)),
        }

    # -- files ----------------------------------------------------------------------------
    def export_to_file(self, output_path: Path) -> None:
        Path(output_path).write_text(
            json.dumps({"plugins": [p.to_dict() for p in self.list_all()]}, indent=2),
            encoding="utf-8",
        )

    def import_from_file(self, input_path: Path, merge: bool = True) -> tuple[bool, str]:
        try:
            entries = _entries(json.loads(Path(input_path).read_text(encoding="utf-8")))
        except (OSError, ValueError, InvalidInput, TypeError) as exc:
            return False, f"import failed: {exc}"
        with self._lock:
            if not merge:
                self._plugins = {}
            for entry in entries:
                self._plugins[entry.name] = entry
            self._save()
        return True, f"imported {len(entries)} plugins"

    # -- remote ---------------------------------------------------------------------------
    def fetch_remote(self, remote_url: str) -> list[PluginMetadata]:
        try:
            response = httpx.get(remote_url, timeout=self.timeout, follow_redirects=True)
            response.raise_for_status()
            return _entries(response.json())
        except httpx.InvalidURL as exc:  # not an HTTPError: it used to surface as a 500
            raise InvalidInput(f"invalid plugin registry URL: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ExternalServiceError(f"plugin registry unreachable: {exc}") from exc
        except ValueError as exc:
            raise ExternalServiceError(f"plugin registry sent invalid JSON: {exc}") from exc

    def sync_from_remote(self, remote_url: str, merge: bool = True) -> tuple[bool, str]:
        """Add the remote index's plugins as available; installed entries only learn of updates."""
        try:
            remote = self.fetch_remote(remote_url)
        except (ExternalServiceError, InvalidInput) as exc:
            return False, str(exc)
        with self._lock:
            if not merge:
                self._plugins = {n: p for n, p in self._plugins.items() if p.installed}
            for entry in remote:
                local = self._plugins.get(entry.name)
                if local is not None and local.installed:
                    local.latest_version = entry.version
                    local.download_url, local.sha256 = entry.download_url, entry.sha256
                    continue
                entry.installed, entry.source = False, "remote"
                entry.latest_version = entry.version
                self._plugins[entry.name] = entry
            self._save()
        return True, f"synced {len(remote)} plugins from the registry"

    def check_updates(self, remote_url: str) -> list[tuple[str, str, str]]:
        """(name, installed version, newer remote version) for each installed plugin behind."""
        remote = {e.name: e for e in self.fetch_remote(remote_url)}
        updates = []
        with self._lock:
            for item in self.list_all():
                newer = remote.get(item.name)
                if item.installed and newer and _newer(newer.version, item.version):
                    updates.append((item.name, item.version, newer.version))
                    item.latest_version = newer.version
            self._save()
        return updates

    def mark_installed(self, name: str, version: str, **extra: Any) -> PluginMetadata:
        with self._lock:
            entry = self._plugins.get(name) or PluginMetadata(name=name, version=version)
            entry.version, entry.installed = version, True
            for key, value in extra.items():
                if hasattr(entry, key) and value is not None:
                    setattr(entry, key, value)
            self.register(entry)
            return entry
