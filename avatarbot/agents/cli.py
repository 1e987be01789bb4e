"""`avatarbot agent ...`: list agents and chat with one from the shell (same path as the bot)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from avatarbot.services import Services

agent_app = typer.Typer(help="Agents: list them, talk to one.", no_args_is_help=True)


async def _with_services(work: Callable[[Services], Awaitable[None]]) -> None:
    from avatarbot.app import build_services, start_services, stop_services
    from avatarbot.config import ConfigManager, Settings

    services = await build_services(ConfigManager(Settings()))
    await start_services(services)
    try:
        await work(services)
    finally:
        await stop_services(services)


@agent_app.command("list")
def list_agents() -> None:
    """Print each agent with its capabilities and brain."""

    async def work(services: Services) -> None:
        for agent in await services.agents.list_profiles():
            default = " (default)" if agent.is_default else ""
            caps = ",".join(agent.capabilities) or "-"
            typer.echo(f"{agent.name}{default}\tbrain={agent.brain}\tcapabilities={caps}")

    import asyncio  # here, not at the top: every `avatarbot` command imports this module

    asyncio.run(_with_services(work))


@agent_app.command("chat")
def chat(
    text: str = typer.Argument(..., help="What to say, e.g. 'make a video saying hello'."),
    agent: str | None = typer.Option(None, help="Agent name (default: the default agent)."),
    conversation: str = typer.Option("cli", help="Conversation id (memory is kept per id)."),
    wait: bool = typer.Option(False, help="Wait for media tasks and print their files."),
) -> None:
    """Send one message to an agent and print its replies (streamed text as it comes)."""
    from avatarbot.bot.types import Channel, IncomingMessage
    from avatarbot.jobs import service as task_service

    async def work(services: Services) -> None:
        def on_event(event: dict[str, object]) -> None:
            if event.get("type") == "token":
                typer.echo(str(event.get("text", "")), nl=False)
            elif event.get("type") == "tool_call":
                typer.secho(f"\n[tool] {event.get('name')} {event.get('arguments')}", dim=True)

        message = IncomingMessage(
            channel=Channel.WEB, chat_id=conversation, user_id="cli", text=text
        )
        replies = await services.agents.handle(message, agent_name=agent, on_event=on_event)
        typer.echo("")
        for reply in replies:
            if reply.task_id:
                typer.echo(f"[{reply.kind.value}] task {reply.task_id}")
                if wait:
                    await services.executor.wait(reply.task_id)
                    async with services.db.session() as session:
                        task = await task_service.get_or_raise(
                            session=session, task_id=reply.task_id
                        )
                    outcome = task.result_path or task.error_message or ""
                    typer.echo(f"  -> {task.status.value} {outcome}")
            elif reply.path:
                typer.echo(f"[{reply.kind.value}] {reply.path}")

    import asyncio  # here, not at the top: every `avatarbot` command imports this module

    asyncio.run(_with_services(work))
