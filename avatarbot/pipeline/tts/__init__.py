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

from collections.abc import Callable
from typing import Any

from avatarbot.pipeline._registry import BackendRegistry
from avatarbot.pipeline.types import Availability, TTSBackend

TTSFactory = Callable[[], TTSBackend]

# Where the known backends go in "auto" order; lower wins. Unknown names default to 50.
DEFAULT_PRIORITIES: dict[str, int] = {
    "coqui": 10,
    "piper": 20,
    "openai": 30,
    "espeak": 100,
}


def _make_espeak() -> TTSBackend:
    from avatarbot.pipeline.tts.espeak import EspeakBackend

    return EspeakBackend()


def _builtins(registry: BackendRegistry[Any]) -> None:
    if "espeak" not in registry:  # a test or deployment may have put its own espeak in place
        registry.register(_make_espeak, name="espeak", priority=DEFAULT_PRIORITIES["espeak"])


_registry: BackendRegistry[TTSBackend] = BackendRegistry("TTS", _builtins)


def register_tts_backend(
    factory: TTSFactory, *, name: str | None = None, priority: int | None = None
) -> None:
    """Register (or replace) a backend factory; `name` defaults to the factory's `name`."""
    backend_name = name or getattr(factory, "name", None)
    if not backend_name:
        raise ValueError("register_tts_backend needs a name (argument or factory.name)")
    if priority is None:
        priority = DEFAULT_PRIORITIES.get(backend_name, 50)
    _registry.register(factory, name=backend_name, priority=priority)


def tts_backend_names() -> list[str]:
    """Registered names in auto order (builds nothing)."""
    return _registry.names()


def list_tts_backends() -> list[tuple[str, Availability]]:
    """Every registered backend in auto order, with whether it can run here."""
    return _registry.list()


def get_tts_backend(name: str | None = "auto") -> TTSBackend:
    """The named backend, or the first available one for None/"auto"."""
    return _registry.get(name)


def forget_tts_instances() -> None:
    """Drop built backend instances (and remembered build errors) but keep the registrations:
    the next call builds them again, e.g. after the configuration changed."""
    _registry.forget_instances()


def _reset_registry_for_tests() -> None:
    _registry.clear()


__all__ = [
    "DEFAULT_PRIORITIES",
    "forget_tts_instances",
    "get_tts_backend",
    "list_tts_backends",
    "register_tts_backend",
    "tts_backend_names",
]
