from __future__ import annotations

import hashlib
import json
import zipfile

from typer.testing import CliRunner

from avatarbot.cli import app
from tests.helpers.plugin_factory import PLUGIN_TEMPLATE

runner = CliRunner()


def test_install_list_reload(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBOT_DATA_DIR", str(tmp_path / "data"))
    archive = tmp_path / "hello.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("plugin.yaml", "name: hello\nversion: 0.3.0\nentry_point: main:TestPlugin\n")
        zf.writestr("main.py", PLUGIN_TEMPLATE.format(cls="TestPlugin", answer="cli"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()

    result = runner.invoke(app, ["plugins", "install", str(archive), "--sha256", "1" * 64])
    assert result.exit_code == 1 and "sha256" in result.output
    result = runner.invoke(app, ["plugins", "install", str(archive), "--sha256", digest])
    assert result.exit_code == 0, result.output
    assert "installed hello 0.3.0" in result.output

    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["hello"]["loaded"] and rows["hello"]["tools"] == ["hello.ask"]
    assert rows["video_editor"]["origin"] == "builtin"

    (tmp_path / "data" / "plugins" / "hello" / "main.py").write_text("raise ValueError('bad')\n")
    result = runner.invoke(app, ["plugins", "reload", "hello"])
    assert result.exit_code == 1 and "bad" in result.output
    log = (tmp_path / "data" / "logs" / "plugin_installs.log").read_text().splitlines()
    assert [json.loads(line)["ok"] for line in log] == [False, True]
