"""Enhancer registry (face restoration for the enhanced_* modes).

"detail" is the model-free CPU default; gfpgan registers ahead of it when its weights exist.
`get_enhancer("none")` returns None: no enhancement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from avatarbot.pipeline._registry import BackendRegistry
from avatarbot.pipeline.types import Availability, Enhancer

DEFAULT_PRIORITIES: dict[str, int] = {"gfpgan": 10, "codeformer": 20, "detail": 100}


def _make_detail() -> Enhancer:
    from avatarbot.pipeline.enhancers.detail import DetailEnhancer

    return DetailEnhancer()


def _builtins(registry: BackendRegistry[Any]) -> None:
    registry.register(_make_detail, name="detail", priority=100)


_registry: BackendRegistry[Enhancer] = BackendRegistry("enhancer", _builtins)


def register_enhancer(
    factory: Callable[[], Enhancer], *, name: str, priority: int | None = None
) -> None:
    _registry.register(
        factory,
        name=name,
        priority=DEFAULT_PRIORITIES.get(name, 50) if priority is None else priority,
    )


def enhancer_names() -> list[str]:
    return _registry.names()


def enhancer_availability(name: str) -> Availability | None:
    """Whether the named enhancer can run here; None for a name nobody registered."""
    return _registry.availability_of(name)


def list_enhancers() -> list[tuple[str, Availability]]:
    return _registry.list()


def get_enhancer(name: str | None = "auto") -> Enhancer | None:
    if name == "none":
        return None
    return _registry.get(name)


__all__ = [
    "enhancer_availability",
    "enhancer_names",
    "get_enhancer",
    "list_enhancers",
    "register_enhancer",
]
