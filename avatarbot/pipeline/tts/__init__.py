"""TTS backend registry.

Backends register a lazy factory (nothing heavy is imported until a backend is asked for) with a
priority; `get_tts_backend("auto")` returns the first available one, lowest priority number first.
Neural backends (coqui, piper, an OpenAI-compatible server) register ahead of espeak, which is the
always-available offline fallback:

    register_tts_backend(make_piper_backend, name="piper", priority=20)

A factory is called once (the instance is cached) and must be cheap; so must availability()
(look for the package / model file / configured URL, load nothing), because "auto" asks every
backend ahead of the chosen one. Load models on the first synthesize() instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.types import Availability, TTSBackend

TTSFactory = Callable[[], TTSBackend]

# Where the known backends go in "auto" order; lower wins. Unknown names default to 50.
DEFAULT_PRIORITIES: dict[str, int] = {
    "coqui": 10,
    "piper": 20,
    "openai": 30,
    "espeak": 100,
}


@dataclass
class _Entry:
    name: str
    factory: TTSFactory
    priority: int
    instance: TTSBackend | None = None
    error: str = ""  # the factory raised: why the backend cannot be built


_registry: dict[str, _Entry] = {}
_lock = threading.RLock()
_builtins_loaded = False


def register_tts_backend(
    factory: TTSFactory, *, name: str | None = None, priority: int | None = None
) -> None:
    """Register (or replace) a backend factory; `name` defaults to the factory's `name`."""
    backend_name = name or getattr(factory, "name", None)
    if not backend_name:
        raise ValueError("register_tts_backend needs a name (argument or factory.name)")
    if priority is None:
        priority = DEFAULT_PRIORITIES.get(backend_name, 50)
    with _lock:
        _registry[backend_name] = _Entry(backend_name, factory, priority)


def _make_espeak() -> TTSBackend:
    from avatarbot.pipeline.tts.espeak import EspeakBackend

    return EspeakBackend()


def _ensure_builtins() -> None:
    global _builtins_loaded
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
        if "espeak" not in _registry:
            register_tts_backend(_make_espeak, name="espeak")


def _instance(entry: _Entry) -> TTSBackend | None:
    with _lock:
        if entry.instance is None and not entry.error:
            try:
                entry.instance = entry.factory()
            except Exception as exc:  # a broken optional backend must not break the others
                entry.error = f"{entry.name}: {type(exc).__name__}: {exc}"
        return entry.instance


def _availability(entry: _Entry) -> Availability:
    backend = _instance(entry)
    if backend is None:
        return Availability.no(entry.error)
    try:
        return backend.availability()
    except Exception as exc:
        return Availability.no(f"{entry.name}: availability check failed: {exc}")


def _ordered() -> list[_Entry]:
    _ensure_builtins()
    with _lock:
        return sorted(_registry.values(), key=lambda e: (e.priority, e.name))


def list_tts_backends() -> list[tuple[str, Availability]]:
    """Every registered backend in auto order, with whether it can run here."""
    return [(entry.name, _availability(entry)) for entry in _ordered()]


def get_tts_backend(name: str | None = "auto") -> TTSBackend:
    """The named backend, or the first available one for None/"auto"."""
    entries = _ordered()
    if name in (None, "", "auto"):
        reasons: list[str] = []
        for entry in entries:
            availability = _availability(entry)
            if availability.ok:
                backend = _instance(entry)
                assert backend is not None
                return backend
            reasons.append(availability.reason or entry.name)
        raise BackendUnavailable("no TTS backend is available: " + "; ".join(reasons))
    for entry in entries:
        if entry.name == name:
            availability = _availability(entry)
            if not availability.ok:
                raise BackendUnavailable(
                    f"TTS backend {name!r} is unavailable: {availability.reason}"
                )
            backend = _instance(entry)
            assert backend is not None
            return backend
    known = ", ".join(e.name for e in entries)
    # A name nobody registered is the caller's mistake (4xx), not a missing install (503).
    raise InvalidInput(f"unknown TTS backend {name!r} (known: {known})")


def forget_tts_instances() -> None:
    """Drop built backend instances (and remembered build errors) but keep the registrations:
    the next call builds them again, e.g. after the configuration changed."""
    with _lock:
        for entry in _registry.values():
            entry.instance = None
            entry.error = ""


def _reset_registry_for_tests() -> None:
    global _builtins_loaded
    with _lock:
        _registry.clear()
        _builtins_loaded = False


__all__ = [
    "DEFAULT_PRIORITIES",
    "forget_tts_instances",
    "get_tts_backend",
    "list_tts_backends",
    "register_tts_backend",
]
