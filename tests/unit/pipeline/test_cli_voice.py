"""`avatarbot voice ...` through typer's runner (same code path as the installed command)."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile
from typer.testing import CliRunner

from avatarbot.cli import app

runner = CliRunner()


def test_say_writes_audio(tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    result = runner.invoke(app, ["voice", "say", "你好。Hello.", "-o", str(out), "--speed", "1.2"])
    assert result.exit_code == 0, result.output
    data, sr = soundfile.read(out)
    assert sr == 22050 and len(data) > sr // 2


def test_say_errors_are_clear(tmp_path: Path) -> None:
    result = runner.invoke(app, ["voice", "say", "  ", "-o", str(tmp_path / "x.wav")])
    assert result.exit_code == 2 and "text is empty" in result.output
    result = runner.invoke(app, ["voice", "say", "hi", "-o", str(tmp_path / "x.xyz")])
    assert result.exit_code == 2 and "unsupported audio format" in result.output
    result = runner.invoke(
        app, ["voice", "say", "hi", "-o", str(tmp_path / "x.wav"), "--backend", "nope"]
    )
    assert result.exit_code == 2 and "unknown TTS backend" in result.output


def test_list_backends_and_clean(tmp_path: Path) -> None:
    result = runner.invoke(app, ["voice", "list", "--language", "en"])
    assert result.exit_code == 0 and "en-us" in result.output and "cmn " not in result.output
    result = runner.invoke(app, ["voice", "backends"])
    assert result.exit_code == 0 and "espeak       available" in result.output
    spoken = tmp_path / "spoken.mp3"
    assert runner.invoke(app, ["voice", "say", "Clean me up.", "-o", str(spoken)]).exit_code == 0
    result = runner.invoke(app, ["voice", "clean", str(spoken), "-o", str(tmp_path / "c.wav")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["sample_rate"] == 22050 and abs(report["rms_db"] + 20) < 1
