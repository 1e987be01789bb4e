"""`avatarbot models list|download|verify`: Typer commands; avatarbot/cli.py mounts `app`.

The data directory comes from --data-dir, else the app settings (AVATARBOT_DATA_DIR).
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Neural model files: list, download, verify.", no_args_is_help=True)

DataDirOption = typer.Option(None, "--data-dir", help="DATA_DIR (models live in DATA_DIR/models)")


def _settings():
    from avatarbot.config import Settings

    return Settings()


def _data_dir(explicit: Path | None) -> Path:
    return explicit if explicit is not None else Path(_settings().data_dir)


def _commercial() -> bool:
    """AVATARBOT_PIPELINE__COMMERCIAL_USE=true refuses non-commercial licences."""
    return bool(_settings().pipeline.commercial_use)


def _manager(data_dir: Path | None):
    from avatarbot.pipeline.models import ModelManager

    return ModelManager(_data_dir(data_dir) / "models", device="cpu", commercial=_commercial())


def _size(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:.0f} MiB"


@app.command("list")
def list_models(data_dir: Path | None = DataDirOption) -> None:
    """Known models, their licence and whether they can run here (and why not)."""
    from avatarbot.pipeline.neural_status import neural_backend_status

    manager = _manager(data_dir)
    rows = [("MODEL", "VERSION", "BACKEND", "SIZE", "LICENCE", "COMMERCIAL", "STATUS")]
    for info in manager.list_models():
        status = manager.status(info.name)
        size = sum(f.size or 0 for f in info.files) or None
        rows.append(
            (
                info.name,
                info.version,
                info.backend,
                _size(size),
                info.license,
                "yes" if info.commercial_use else "no",
                "ok" if status.ok else f"unavailable: {status.reason}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        typer.echo(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    typer.echo("\nBackends:")
    target = data_dir if data_dir is not None else _settings()
    for name, state in neural_backend_status(target).items():
        typer.echo(f"  {name}: {state}")


@app.command("download")
def download_model(
    name: str,
    url: str | None = typer.Option(None, "--url", help="download from this URL instead"),
    data_dir: Path | None = DataDirOption,
) -> None:
    """Download a model's files into DATA_DIR/models/<backend>/ (resumes, verifies sha256)."""
    from avatarbot.errors import AvatarbotError
    from avatarbot.pipeline.download import tqdm_progress

    manager = _manager(data_dir)
    try:
        paths = manager.download(name, url=url, progress=lambda f: tqdm_progress(f.name))
    except AvatarbotError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    for path in paths:
        typer.echo(f"ok {path}")


@app.command("verify")
def verify_models(
    name: str | None = typer.Argument(None), data_dir: Path | None = DataDirOption
) -> None:
    """Check size and sha256 of installed model files; exit 1 if any is missing or corrupted."""
    from avatarbot.errors import AvatarbotError

    manager = _manager(data_dir)
    try:
        checks = manager.verify(name)
    except AvatarbotError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if not checks:
        typer.echo("no model files installed")
    bad = 0
    for check in checks:
        if check.ok:
            typer.echo(f"ok       {check.model}: {check.path}")
        else:
            bad += 1
            typer.echo(f"FAILED   {check.model}: {check.path}: {check.problem}", err=True)
    if bad:
        raise typer.Exit(1)
