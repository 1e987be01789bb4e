"""Animator registry: portrait + MouthTrack -> frames.

The procedural animator is the always-available CPU default; neural ones (wav2lip, sadtalker)
register ahead of it when their model files are present:

    register_animator(make_wav2lip, name="wav2lip", priority=20)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from avatarbot.pipeline._registry import BackendRegistry
from avatarbot.pipeline.types import Animator, Availability

DEFAULT_PRIORITIES: dict[str, int] = {"sadtalker": 10, "wav2lip": 20, "procedural": 100}


def _make_procedural() -> Animator:
    from avatarbot.pipeline.animators.procedural import ProceduralAnimator

    return ProceduralAnimator()


def _builtins(registry: BackendRegistry[Any]) -> None:
    registry.register(_make_procedural, name="procedural", priority=100)


_registry: BackendRegistry[Animator] = BackendRegistry("animator", _builtins)


def register_animator(
    factory: Callable[[], Animator], *, name: str, priority: int | None = None
) -> None:
    """Register (or replace) an animator factory; nothing is built until it is asked for."""
    _registry.register(
        factory,
        name=name,
        priority=DEFAULT_PRIORITIES.get(name, 50) if priority is None else priority,
    )


def animator_names() -> list[str]:
    return _registry.names()


def animator_availability(name: str) -> Availability | None:
    """Whether the named animator can run here; None for a name nobody registered."""
    return _registry.availability_of(name)


def list_animators() -> list[tuple[str, Availability]]:
    return _registry.list()


def get_animator(name: str | None = "auto") -> Animator:
    return _registry.get(name)


__all__ = [
    "animator_availability",
    "animator_names",
    "get_animator",
    "list_animators",
    "register_animator",
]
