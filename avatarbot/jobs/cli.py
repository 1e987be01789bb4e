"""`avatarbot worker`: a Celery worker for the cpu and/or gpu queues."""

from __future__ import annotations

import importlib
import os
import socket

import typer


def worker(
    queues: str = typer.Option("cpu,gpu", help="Comma-separated queues to consume (cpu, gpu)."),
    concurrency: int = typer.Option(1, min=1, help="Parallel tasks (processes) in this worker."),
    pool: str = typer.Option("prefork", help="Celery pool: prefork, threads or solo."),
    name: str | None = typer.Option(None, help="Worker node name (default: avatarbot-<pid>@host)."),
    include: list[str] = typer.Option(
        [], "--include", help="Extra module(s) to import, e.g. ones registering job handlers."
    ),
    loglevel: str = typer.Option("INFO", help="Worker log level."),
) -> None:
    """Run a Celery worker that executes queued tasks (needs AVATARBOT_REDIS_URL)."""
    from avatarbot.config import Settings
    from avatarbot.logging_setup import configure_logging

    settings = Settings()
    if not settings.redis_url:
        typer.secho("error: set AVATARBOT_REDIS_URL to run a worker", fg="red", err=True)
        raise typer.Exit(2)
    try:
        from avatarbot.jobs.celery_app import QUEUES, make_celery
    except ModuleNotFoundError as exc:  # `make run` installs the base package only
        typer.secho(
            f"error: {exc.name} is not installed; workers need the redis extra: "
            "pip install 'avatarbot[redis]' (from a checkout: pip install -e '.[redis]')",
            fg="red",
            err=True,
        )
        raise typer.Exit(2) from None
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if not chosen or unknown:
        typer.secho(f"error: unknown queue(s) {unknown}; use cpu and/or gpu", fg="red", err=True)
        raise typer.Exit(2)
    configure_logging(loglevel, settings.log_format)
    settings.ensure_dirs()
    for module in include:
        importlib.import_module(module)
    app = make_celery(settings)
    node = name or f"avatarbot-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(
        [
            "worker",
            f"--queues={','.join(chosen)}",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            f"--hostname={node}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
