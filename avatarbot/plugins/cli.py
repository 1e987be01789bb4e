"""`avatarbot plugins list|install|reload` (registered by avatarbot/cli.py).

The CLI works on DATA_DIR directly; a running server picks installed or edited plugins up by
itself within a few seconds (its watcher), or at once with `reload --server URL --token T`.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer

plugins_app = typer.Typer(help="Plugins: list, install, hot-reload.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _service():
    from avatarbot.config import Settings
    from avatarbot.plugins.service import PluginService

    settings = Settings()
    settings.ensure_dirs()
    return PluginService(
        settings.data_dir, media_dir=settings.media_dir, redis_url=settings.redis_url
    )


@plugins_app.command("list")
def list_plugins(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every plugin found (builtin and installed), whether it loads, and its tools."""
    service = _service()
    try:
        service.start(watch_interval=None)
        rows = service.describe_all()
    finally:
        service.stop()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "loaded" if row["loaded"] else ("disabled" if not row["enabled"] else "FAILED")
        typer.echo(f"{row['name']:<20} {row['version']:<10} {row['origin']:<8} {state}")
        if row["error"]:
            typer.echo(f"    error: {row['error']}")
        if row["tools"]:
            typer.echo(f"    tools: {', '.join(row['tools'])}")


@plugins_app.command("install")
def install(
    archive: Path | None = typer.Argument(None, help=".zip/.whl/.tar.gz plugin archive."),
    sha256: str | None = typer.Option(None, help="Expected sha256 of the archive (required)."),
    name: str | None = typer.Option(None, help="Install this plugin from the registry instead."),
    registry_url: str | None = typer.Option(None, help="Registry index URL to sync first."),
) -> None:
    """Install a plugin (verified by sha256, logged to DATA_DIR/logs/plugin_installs.log)."""
    from avatarbot.errors import AvatarbotError

    service = _service()
    actor = f"cli:{getpass.getuser()}"
    try:
        if archive is not None:
            if not sha256:
                _fail("--sha256 is required with an archive")
            manifest = service.installer.install_archive(archive, sha256 or "", actor=actor)
        elif name:
            if registry_url:
                ok, message = service.registry.sync_from_remote(registry_url)
                if not ok:
                    _fail(message)
            manifest = service.installer.install_from_registry(name, actor=actor)
        else:
            _fail("give an ARCHIVE with --sha256, or --name", code=2)
            return
    except AvatarbotError as exc:
        _fail(exc.message)
        return
    typer.echo(f"installed {manifest.name} {manifest.version}")
    try:
        service.load_plugin(manifest.name)
        typer.echo("loads fine; running servers pick it up within seconds")
    except AvatarbotError as exc:
        _fail(f"installed, but it does not load: {exc.message}")
    finally:
        service.stop()


@plugins_app.command("reload")
def reload(
    name: str | None = typer.Argument(None, help="Plugin to reload (default: all)."),
    server: str | None = typer.Option(None, help="Base URL of a running server to reload on."),
    token: str | None = typer.Option(
        None, envvar="AVATARBOT_TOKEN", help="Superuser access token for --server."
    ),
) -> None:
    """Hot-reload on a running server (--server), or check locally that plugins load."""
    if server:
        import httpx

        if not token:
            _fail("--token (or AVATARBOT_TOKEN) is required with --server", code=2)
        response = httpx.post(
            server.rstrip("/") + "/api/v1/plugins/reload",
            json={"name": name},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        if response.status_code != 200:
            _fail(f"{response.status_code}: {response.json().get('detail', response.text)}")
        results = response.json()["results"]
    else:
        service = _service()
        try:
            loaded = service.start(watch_interval=None)
            targets = [name] if name else list(loaded)
            results = {}
            for item in targets:
                info = service.describe(item)
                results[item] = {
                    "ok": info["loaded"],
                    "version": info["version"],
                    "error": info["error"],
                }
        finally:
            service.stop()
    failed = False
    for item, result in results.items():
        mark = "ok" if result["ok"] else "FAILED"
        typer.echo(f"{item:<20} {result['version']:<10} {mark}")
        if result.get("error"):
            typer.echo(f"    error: {result['error']}")
        failed |= not result["ok"]
    if failed:
        raise typer.Exit(1)
