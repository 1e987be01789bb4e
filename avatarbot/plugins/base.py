"""The Plugin base class and the context a plugin receives when it is loaded."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput
from avatarbot.plugins.config import PluginConfig
from avatarbot.plugins.manifest import PluginManifest
from avatarbot.tools import ToolHandler, ToolSpec


class PluginError(InvalidInput):
    """A plugin could not be loaded, reloaded, installed or configured."""

    code = "plugin_error"


@dataclass
class PluginContext:
    name: str
    manifest: PluginManifest
    config: PluginConfig
    data_dir: Path  # this plugin's own writable folder
    media_dir: Path  # shared media folder: tools read and write files here
    logger: logging.Logger
    get_plugin: Callable[[str], Plugin | None] = field(default=lambda _name: None)
    redis_url: str | None = None  # the app's AVATARBOT_REDIS_URL: shared state when set

    def resolve_path(self, path: str, *, must_exist: bool = False) -> Path:
        """A file path a tool was given, confined to media_dir or this plugin's data_dir.

        Tools are called by agents with LLM-made arguments, so paths are never trusted:
        relative paths are taken under media_dir, anything resolving elsewhere is refused."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.media_dir / candidate
        resolved = candidate.resolve()
        roots = [self.media_dir.resolve(), self.data_dir.resolve()]
        if not any(root in resolved.parents for root in roots):
            raise InvalidInput(f"path {path!r} is outside the media folder")
        if resolved.is_dir():
            raise InvalidInput(f"path {path!r} is a folder, not a file")
        if must_exist and not resolved.is_file():
            raise InvalidInput(f"file {path!r} does not exist")
        if not must_exist:
            resolved.parent.mkdir(parents=True, exist_ok=True)
        return resolved


class Plugin(ABC):
    """Subclass this in the module named by the manifest's entry point."""

    def __init__(self) -> None:
        self._context: PluginContext | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def on_load(self, context: PluginContext) -> None:
        """Called once after construction; raise to refuse loading (the error is recorded)."""
        self._context = context

    def on_unload(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, threads). Called before the instance is dropped."""

    def get_state(self) -> dict[str, Any]:
        """State to carry across a hot reload (handed to the new instance's set_state)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Receive the previous instance's get_state() after on_load during a reload."""

    @abstractmethod
    def tools(self) -> list[ToolSpec]:
        """The tools this plugin offers agents; names must be "<plugin>.<tool>"."""

    # -- helpers --------------------------------------------------------------------------
    @property
    def context(self) -> PluginContext:
        if self._context is None:
            raise PluginError(f"{type(self).__name__} is not loaded")
        return self._context

    @property
    def name(self) -> str:
        return self.context.name

    @property
    def version(self) -> str:
        return self.context.manifest.version

    @property
    def config(self) -> PluginConfig:
        return self.context.config

    @property
    def log(self) -> logging.Logger:
        return self.context.logger

    def tool(
        self,
        name: str,
        description: str,
        handler: ToolHandler,
        properties: dict[str, Any] | None = None,
        required: list[str] | None = None,
        capability: str | None = None,
    ) -> ToolSpec:
        """Build a ToolSpec named "<plugin>.<name>" with a JSON-schema object for its arguments."""
        return ToolSpec(
            name=f"{self.name}.{name}",
            description=description,
            handler=handler,
            parameters={
                "type": "object",
                "properties": properties or {},
                "required": required or [],
                "additionalProperties": False,
            },
            capability=capability or self.context.manifest.capability or "plugins",
            source=f"plugin:{self.name}",
        )
