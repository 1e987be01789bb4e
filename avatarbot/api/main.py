"""All /api/v1 routers in one place."""

from __future__ import annotations

from fastapi import APIRouter

from avatarbot.api.errors_doc import API_ERROR_RESPONSES
from avatarbot.api.routers import (
    admin,
    agents,
    auth,
    digital_humans,
    knowledge,
    plugins,
    scheduler,
    tasks,
    voice,
    ws_agent,
    ws_progress,
)

api_router = APIRouter(prefix="/api/v1", responses=API_ERROR_RESPONSES)
api_router.include_router(auth.router)
api_router.include_router(admin.router)
api_router.include_router(tasks.router)
api_router.include_router(digital_humans.router)
api_router.include_router(voice.router)
api_router.include_router(plugins.router)
api_router.include_router(agents.router)
api_router.include_router(knowledge.router)
api_router.include_router(ws_agent.router)
api_router.include_router(scheduler.router)
api_router.include_router(ws_progress.router)
