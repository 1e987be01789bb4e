"""Built-in agent tools: make_video, speak, list_digital_humans, schedule_report.

They are built per message (closures over the services, the agent and the incoming message), so
a tool knows who asked and from which chat without the model having to pass it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from avatarbot.agents.profile import AgentProfile
from avatarbot.agents.tools.schedule import create_schedule
from avatarbot.auth.access import caller_of, chat_owner_of, usable_digital_human, visible_humans
from avatarbot.bot.types import Channel, IncomingMessage
from avatarbot.errors import NotFound
from avatarbot.pipeline.service import (
    FEISHU_MAX_VIDEO_BYTES,
    WECOM_MAX_VIDEO_BYTES,
    create_video_task,
    ensure_default_digital_human,
)
from avatarbot.services import Services
from avatarbot.storage.models import DigitalHuman
from avatarbot.tools import ToolSpec

MODES = ["lipsync", "talking_head", "enhanced_lipsync", "enhanced_talking_head"]
# Audio format each channel can play natively (the channel may still convert).
AUDIO_FORMATS = {Channel.FEISHU: "opus", Channel.WECOM: "amr"}


@dataclass
class ToolCallContext:
    services: Services
    agent: AgentProfile
    message: IncomingMessage
    language: str = "en"


def _result_url(task_id: str) -> str:
    return f"/api/v1/tasks/{task_id}/result"


async def _visible_humans(ctx: ToolCallContext) -> list[DigitalHuman]:
    await ensure_default_digital_human(ctx.services)
    owner = ctx.message.owner_id
    async with ctx.services.db.session() as session:
        caller = await caller_of(session, owner)
        stmt = select(DigitalHuman).where(DigitalHuman.is_active.is_(True))
        # Chat identities (owner None) see the shared digital humans and the ones made from
        # their own photos, never other people's portraits.
        stmt = stmt.where(visible_humans(caller, chat_owner_of(ctx.message)))
        rows = await session.scalars(stmt.order_by(DigitalHuman.created_at))
        return list(rows.all())


async def _resolve_human(ctx: ToolCallContext, wanted: str | None) -> str | None:
    if not wanted:
        # The chat's choice (bot binding / web console selector), then the agent's own.
        hinted = ctx.message.raw.get("digital_human_id")
        if isinstance(hinted, str) and hinted:
            if ctx.message.owner_id is not None:
                # An account's choice (web console): it must be shared or its own. A chat's
                # binding was set by an administrator and needs no check.
                async with ctx.services.db.session() as session:
                    caller = await caller_of(session, ctx.message.owner_id)
                    await usable_digital_human(session, hinted, caller)
            return hinted
        return ctx.agent.digital_human_id
    key = wanted.strip().lower()
    for human in await _visible_humans(ctx):
        if human.id == wanted.strip() or human.name.lower() == key:
            return human.id
    raise NotFound(f"no digital human named {wanted!r}; ask me to list the digital humans")


async def _voice_profile_of(ctx: ToolCallContext) -> str | None:
    """The voice of the agent's digital human, so audio and video sound the same."""
    if not ctx.agent.digital_human_id:
        return None
    async with ctx.services.db.session() as session:
        human = await session.get(DigitalHuman, ctx.agent.digital_human_id)
        return human.voice_profile_id if human is not None else None


