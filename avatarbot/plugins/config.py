"""Typed plugin configuration: schema, validation, JSON/YAML files, hot reload by mtime polling."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avatarbot.errors import InvalidInput
from avatarbot.plugins.fsutil import atomic_write_text
from avatarbot.plugins.watch import Poller

log = logging.getLogger(__name__)

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "float": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "dict": (dict,),
}
SECRET_MASK = "********"
# A custom validator returns True/None when fine, False or an error message when not.
Validator = Callable[[Any], "bool | str | None"]


@dataclass
class ConfigField:
    name: str
    type: str = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    choices: list[Any] | None = None
    min_value: float | None = None  # numbers: the value; strings/lists: the length
    max_value: float | None = None
    validator: Validator | None = None
    secret: bool = False  # never returned by the API, never logged

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise InvalidInput(f"config field {self.name}: unknown type {self.type!r}")

    @classmethod
    def from_dict(cls, name: str, spec: dict[str, Any]) -> ConfigField:
        return cls(
            name=name,
            type=str(spec.get("type", "string")),
            required=bool(spec.get("required", False)),
            default=spec.get("default"),
            description=str(spec.get("description", "")),
            choices=spec.get("choices"),
            min_value=spec.get("min", spec.get("min_value")),
            max_value=spec.get("max", spec.get("max_value")),
            secret=bool(spec.get("secret", False)),
        )

    def validate(self, value: Any) -> list[str]:
        if value is None:
            return [f"{self.name}: required"] if self.required else []
        expected = FIELD_TYPES[self.type]
        # bool is an int in Python; a flag is never a valid number here.
        if not isinstance(value, expected) or (self.type != "boolean" and isinstance(value, bool)):
            return [f"{self.name}: expected {self.type}, got {type(value).__name__}"]
        errors: list[str] = []
        if self.choices is not None and value not in self.choices:
            errors.append(f"{self.name}: {self._show(value)} is not one of {self.choices}")
        measured = len(value) if self.type in ("string", "list", "dict") else value
        unit = " in length" if self.type in ("string", "list", "dict") else ""
        if self.type != "boolean":
            if self.min_value is not None and measured < self.min_value:
                errors.append(f"{self.name}: must be at least {self.min_value}{unit}")
            if self.max_value is not None and measured > self.max_value:
                errors.append(f"{self.name}: must be at most {self.max_value}{unit}")
        if self.validator is not None and not errors:
            try:
                verdict = self.validator(value)
            except Exception as exc:  # a validator that raises is reporting a bad value
                verdict = str(exc) or type(exc).__name__
            if verdict is False:
                errors.append(f"{self.name}: failed validation")
            elif isinstance(verdict, str) and verdict:
                errors.append(f"{self.name}: {verdict}")
        return errors

    def _show(self, value: Any) -> str:
        return SECRET_MASK if self.secret else repr(value)


@dataclass
class PluginConfigSchema:
    fields: dict[str, ConfigField] = field(default_factory=dict)
    allow_unknown: bool = False

    @classmethod
    def from_dict(cls, spec: dict[str, dict[str, Any]]) -> PluginConfigSchema:
        return cls({name: ConfigField.from_dict(name, f) for name, f in (spec or {}).items()})

    def add(self, config_field: ConfigField) -> PluginConfigSchema:
        self.fields[config_field.name] = config_field
        return self

    def defaults(self) -> dict[str, Any]:
        return {n: f.default for n, f in self.fields.items() if f.default is not None}

    def validate(self, values: dict[str, Any]) -> tuple[bool, list[str]]:
        errors: list[str] = []
        for name, config_field in self.fields.items():
            errors.extend(config_field.validate(values.get(name)))
        if not self.allow_unknown:
            errors.extend(f"{k}: unknown setting" for k in values if k not in self.fields)
        return not errors, errors

    def mask(self, values: dict[str, Any]) -> dict[str, Any]:
        return {
            k: (SECRET_MASK if k in self.fields and self.fields[k].secret and v else v)
            for k, v in values.items()
        }


def _read_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"{path.name}: the top level must be a mapping")
    return data


class PluginConfig:
    """Values for one plugin: defaults from the schema, overridden by the file, then by set()."""

    def __init__(
        self, schema: PluginConfigSchema, path: Path | None = None, values: dict | None = None
    ) -> None:
        self.schema = schema
        self.path = path
        self._values: dict[str, Any] = dict(values or {})
        self._mtime_ns: int | None = None
        self._lock = threading.RLock()
        self._listeners: list[Callable[[PluginConfig], None]] = []
        self._watcher = Poller(self.check_for_changes, "plugin-config-watch")
        self.last_error: str | None = None
        if path is not None and path.exists():
            self.reload()

    # -- values ---------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            if key in self._values:
                return self._values[key]
        config_field = self.schema.fields.get(key)
        if config_field is not None and config_field.default is not None:
            return config_field.default
        return default

    def set(self, key: str, value: Any) -> None:
        config_field = self.schema.fields.get(key)
        if config_field is None and not self.schema.allow_unknown:
            raise InvalidInput(f"{key}: unknown setting")
        errors = config_field.validate(value) if config_field else []
        if errors:
            raise InvalidInput("; ".join(errors))
        with self._lock:
            self._values[key] = value

    def update(self, values: dict[str, Any]) -> None:
        """Set several values at once; nothing changes unless all are valid."""
        merged = {**self.values(), **values}
        ok, errors = self.schema.validate(merged)
        if not ok:
            raise InvalidInput("; ".join(errors))
        with self._lock:
            self._values.update(values)

    def values(self) -> dict[str, Any]:
        with self._lock:
            return {**self.schema.defaults(), **self._values}

    def as_dict(self, mask_secrets: bool = True) -> dict[str, Any]:
        values = self.values()
        return self.schema.mask(values) if mask_secrets else values

    def validate(self) -> tuple[bool, list[str]]:
        return self.schema.validate(self.values())

    # -- files ----------------------------------------------------------------------------
    def reload(self) -> bool:
        """Re-read the file; on a parse or validation error keep the old values."""
        if self.path is None or not self.path.exists():
            self.last_error = "no config file"
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
            data = _read_file(self.path)
        except (OSError, ValueError, yaml.YAMLError, InvalidInput) as exc:
            self.last_error = f"{self.path.name}: {exc}"
            log.warning("plugin config %s not reloaded: %s", self.path.name, self.last_error)
            return False
        ok, errors = self.schema.validate({**self.schema.defaults(), **data})
        self._mtime_ns = mtime
        if not ok:
            self.last_error = "; ".join(errors)
            log.warning("plugin config %s rejected: %s", self.path.name, self.last_error)
            return False
        with self._lock:
            self._values = data
        self.last_error = None
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                log.exception("plugin config listener failed")
        return True

    def save(self, format: str = "json") -> bool:
        if format not in ("json", "yaml"):
            raise InvalidInput("format must be 'json' or 'yaml'")
        if self.path is None:
            raise InvalidInput("this config has no file path")
        target = self.path.with_suffix(".json" if format == "json" else ".yaml")
        with self._lock:
            data = dict(self._values)
        text = (
            json.dumps(data, indent=2, sort_keys=True)
            if format == "json"
            else yaml.safe_dump(data, sort_keys=True, allow_unicode=True)
        )
        atomic_write_text(target, text)
        if target != self.path and self.path.exists():
            self.path.unlink()
        self.path = target
        self._mtime_ns = target.stat().st_mtime_ns
        return True

    # -- hot reload -----------------------------------------------------------------------
    def on_change(self, listener: Callable[[PluginConfig], None]) -> None:
        self._listeners.append(listener)

    def check_for_changes(self) -> bool:
        """Reload if the file's mtime moved; True when new values were applied."""
        if self.path is None or not self.path.exists():
            return False
        if self.path.stat().st_mtime_ns == self._mtime_ns:
            return False
        return self.reload()

    def watch(self, interval: float = 1.0) -> None:
        self._watcher.start(interval)

    def stop_watching(self) -> None:
        self._watcher.stop()
