"""The `avatarbot` command. Sub-commands import their heavy parts only when they run."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

import typer

from avatarbot import __version__
from avatarbot.agents.cli import agent_app
from avatarbot.pipeline.cli_voice import voice_app
from avatarbot.pipeline.models_cli import app as models_app
from avatarbot.plugins.cli import plugins_app

if TYPE_CHECKING:
    from avatarbot.config import Settings

app = typer.Typer(
    name="avatarbot",
    help="Chat-bot agents for Feishu and WeCom that answer with talking digital-human videos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(voice_app, name="voice")
app.add_typer(agent_app, name="agent")
app.add_typer(plugins_app, name="plugins")
app.add_typer(models_app, name="models")


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    # Eager: handled while parsing, so `avatarbot --version` needs no sub-command.
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    pass


def missing_extras(settings: Settings) -> list[str]:
    """The pip extras this configuration needs but this install lacks (checked before starting)."""
    import importlib.util

    needed: list[tuple[str, tuple[str, ...]]] = []
    if settings.redis_url:
        needed.append(("redis", ("redis", "celery")))
    if settings.database_url.startswith("postgresql+asyncpg"):
        needed.append(("postgres", ("asyncpg",)))
    return [
        extra
        for extra, modules in needed
        if any(importlib.util.find_spec(module) is None for module in modules)
    ]


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default from settings)."),
    port: int | None = typer.Option(None, help="Port (default from settings, 8000)."),
    reload: bool = typer.Option(False, help="Restart on code changes (development)."),
) -> None:
    """Apply migrations and run the HTTP server (API, webhooks, web console)."""
    import uvicorn

    from avatarbot.config import Settings

    settings = Settings()
    missing = missing_extras(settings)
    if missing:
        fail(
            f"this configuration needs {', '.join(missing)}: "
            f"pip install 'avatarbot[{','.join(missing)}]' (from a checkout: pip install -e '.[{','.join(missing)}]')"
        )
    # Migrations are applied by the app's lifespan (avatarbot.app.build_services) at start-up.
    bind_host, bind_port = host or settings.host, port or settings.port
    shown = "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host
    typer.echo(
        f"avatarbot: web console http://{shown}:{bind_port}/ , API docs http://{shown}:{bind_port}/docs"
    )
    uvicorn.run(
        "avatarbot.asgi:app",
        host=bind_host,
        port=bind_port,
        reload=reload,
        factory=False,
        log_config=None,
        ws="auto",  # websockets' sans-I/O protocol (the legacy one is deprecated)
        access_log=False,  # our middleware logs each request with its request id
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from avatarbot.config import Settings
    from avatarbot.storage import migrate

    settings = Settings()
    settings.ensure_dirs()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at {migrate.current(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument("-1")) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from avatarbot.config import Settings
    from avatarbot.storage import migrate

    settings = Settings()
    migrate.downgrade(settings.database_url, revision)
    typer.echo(f"database at {migrate.current(settings.database_url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    from avatarbot.config import Settings
    from avatarbot.storage import migrate

    settings = Settings()
    typer.echo(f"current: {migrate.current(settings.database_url)}  head: {migrate.head()}")


@user_app.command("create")
def user_create(
    email: str = typer.Option(..., prompt=True, help="Login email."),
    username: str | None = typer.Option(None, help="Optional login name."),
    password: str | None = typer.Option(
        None, help="Password (prompted when omitted; prefer the prompt, not shell history)."
    ),
    superuser: bool = typer.Option(False, "--superuser", help="Grant administrator rights."),
) -> None:
    """Create a user account."""
    from avatarbot.auth import service as user_service
    from avatarbot.config import Settings
    from avatarbot.errors import AvatarbotError
    from avatarbot.storage import migrate
    from avatarbot.storage.db import Database

    if password is None:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
    if len(password) < 8:
        fail("password must have at least 8 characters")
    settings = Settings()
    settings.ensure_dirs()
    migrate.upgrade(settings.database_url)

    async def _create() -> None:
        db = Database(settings.database_url)
        try:
            async with db.session() as session:
                user = await user_service.create(
                    session=session,
                    email=email,
                    password=password,
                    username=username,
                    is_superuser=superuser,
                )
                typer.echo(f"created user {user.id} <{user.email}> superuser={user.is_superuser}")
        finally:
            await db.dispose()

    try:
        import asyncio

        asyncio.run(_create())
    except AvatarbotError as exc:
        fail(exc.message)


def _register_domains() -> None:
    from avatarbot.agents.knowledge.bench import register as register_knowledge_bench
    from avatarbot.jobs.cli import worker  # light: celery loads only when it runs
    from avatarbot.pipeline.cli import bench_app
    from avatarbot.pipeline.cli import register as register_pipeline

    register_pipeline(app)  # render, bench pipeline
    register_knowledge_bench(bench_app)  # bench knowledge
    from avatarbot.bot.bench import bench_webhook

    bench_app.command("webhook")(bench_webhook)  # bench webhook
    app.command("worker")(worker)


_register_domains()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
