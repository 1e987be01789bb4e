"""Administration: configuration reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from avatarbot.api.deps import ServicesDep, SuperUser
from avatarbot.errors import InvalidInput

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/reload-config")
async def reload_config(_user: SuperUser, services: ServicesDep) -> dict[str, Any]:
    """Re-read .env / YAML / environment; an invalid new config is rejected and the old one kept."""
    try:
        return services.config.reload()
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
