"""Chat commands (/help, /video, /voice, /agent, /status, /reset) and the pre-agents default answer."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from avatarbot.bot import router
from avatarbot.bot.types import IncomingMessage, Reply, ReplyKind
from avatarbot.errors import AvatarbotError
from avatarbot.pipeline.service import create_video_task
from avatarbot.pipeline.voice_task import create_voice_task
from avatarbot.services import Services
from avatarbot.storage.models import Agent, Task, TaskStatus

HELP_TEXT = (
    "Commands:\n"
    "/help: this list\n"
    "/video <text>: a video of the digital human saying the text\n"
    "/voice <text>: the text as a voice message\n"
    "/avatar (with a photo, or after one): your photo becomes this chat's digital human\n"
    "/kb (after a document): the document goes into the agent's knowledge base\n"
    "/agent <name>: bind this chat to an agent\n"
    "/status: the agent of this chat and your running jobs\n"
    "/reset: forget this conversation\n"
    "/tool <name> {json}: call one of the agent's tools (e.g. an MCP server's) directly\n"
    "Anything else goes to the chat's agent."
)

CommandFn = Callable[[Services, IncomingMessage, str, int | None], Awaitable[list[Reply]]]


def parse(text: str) -> tuple[str, str] | None:
    """("video", "你好") for "/video 你好"; None when the text is not a command."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    name, _, arg = stripped[1:].partition(" ")
    if not name and not arg:
        return None
    return name.lower().split("@", 1)[0], arg.strip()


async def run(
    services: Services, msg: IncomingMessage, *, max_video_bytes: int | None = None
) -> list[Reply] | None:
    """Replies to a command, or None when the text is no command we know."""
    parsed = parse(msg.text)
    if parsed is None or parsed[0] not in COMMANDS:
        return None
    name, arg = parsed
    return await COMMANDS[name](services, msg, arg, max_video_bytes)


async def _help(
    services: Services, msg: IncomingMessage, arg: str, max_bytes: int | None
) -> list[Reply]:
    return [Reply.of_text(HELP_TEXT)]


async def _video(
    services: Services, msg: IncomingMessage, arg: str, max_bytes: int | None
) -> list[Reply]:
    if not arg:
        return [Reply.of_text("Usage: /video <text to say>")]
    route = await router.resolve(services, platform=msg.channel.value, chat_id=msg.chat_id)
    task = await create_video_task(
        services,
        text=arg,
        digital_human_id=route.digital_human_id,
        user_id=msg.owner_id,
        max_bytes=max_bytes,
        name=f"{msg.channel.value} video: {arg[:40]}",
        # Where the video goes: lets a restarted process finish the delivery (BotService.start).
        extra={
            "source": {
                "channel": msg.channel.value,
                "chat_id": msg.chat_id,
                "chat_type": msg.chat_type,
                "user_id": msg.user_id,
            }
        },
    )
    return [
        Reply(
            ReplyKind.VIDEO, text="Got it, making your video. This takes a moment.", task_id=task.id
        )
    ]


async def _voice(
    services: Services, msg: IncomingMessage, arg: str, max_bytes: int | None
) -> list[Reply]:
    if not arg:
        return [Reply.of_text("Usage: /voice <text to say>")]
    # WAV keeps one lossless source; each channel converts to what it plays (opus, AMR).
    task = await create_voice_task(
        services, text=arg, audio_format="wav", user_id=msg.owner_id, name=f"voice: {arg[:40]}"
    )
    return [Reply(ReplyKind.AUDIO, text="Got it, recording that for you.", task_id=task.id)]


async def _agent(
    services: Services, msg: IncomingMessage, arg: str, max_bytes: int | None
) -> list[Reply]:
    async with services.db.session() as session:
        names = list((await session.scalars(select(Agent.name).order_by(Agent.name))).all())
    if not arg:
        route = await router.resolve(services, platform=msg.channel.value, chat_id=msg.chat_id)
        listing = ", ".join(names) or router.DEFAULT_AGENT
        return [Reply.of_text(f"This chat talks to '{route.agent_name}'. Agents: {listing}")]
    if arg != router.default_agent_name(services) and arg not in names:
        listing = ", ".join(names) or router.DEFAULT_AGENT
        return [Reply.of_text(f"There is no agent called '{arg}'. Agents: {listing}")]
    await router.bind(services, platform=msg.channel.value, chat_id=msg.chat_id, agent_name=arg)
    return [Reply.of_text(f"This chat now talks to the agent '{arg}'.")]


async def _status(
    services: Services, msg: IncomingMessage, arg: str, max_bytes: int | None
) -> list[Reply]:
    route = await router.resolve(services, platform=msg.channel.value, chat_id=msg.chat_id)
    async with services.db.session() as session:
        running = await session.scalar(
            select(func.count())
            .select_from(Task)
            .where(Task.status.in_([TaskStatus.PENDING, TaskStatus.RUNNING]))
        )
    human = route.digital_human_id or "built-in"
    return [
        Reply.of_text(
            f"Agent: {route.agent_name}{'' if route.bound else ' (default)'}\n"
            f"Digital human: {human}\nJobs waiting or running: {running or 0}"
        )
    ]


async def _reset(
    services: Services, msg: IncomingMessage, arg: str, max_bytes: int | None
) -> list[Reply]:
    agents = services.agents
    reset = getattr(agents, "reset", None) if agents is not None else None
    if reset is None:
        return [Reply.of_text("Nothing to forget yet: this chat has no conversation memory.")]
    try:
        result = reset(msg.conversation)
        if inspect.isawaitable(result):
            await result
    except AvatarbotError as exc:
        return [Reply.of_text(f"Could not reset: {exc.message}")]
    return [Reply.of_text("Done, I have forgotten our conversation.")]


COMMANDS: dict[str, CommandFn] = {
    "help": _help,
    "start": _help,
    "video": _video,
    "voice": _voice,
    "agent": _agent,
    "status": _status,
    "reset": _reset,
}


async def default_answer(services: Services, msg: IncomingMessage) -> list[Reply]:
    """Until an AgentManager is running: a helpful nudge towards the commands."""
    if not msg.text:
        kinds = ", ".join(a.kind for a in msg.attachments) or "message"
        return [
            Reply.of_text(f"I received your {kinds}, but I can only work with text for now. /help")
        ]
    return [
        Reply.of_text(
            f"You said: {msg.text[:200]}\n"
            "Send /video <text> and I will answer with a video of me saying it. /help lists all commands."
        )
    ]