def builtin_tools(ctx: ToolCallContext) -> list[ToolSpec]:
    services, message = ctx.services, ctx.message
    zh = ctx.language == "zh"

    async def make_video(
        text: str, mode: str | None = None, digital_human: str | None = None
    ) -> dict[str, Any]:
        human_id = await _resolve_human(ctx, digital_human)
        max_bytes = {Channel.WECOM: WECOM_MAX_VIDEO_BYTES, Channel.FEISHU: FEISHU_MAX_VIDEO_BYTES}
        hinted_max = message.raw.get("max_video_bytes")
        task = await create_video_task(
            services,
            text=text,
            digital_human_id=human_id,
            mode=mode,
            user_id=message.owner_id,
            max_bytes=hinted_max if isinstance(hinted_max, int) else max_bytes.get(message.channel),
            extra={"agent": ctx.agent.name, "conversation": message.conversation},
        )
        note = (
            "视频正在生成，完成后会自动发送。"
            if zh
            else "The video is being generated and will be sent when it is ready."
        )
        return {
            "task_id": task.id,
            "status": task.status.value,
            "kind": "video",
            "url": _result_url(task.id),
            "text": text,
            "message": note,
        }

    async def speak(text: str, voice: str | None = None) -> dict[str, Any]:
        from avatarbot.pipeline.voice_task import create_voice_task

        task = await create_voice_task(
            services,
            text=text,
            voice=voice,
            audio_format=AUDIO_FORMATS.get(message.channel, "mp3"),
            profile_id=await _voice_profile_of(ctx),
            user_id=message.owner_id,
        )
        note = "语音正在生成，完成后会自动发送。" if zh else "The audio is being generated."
        return {
            "task_id": task.id,
            "status": task.status.value,
            "kind": "audio",
            "url": _result_url(task.id),
            "message": note,
        }

    async def list_digital_humans() -> dict[str, Any]:
        humans = await _visible_humans(ctx)
        return {
            "digital_humans": [
                {
                    "id": h.id,
                    "name": h.name,
                    "description": h.description,
                    "default_mode": h.default_mode,
                    "builtin": h.is_builtin,
                }
                for h in humans
            ]
        }

    async def schedule_report(
        cron: str,
        prompt: str,
        name: str | None = None,
        timezone: str | None = None,
        output: str = "text",
        target: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return await create_schedule(
            services,
            agent=ctx.agent.name,
            message=message,
            cron=cron,
            prompt=prompt,
            name=name,
            timezone=timezone,
            output=output,
            target=target,
        )

    text_param = {"type": "string", "description": "What the digital human says / 要说的话"}
    return [
        ToolSpec(
            name="make_video",
            description="Make a video of a digital human speaking the text (lip-synced). "
            "The video is sent to the user when ready.",
            handler=make_video,
            parameters={
                "type": "object",
                "properties": {
                    "text": text_param,
                    "mode": {"type": "string", "enum": MODES},
                    "digital_human": {
                        "type": "string",
                        "description": "Name or id of the digital human (default: the chat's)",
                    },
                },
                "required": ["text"],
            },
            capability="video",
        ),
        ToolSpec(
            name="speak",
            description="Read the text aloud: synthesise speech and send it as audio.",
            handler=speak,
            parameters={
                "type": "object",
                "properties": {"text": text_param, "voice": {"type": "string"}},
                "required": ["text"],
            },
            capability="voice",
        ),
        ToolSpec(
            name="list_digital_humans",
            description="List the digital humans (presenters) available for videos.",
            handler=list_digital_humans,
        ),
        ToolSpec(
            name="schedule_report",
            description="Schedule a recurring report: at each cron time the agent runs the "
            "prompt and posts the result (text, markdown or video) to this chat or a target.",
            handler=schedule_report,
            parameters={
                "type": "object",
                "properties": {
                    "cron": {
                        "type": "string",
                        "description": "5-field crontab, e.g. '0 9 * * *' for 09:00 daily",
                    },
                    "prompt": {"type": "string", "description": "What to report on"},
                    "name": {"type": "string"},
                    "timezone": {"type": "string", "description": "IANA zone, e.g. Asia/Shanghai"},
                    "output": {"type": "string", "enum": ["text", "markdown", "video"]},
                    "target": {
                        "type": "object",
                        "description": "{platform: feishu|wecom|webhook, chat_id?, user_id?, url?};"
                        " default: this chat",
                    },
                },
                "required": ["cron", "prompt"],
            },
            capability="schedule",
        ),
    ]
