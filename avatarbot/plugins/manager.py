"""PluginManager: discover, load, hot-reload (with rollback), unload, enable/disable plugins.

Safety rules: every plugin step (import, construction, on_load, tools(), on_unload) runs inside
an error boundary, so one bad plugin is recorded and skipped instead of taking others down; a
reload builds and starts the new version fully before the old one is retired, so a failing
reload leaves the old version serving.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatarbot.errors import AvatarbotError, InvalidInput, NotFound
from avatarbot.plugins.base import Plugin, PluginContext, PluginError
from avatarbot.plugins.config import PluginConfig, PluginConfigSchema
from avatarbot.plugins.dependency import DependencyResolver
from avatarbot.plugins.discovery import BUILTIN_DIR, DiscoveredPlugin, discover, fingerprint
from avatarbot.plugins.loader import forget_plugin, import_plugin
from avatarbot.plugins.shared_state import make_state_store
from avatarbot.plugins.tool_access import ToolAccess
from avatarbot.plugins.watch import Poller
from avatarbot.tools import ToolSpec

log = logging.getLogger(__name__)
TOOL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


@dataclass
class LoadedPlugin:
    instance: Plugin
    source: DiscoveredPlugin
    package: str
    tools: list[ToolSpec]
    fingerprint: str
    config_stamp: tuple = ()
    loaded_at: float = field(default_factory=time.time)


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, AvatarbotError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


class PluginManager(ToolAccess):
    def __init__(
        self,
        data_dir: Path,
        builtin_dir: Path | None = BUILTIN_DIR,
        *,
        media_dir: Path | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.redis_url = redis_url
        self.builtin_dir = builtin_dir
        self.plugins_dir = self.data_dir / "plugins"
        self.config_dir = self.data_dir / "plugin_config"
        self.state_dir = self.data_dir / "plugin_data"
        self.cache_dir = self.data_dir / "plugin_cache"
        self.media_dir = Path(media_dir) if media_dir else self.data_dir / "media"
        self.state_path = self.data_dir / "plugins_state.json"
        self._state = make_state_store(self.state_path, redis_url)
        self._lock = threading.RLock()
        self._discovered: dict[str, DiscoveredPlugin] = {}
        self._loaded: dict[str, LoadedPlugin] = {}
        self._errors: dict[str, str] = {}
        self._problems: dict[str, str] = {}
        self._failed_stamp: dict[str, str] = {}  # files of a failed load, not retried unchanged
        self._disabled: set[str] = self._read_disabled()
        self._watcher = Poller(self.check_for_changes, "plugin-watch")
        self.plugins_dir.mkdir(parents=True, exist_ok=True)

    # -- discovery and dependencies -------------------------------------------------------
    def discover(self) -> dict[str, DiscoveredPlugin]:
        with self._lock:
            self._discovered, problems = discover(
                self.builtin_dir, self.plugins_dir, self.cache_dir
            )
            self._problems = problems
            for entry, problem in problems.items():
                self._errors[entry] = problem
            return dict(self._discovered)

    def _known(self, name: str) -> DiscoveredPlugin:
        if name not in self._discovered:
            self.discover()
        found = self._discovered.get(name)
        if found is None:
            problem = self._problems.get(name)
            raise NotFound(f"plugin {name!r} not found" + (f": {problem}" if problem else ""))
        return found

    def _resolver(self) -> DependencyResolver:
        if not self._discovered:
            self.discover()
        resolver = DependencyResolver()
        for item in self._discovered.values():
            resolver.add_plugin(item.name, item.manifest.version, list(item.manifest.dependencies))
        return resolver

    def check_dependencies(self, name: str) -> tuple[bool, list[str]]:
        with self._lock:
            self._known(name)
            return self._resolver().check_dependencies(name)

    def get_load_order(self) -> tuple[bool, list[str], list[str]]:
        with self._lock:
            return self._resolver().resolve_load_order()

    def get_dependency_tree(self, name: str) -> dict[str, list[str]]:
        with self._lock:
            self._known(name)
            return self._resolver().get_dependency_tree(name)

    # -- loading --------------------------------------------------------------------------
    def _config_stamp(self, name: str) -> tuple:
        """Changes when the plugin's config file is created, edited or removed."""
        stamp = []
        for suffix in (".yaml", ".yml", ".json"):
            path = self.config_dir / f"{name}{suffix}"
            if path.exists():
                info = path.stat()
                stamp.append((suffix, info.st_mtime_ns, info.st_size))
        return tuple(stamp)

    def config_for(self, name: str, source: DiscoveredPlugin | None = None) -> PluginConfig:
        source = source or self._known(name)
        schema = PluginConfigSchema.from_dict(source.manifest.config_schema)
        for suffix in (".yaml", ".yml", ".json"):
            path = self.config_dir / f"{name}{suffix}"
            if path.exists():
                return PluginConfig(schema, path)
        return PluginConfig(schema, self.config_dir / f"{name}.json")

    def _build(self, source: DiscoveredPlugin, state: dict[str, Any] | None) -> LoadedPlugin:
        """Import, construct and start one version; on any failure nothing of it stays loaded."""
        manifest = source.manifest
        config = self.config_for(manifest.name, source)
        if config.last_error and config.path and config.path.exists():
            raise PluginError(f"config file rejected: {config.last_error}")
        ok, errors = config.validate()
        if not ok:
            raise PluginError("invalid config: " + "; ".join(errors))
        stamp = fingerprint(source.path)
        config_stamp = self._config_stamp(manifest.name)
        package, module = import_plugin(manifest.name, source.path, manifest.module)
        instance: Plugin | None = None
        try:
            cls = getattr(module, manifest.class_name, None)
            if not (inspect.isclass(cls) and issubclass(cls, Plugin)):
                raise PluginError(f"{manifest.entry_point} is not a Plugin subclass")
            instance = cls()
            data_dir = self.state_dir / manifest.name
            data_dir.mkdir(parents=True, exist_ok=True)
            self.media_dir.mkdir(parents=True, exist_ok=True)
            context = PluginContext(
                name=manifest.name,
                manifest=manifest,
                config=config,
                data_dir=data_dir,
                media_dir=self.media_dir,
                logger=logging.getLogger(f"avatarbot.plugins.{manifest.name}"),
                get_plugin=self.get_plugin,
                redis_url=self.redis_url,
            )
            instance.on_load(context)
            if state:
                instance.set_state(state)
            tools = self._checked_tools(manifest.name, instance)
            return LoadedPlugin(instance, source, package, tools, stamp, config_stamp)
        except BaseException:
            if instance is not None and instance._context is not None:
                self._safe_unload(manifest.name, instance)
            forget_plugin(package)
            raise

    def _checked_tools(self, name: str, instance: Plugin) -> list[ToolSpec]:
        tools = list(instance.tools())
        seen: set[str] = set()
        for tool in tools:
            if not isinstance(tool, ToolSpec):
                raise PluginError(f"{name}.tools() returned {type(tool).__name__}, not ToolSpec")
            if not TOOL_NAME_RE.match(tool.name) or not tool.name.startswith(f"{name}."):
                raise PluginError(f"tool name {tool.name!r} must be '{name}.<tool>'")
            if tool.name in seen:
                raise PluginError(f"tool {tool.name!r} is defined twice")
            seen.add(tool.name)
        declared = {f"{name}.{t.name}" for t in instance.context.manifest.tools}
        missing = declared - seen
        if missing:
            raise PluginError(f"manifest declares tools the plugin lacks: {sorted(missing)}")
        return tools

    def _safe_unload(self, name: str, instance: Plugin) -> None:
        try:
            instance.on_unload()
        except Exception:
            log.exception("plugin %s: on_unload failed", name)

    def load_plugin(self, name: str) -> Plugin:
        with self._lock:
            if name in self._loaded:
                return self._loaded[name].instance
            source = self._known(name)
            if name in self._disabled:
                raise PluginError(f"plugin {name!r} is disabled")
            try:
                ok, errors = self._resolver().check_dependencies(name)
                if not ok:
                    raise PluginError("; ".join(errors))
                for dep in self._resolver().get_dependency_tree(name)[name]:
                    self.load_plugin(dep)
                loaded = self._build(source, None)
            except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() included
                self._errors[name] = _describe_error(exc)
                self._failed_stamp[name] = fingerprint(source.path)
                log.warning("plugin %s failed to load: %s", name, self._errors[name])
                if isinstance(exc, AvatarbotError):
                    raise
                raise PluginError(f"plugin {name!r} failed to load: {self._errors[name]}") from exc
            self._loaded[name] = loaded
            self._errors.pop(name, None)
            log.info("plugin %s %s loaded", name, source.manifest.version)
            return loaded.instance

    def reload_plugin(self, name: str) -> bool:
        """Load the version now on disk; on failure the old version keeps serving."""
        with self._lock:
            old = self._loaded.get(name)
            if old is None:
                try:
                    self.load_plugin(name)
                except AvatarbotError:
                    return False
                return True
            try:
                self.discover()
                source = self._known(name)
                ok, errors = self._resolver().check_dependencies(name)
                if not ok:  # the new manifest may ask for versions that are not installed
                    raise PluginError("; ".join(errors))
                state = old.instance.get_state()
                new = self._build(source, state)
            except (Exception, SystemExit) as exc:
                self._errors[name] = f"reload failed: {_describe_error(exc)}"
                log.warning("plugin %s: %s (old version kept)", name, self._errors[name])
                return False
            self._loaded[name] = new
            self._errors.pop(name, None)
            self._safe_unload(name, old.instance)
            forget_plugin(old.package)
            log.info("plugin %s reloaded: %s", name, source.manifest.version)
            return True

    def unload_plugin(self, name: str) -> bool:
        with self._lock:
            loaded = self._loaded.get(name)
            if loaded is None:
                return False
            dependents = [
                other
                for other in self._loaded
                if other != name and name in self._resolver().get_dependency_tree(other)[other]
            ]
            if dependents:
                self._errors[name] = f"still needed by {', '.join(sorted(dependents))}"
                return False
            del self._loaded[name]
            self._safe_unload(name, loaded.instance)
            forget_plugin(loaded.package)
            log.info("plugin %s unloaded", name)
            return True

    def load_all(self) -> dict[str, str | None]:
        """Load every enabled plugin in dependency order; returns name -> error (None = ok)."""
        with self._lock:
            self.discover()
            _ok, order, errors = self.get_load_order()
            results: dict[str, str | None] = {}
            for message in errors:
                log.warning("plugin dependencies: %s", message)
            for name in self._discovered:
                if name not in order:
                    results[name] = self._errors[name] = next(
                        (e for e in errors if e.startswith(f"{name} ") or f" {name} " in e),
                        "unresolved dependencies",
                    )
            for name in order:
                if name in self._disabled:
                    continue
                try:
                    self.load_plugin(name)
                    results[name] = None
                except AvatarbotError as exc:
                    results[name] = exc.message
            return results

    def shutdown(self) -> None:
        self.stop_watching()
        with self._lock:
            for name in reversed(list(self._loaded)):
                loaded = self._loaded.pop(name)
                self._safe_unload(name, loaded.instance)
                forget_plugin(loaded.package)

    # -- queries --------------------------------------------------------------------------
    def list_plugins(self) -> list[Plugin]:
        with self._lock:
            return [item.instance for item in self._loaded.values()]

    def get_plugin(self, name: str) -> Plugin | None:
        loaded = self._loaded.get(name)
        return loaded.instance if loaded else None

    def last_error(self, name: str) -> str | None:
        return self._errors.get(name)

    def describe(self, name: str) -> dict[str, Any]:
        with self._lock:
            source = self._known(name)
            loaded = self._loaded.get(name)
            manifest = (loaded.source if loaded else source).manifest
            return {
                "name": name,
                "version": manifest.version,
                "available_version": source.manifest.version,
                "description": manifest.description,
                "origin": source.origin,
                "enabled": name not in self._disabled,
                "loaded": loaded is not None,
                "dependencies": list(manifest.dependencies),
                "tools": [t.name for t in loaded.tools] if loaded else [],
                "error": self._errors.get(name),
            }

    def describe_all(self) -> list[dict[str, Any]]:
        with self._lock:
            if not self._discovered:
                self.discover()
            rows = [self.describe(name) for name in sorted(self._discovered)]
            # Folders whose manifest could not even be read still show up, with the reason.
            for entry, problem in sorted(self._problems.items()):
                if entry not in self._discovered:
                    rows.append(
                        {
                            "name": entry,
                            "version": None,
                            "origin": "user",
                            "enabled": False,
                            "loaded": False,
                            "dependencies": [],
                            "tools": [],
                            "error": problem,
                        }
                    )
            return rows

    # -- tools ----------------------------------------------------------------------------
    def all_tools(self) -> list[ToolSpec]:
        with self._lock:
            return [t for item in self._loaded.values() for t in item.tools]

    # -- enable / disable (persisted) -----------------------------------------------------
    def _read_disabled(self) -> set[str]:
        return self._state.read()

    def _write_disabled(self) -> None:
        self._state.write(self._disabled)

    def apply_enabled(self, changes: dict[str, bool]) -> None:
        """Take enable/disable decisions made elsewhere (another replica, via the database).

        Disabled plugins are unloaded now; enabled ones load on the next discovery pass."""
        with self._lock:
            wanted = {n for n, on in changes.items() if not on} | (self._disabled - set(changes))
            if wanted == self._disabled:
                return
            for name in sorted(wanted - self._disabled):
                if name in self._loaded:
                    self.unload_plugin(name)
            self._disabled = wanted
            self._write_disabled()
        self.check_for_changes()

    def follow_shared_state(self) -> list[str]:
        """Adopt an enable/disable made by another replica; returns the names unloaded.

        Newly enabled plugins are loaded by the caller's next discovery pass."""
        unloaded: list[str] = []
        with self._lock:
            disabled = self._read_disabled()
            for name in sorted(disabled - self._disabled):
                if name in self._loaded and self.unload_plugin(name):
                    unloaded.append(name)
            self._disabled = disabled
        return unloaded

    def is_enabled(self, name: str) -> bool:
        return name not in self._disabled

    def enable(self, name: str, *, load: bool = True) -> None:
        with self._lock:
            self._known(name)
            self._disabled.discard(name)
            self._write_disabled()
            if load:
                self.load_plugin(name)

    def disable(self, name: str) -> None:
        with self._lock:
            self._known(name)
            if name in self._loaded and not self.unload_plugin(name):
                raise InvalidInput(f"cannot disable {name}: {self._errors.get(name)}")
            self._disabled.add(name)
            self._write_disabled()

    def set_config(self, name: str, values: dict[str, Any]) -> dict[str, Any]:
        """Validate and save new settings, then reload the plugin so it sees them."""
        with self._lock:
            config = self.config_for(name)
            config.update(values)
            path = config.path
            assert path is not None
            previous = path.read_bytes() if path.exists() else None
            config.save("yaml" if path.suffix in (".yaml", ".yml") else "json")
            if name in self._loaded and not self.reload_plugin(name):
                # Put the old file back: the running version keeps its old settings.
                if previous is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(previous)
                error = self._errors.get(name, "reload failed")
                raise PluginError(f"settings not applied: {error}")
            return config.as_dict(mask_secrets=True)

    # -- hot reload on file change --------------------------------------------------------
    def check_for_changes(self, load_new: bool = True) -> list[str]:
        """Reload loaded plugins whose files or config changed and (with load_new) load enabled
        plugins that appeared or were fixed on disk; returns the names (re)loaded."""
        changed: list[str] = []
        with self._lock:
            self.follow_shared_state()
            self.discover()
            for name, source in self._discovered.items() if load_new else ():
                if name in self._loaded or name in self._disabled:
                    continue
                if self._failed_stamp.get(name) == fingerprint(source.path):
                    continue
                try:
                    self.load_plugin(name)
                    changed.append(name)
                except AvatarbotError:
                    pass  # recorded in last_error; retried when its files change
            for name, loaded in list(self._loaded.items()):
                source = self._discovered.get(name)
                if source is None:
                    continue
                stamp, config_stamp = fingerprint(source.path), self._config_stamp(name)
                if (
                    stamp != loaded.fingerprint
                    or config_stamp != loaded.config_stamp
                    or source.path != loaded.source.path
                ):
                    # A config edit reloads the plugin too: on_load may have used the values.
                    if self.reload_plugin(name):
                        changed.append(name)
                    else:
                        # Do not retry the same broken files on every poll.
                        self._loaded[name].fingerprint = stamp
                        self._loaded[name].config_stamp = config_stamp
        return changed

    def start_watching(self, interval: float = 2.0) -> None:
        self._watcher.start(interval)

    def stop_watching(self) -> None:
        self._watcher.stop()
