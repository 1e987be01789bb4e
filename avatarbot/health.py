"""/health: one entry per component, each "ok", "disabled" or "error: <reason>"."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from avatarbot import __version__
from avatarbot.agents.mcp.health import mcp_health
from avatarbot.services import Services


async def health_report(services: Services) -> dict[str, Any]:
    settings = services.settings
    components: dict[str, Any] = {}
    try:
        await asyncio.wait_for(services.db.ping(), timeout=3)
        components["database"] = {"status": "ok", "dialect": services.db.dialect}
    except Exception as exc:
        components["database"] = {"status": "error", "reason": type(exc).__name__}
    if services.redis.enabled:
        ok = await asyncio.to_thread(services.redis.ping)
        components["redis"] = {"status": "ok" if ok else "error"}
    else:
        components["redis"] = {"status": "disabled", "reason": "AVATARBOT_REDIS_URL not set"}
    components["jobs"] = {"status": "ok", "executor": services.executor.name}
    components["channels"] = {
        "feishu": _channel_status(services, "feishu", settings.feishu.enabled),
        "wecom": _channel_status(services, "wecom", settings.wecom.enabled),
        "wecom_bot": _channel_status(services, "wecom_bot", settings.wecom_bot.enabled),
    }
    components["llm"] = (
        {"status": "ok", "model": settings.llm.model}
        if settings.llm.enabled
        else {"status": "disabled", "reason": "offline rule brain (AVATARBOT_LLM__* not set)"}
    )
    components["pipeline"] = await asyncio.to_thread(_pipeline_status, services)
    components["mcp"] = await mcp_health(services)
    overall = "error" if components["database"]["status"] == "error" else "ok"
    return {"status": overall, "version": __version__, "components": components}


def _channel_status(services: Services, name: str, configured: bool) -> dict[str, Any]:
    if not configured:
        return {"status": "disabled", "reason": "credentials not set"}
    channel = services.channels.get(name)
    if channel is not None and hasattr(channel, "status"):
        return channel.status()
    return {"status": "ok"}


def _pipeline_status(services: Services) -> dict[str, Any]:
    """CPU defaults are always there; neural backends say what they lack ("unavailable: …");
    "modes" says which backends serve each mode here and why a better one was skipped."""
    from avatarbot.pipeline.bootstrap import pipeline_health
    from avatarbot.pipeline.neural_status import neural_backend_status

    return {
        "status": "ok",
        "default": {"tts": "espeak", "animator": "procedural", "enhancer": "detail"},
        "neural": neural_backend_status(services.settings),
        **pipeline_health(),
    }


# URLs (base URLs, webhook hosts) and filesystem paths (data dir, model files) describe the
# deployment; unauthenticated callers get the status without them.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\",;)]+")
_PATH = re.compile(r"(?<![\w:/.])(?:~|\.{1,2})?/[^\s'\",;)]+|\b[A-Za-z]:\\[^\s'\",;)]+")


def _hide(text: str) -> str:
    return _PATH.sub("[hidden]", _URL.sub("[hidden]", text))


def public_health(report: Any) -> Any:
    """The report with every URL and path replaced by "[hidden]" (for non-superusers)."""
    if isinstance(report, dict):
        return {key: public_health(value) for key, value in report.items()}
    if isinstance(report, list):
        return [public_health(value) for value in report]
    if isinstance(report, str):
        return _hide(report)
    return report
