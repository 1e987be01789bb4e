"""Install plugins from an uploaded archive or a registry entry.

Order of checks, before anything lands in the plugins folder: sha256 of the archive, every
member name/type (no `../`, absolute paths, links), the manifest. Extraction goes to a temp
folder next to the plugins folder and is moved in with a rename. Every attempt is logged
(success or failure) to DATA_DIR/logs/plugin_installs.log as one JSON line.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from avatarbot.errors import AvatarbotError, ExternalServiceError, NotFound, TooLarge
from avatarbot.plugins.archive import locate_plugin_root, safe_extract, verify_sha256
from avatarbot.plugins.manifest import PluginManifest, load_manifest
from avatarbot.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024


class PluginInstaller:
    def __init__(self, data_dir: Path, registry: PluginRegistry | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.plugins_dir = self.data_dir / "plugins"
        self.log_path = self.data_dir / "logs" / "plugin_installs.log"
        self.registry = registry

    def _record(self, event: dict[str, Any]) -> None:
        event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
        log.info("plugin install: %s", event)

    def install_archive(
        self, archive_path: Path, sha256: str, *, actor: str, origin: str = "upload"
    ) -> PluginManifest:
        """Verify and install; replaces an installed plugin of the same name."""
        try:
            manifest = self._install(Path(archive_path), sha256)
        except AvatarbotError as exc:
            self._record({"actor": actor, "origin": origin, "ok": False, "error": exc.message})
            raise
        self._record(
            {
                "actor": actor,
                "origin": origin,
                "ok": True,
                "plugin": manifest.name,
                "version": manifest.version,
                "sha256": sha256.lower(),
            }
        )
        if self.registry is not None:
            self.registry.mark_installed(
                manifest.name,
                manifest.version,
                description=manifest.description,
                author=manifest.author,
                tags=list(manifest.tags),
                dependencies=list(manifest.dependencies),
                sha256=sha256.lower(),
            )
        return manifest

    def _install(self, archive_path: Path, sha256: str) -> PluginManifest:
        if archive_path.stat().st_size > MAX_ARCHIVE_BYTES:
            raise TooLarge("plugin archive is larger than 200 MB")
        verify_sha256(archive_path, sha256)
        self.plugins_dir.mkdir(parents=True, exist_ok=True)
        # The temp folder lives inside plugins/ (dot-prefixed, so discovery skips it) to make
        # the final move a same-filesystem rename.
        staging = Path(tempfile.mkdtemp(prefix=".install-", dir=self.plugins_dir))
        try:
            safe_extract(archive_path, staging / "content")
            root = locate_plugin_root(staging / "content")
            manifest = load_manifest(root)
            target = self.plugins_dir / manifest.name
            previous = staging / "previous"
            if target.exists():
                target.rename(previous)
            try:
                root.rename(target)
            except OSError:
                if previous.exists():
                    previous.rename(target)
                raise
            return manifest
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def install_from_registry(self, name: str, *, actor: str) -> PluginManifest:
        if self.registry is None:
            raise NotFound("no plugin registry configured")
        entry = self.registry.get(name)
        if entry is None or not entry.download_url:
            raise NotFound(f"plugin {name!r} is not in the registry (sync it first)")
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "plugin-archive"
            try:
                url = entry.download_url
                with httpx.stream("GET", url, timeout=60, follow_redirects=True) as r:
                    r.raise_for_status()
                    with archive.open("wb") as out:
                        for chunk in r.iter_bytes():
                            out.write(chunk)
                            if out.tell() > MAX_ARCHIVE_BYTES:
                                raise TooLarge("plugin archive is larger than 200 MB")
            except httpx.HTTPError as exc:
                self._record({"actor": actor, "origin": "registry", "ok": False, "error": str(exc)})
                raise ExternalServiceError(f"download of {name} failed: {exc}") from exc
            return self.install_archive(archive, entry.sha256, actor=actor, origin="registry")
