"""A small backend registry shared by the TTS, animator and enhancer stages.

Backends register a lazy factory with a priority; "auto" returns
the first available one (lowest priority number first); an unknown or unavailable name raises
BackendUnavailable naming what is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.types import Availability

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    name: str
    factory: Callable[[], T]
    priority: int
    instance: T | None = None
    error: str = ""


class BackendRegistry(Generic[T]):
    def __init__(self, stage: str, builtins: Callable[[BackendRegistry[Any]], None]) -> None:
        self.stage = stage
        self._builtins = builtins
        self._builtins_loaded = False
        self._entries: dict[str, _Entry[T]] = {}
        self._lock = threading.RLock()

    def register(self, factory: Callable[[], T], *, name: str, priority: int = 50) -> None:
        with self._lock:
            self._entries[name] = _Entry(name, factory, priority)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._entries

    def forget_instances(self) -> None:
        """Drop built instances (and remembered build errors) but keep the registrations:
        the next call builds them again, e.g. after the configuration changed."""
        with self._lock:
            for entry in self._entries.values():
                entry.instance = None
                entry.error = ""

    def clear(self) -> None:
        """Forget every registration; the builtins register again on the next call (tests)."""
        with self._lock:
            self._entries.clear()
            self._builtins_loaded = False

    def _ordered(self) -> list[_Entry[T]]:
        with self._lock:
            if not self._builtins_loaded:
                self._builtins_loaded = True
                self._builtins(self)
            return sorted(self._entries.values(), key=lambda e: (e.priority, e.name))

    def _instance(self, entry: _Entry[T]) -> T | None:
        with self._lock:
            if entry.instance is None and not entry.error:
                try:
                    entry.instance = entry.factory()
                except Exception as exc:  # a broken optional backend must not break the others
                    entry.error = f"{entry.name}: {type(exc).__name__}: {exc}"
            return entry.instance

    def availability(self, entry: _Entry[T]) -> Availability:
        backend = self._instance(entry)
        if backend is None:
            return Availability.no(entry.error)
        try:
            return backend.availability()  # type: ignore[attr-defined]
        except Exception as exc:
            return Availability.no(f"{entry.name}: availability check failed: {exc}")

    def names(self) -> list[str]:
        """Registered names in auto order (builds nothing)."""
        return [e.name for e in self._ordered()]

    def availability_of(self, name: str) -> Availability | None:
        """Whether `name` can run here; None when nobody registered that name."""
        for entry in self._ordered():
            if entry.name == name:
                return self.availability(entry)
        return None

    def list(self) -> list[tuple[str, Availability]]:
        return [(e.name, self.availability(e)) for e in self._ordered()]

    def get(self, name: str | None = "auto") -> T:
        entries = self._ordered()
        if name in (None, "", "auto"):
            reasons = []
            for entry in entries:
                availability = self.availability(entry)
                if availability.ok:
                    backend = self._instance(entry)
                    assert backend is not None
                    return backend
                reasons.append(availability.reason or entry.name)
            raise BackendUnavailable(f"no {self.stage} backend is available: " + "; ".join(reasons))
        for entry in entries:
            if entry.name == name:
                availability = self.availability(entry)
                if not availability.ok:
                    raise BackendUnavailable(
                        f"{self.stage} backend {name!r} is unavailable: {availability.reason}"
                    )
                backend = self._instance(entry)
                assert backend is not None
                return backend
        known = ", ".join(e.name for e in entries)
        # A name nobody registered is the caller's mistake (4xx), not a missing install (503).
        raise InvalidInput(f"unknown {self.stage} backend {name!r} (known: {known})")
