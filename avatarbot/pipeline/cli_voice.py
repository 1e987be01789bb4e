"""`avatarbot voice ...`: speak text to a file, list voices/backends, clean a recording.

Imports only typer at module level; the pipeline loads when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from avatarbot.errors import AvatarbotError

voice_app = typer.Typer(help="Text to speech and audio clean-up.", no_args_is_help=True)


@voice_app.callback()
def _bootstrap() -> None:
    """Text to speech and audio clean-up."""
    # Every voice command sees the same TTS backends as the server and workers.
    from avatarbot.pipeline.bootstrap import bootstrap_from_environment

    bootstrap_from_environment(jobs=False)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@voice_app.command("say")
def say(
    text: str = typer.Argument(..., help="What to say (Chinese, English or mixed)."),
    output: Path = typer.Option(..., "-o", "--output", help="wav, mp3, opus, ogg, amr or m4a"),
    voice: str | None = typer.Option(None, help="Voice id or name, e.g. cmn, en-us."),
    language: str | None = typer.Option(None, help="Force one language (zh/cmn, en)."),
    speed: float = typer.Option(1.0, help="0.25-4.0"),
    pitch: float = typer.Option(1.0, help="0.25-2.0"),
    backend: str = typer.Option("auto", help="TTS backend name, or auto."),
) -> None:
    """Speak TEXT into an audio file."""
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer

    try:
        synth = VoiceSynthesizer(backend=backend)
        path = synth.synthesize(
            text, output, voice=voice, language=language, speed=speed, pitch=pitch
        )
    except AvatarbotError as exc:
        _fail(exc.message)
    typer.echo(f"wrote {path} ({synth.backend_name})")


@voice_app.command("list")
def list_voices(
    language: str | None = typer.Option(None, help="Only voices for this language."),
    backend: str = typer.Option("auto", help="TTS backend name, or auto."),
) -> None:
    """List the voices of a TTS backend."""
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer

    try:
        voices = VoiceSynthesizer(backend=backend).list_voices(language)
    except AvatarbotError as exc:
        _fail(exc.message)
    for v in voices:
        typer.echo(f"{v.id:24} {v.language:16} {v.gender:7} {v.name}")


@voice_app.command("backends")
def backends() -> None:
    """TTS backends in auto order and whether each can run here."""
    from avatarbot.pipeline.tts import list_tts_backends

    for name, availability in list_tts_backends():
        state = "available" if availability.ok else f"unavailable: {availability.reason}"
        typer.echo(f"{name:12} {state}")


@voice_app.command("clean")
def clean(
    source: Path = typer.Argument(..., help="Any audio file ffmpeg can read."),
    output: Path = typer.Option(..., "-o", "--output"),
    sample_rate: int = typer.Option(22050),
    denoise: bool = typer.Option(True),
) -> None:
    """Denoise, trim and normalise a recording; print its quality report as JSON."""
    from avatarbot.pipeline.audio import AudioPreprocessor

    try:
        path, report = AudioPreprocessor(sample_rate=sample_rate).preprocess(
            source, output, denoise=denoise
        )
    except AvatarbotError as exc:
        _fail(exc.message)
    typer.echo(json.dumps({"output": path, **report}, ensure_ascii=False, indent=2))
