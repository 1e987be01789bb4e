"""The plugin system of one running process: manager + registry + installer, started by the app.

`services.plugins` is a PluginService; attribute access falls through to the PluginManager, so
`services.plugins.all_tools()` / `.acall_tool(...)` work as on the manager itself.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from avatarbot.plugins.discovery import BUILTIN_DIR
from avatarbot.plugins.install import PluginInstaller
from avatarbot.plugins.manager import PluginManager
from avatarbot.plugins.registry import PluginRegistry

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 2.0


class PluginService:
    def __init__(
        self,
        data_dir: Path,
        *,
        media_dir: Path | None = None,
        builtin_dir: Path | None = BUILTIN_DIR,
        redis_url: str | None = None,
    ) -> None:
        self.manager = PluginManager(
            data_dir, builtin_dir, media_dir=media_dir, redis_url=redis_url
        )
        self.registry = PluginRegistry(Path(data_dir) / "plugin_registry.json")
        self.installer = PluginInstaller(data_dir, self.registry)

    def __getattr__(self, name: str) -> Any:
        if name == "manager":  # not set yet (during __init__ or unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.manager, name)

    def start(self, watch_interval: float | None = WATCH_INTERVAL_S) -> dict[str, str | None]:
        """Load every enabled plugin (failures are logged, never raised) and watch for edits."""
        results = self.manager.load_all()
        for name, error in results.items():
            if error:
                log.warning("plugin %s not loaded: %s", name, error)
        self._sync_installed()
        if watch_interval:
            self.manager.start_watching(watch_interval)
        return results

    def stop(self) -> None:
        self.manager.shutdown()

    def follow_database(self, db: Any, interval_s: float = WATCH_INTERVAL_S) -> None:
        """Follow enable/disable recorded in the database by any replica (call in the loop)."""
        from avatarbot.plugins.shared_state import DatabaseFollower

        self.follower = DatabaseFollower(db, self.manager, interval_s)
        self.follower.start()

    def state_change(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Hold while changing a plugin's enabled state and recording it in the database, so
        the database follower never applies a row read before the change on top of it."""
        follower = self.__dict__.get("follower")
        return follower.lock if follower is not None else contextlib.nullcontext()

    async def stop_following(self) -> None:
        follower = self.__dict__.get("follower")
        if follower is not None:
            await follower.stop()

    def _sync_installed(self) -> None:
        for item in self.manager.discover().values():
            known = self.registry.get(item.name)
            if known and known.installed and known.version == item.manifest.version:
                continue
            self.registry.mark_installed(
                item.name,
                item.manifest.version,
                description=item.manifest.description,
                author=item.manifest.author,
                tags=list(item.manifest.tags),
                dependencies=list(item.manifest.dependencies),
                source="builtin" if item.origin == "builtin" else "local",
            )

    def _activate(self, name: str) -> dict[str, Any]:
        """Load or hot-reload a freshly installed plugin; its load error is reported, not raised."""
        self.manager.discover()
        if self.manager.get_plugin(name) is not None:
            self.manager.reload_plugin(name)
        elif self.manager.is_enabled(name):
            try:
                self.manager.load_plugin(name)
            except Exception as exc:  # recorded in last_error and shown by describe()
                log.warning("installed plugin %s did not load: %s", name, exc)
        self._sync_installed()
        return self.manager.describe(name)

    def install_archive(self, archive: Path, sha256: str, *, actor: str) -> dict[str, Any]:
        manifest = self.installer.install_archive(archive, sha256, actor=actor)
        return self._activate(manifest.name)

    def install_from_registry(self, name: str, *, actor: str) -> dict[str, Any]:
        manifest = self.installer.install_from_registry(name, actor=actor)
        return self._activate(manifest.name)

    def reload(self, name: str | None = None) -> dict[str, dict[str, Any]]:
        """Reload one plugin or every loaded one; per plugin: ok, version now serving, error."""
        names = [name] if name else [p["name"] for p in self.manager.describe_all() if p["loaded"]]
        results: dict[str, dict[str, Any]] = {}
        for item in names:
            ok = self.manager.reload_plugin(item)
            info = self.manager.describe(item)
            results[item] = {"ok": ok, "version": info["version"], "error": info["error"]}
        return results
