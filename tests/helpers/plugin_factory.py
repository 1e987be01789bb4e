"""Write small test plugins to disk (manifest + module) for plugin-system tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

PLUGIN_TEMPLATE = """
from avatarbot.plugins.base import Plugin


class {cls}(Plugin):
    def on_load(self, context):
        super().on_load(context)
        self.calls = 0

    def get_state(self):
        return {{"calls": self.calls}}

    def set_state(self, state):
        self.calls = state.get("calls", 0)

    def answer(self, question: str = "") -> dict:
        self.calls += 1
        return {{"answer": "{answer}", "calls": self.calls}}

    def tools(self):
        return [
            self.tool(
                "ask",
                "Answer a question",
                self.answer,
                {{"question": {{"type": "string"}}}},
            )
        ]
"""


def write_plugin(
    plugins_dir: Path,
    name: str,
    version: str = "1.0.0",
    answer: str = "v1",
    dependencies: list[str] | None = None,
    body: str | None = None,
    manifest_format: str = "yaml",
    config_schema: dict | None = None,
) -> Path:
    folder = plugins_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": name,
        "version": version,
        "description": f"test plugin {name}",
        "entry_point": "main:TestPlugin",
        "dependencies": dependencies or [],
        "config_schema": config_schema or {},
        "tools": [{"name": "ask", "description": "Answer a question"}],
    }
    if manifest_format == "json":
        (folder / "plugin.json").write_text(json.dumps(manifest), encoding="utf-8")
    else:
        import yaml

        (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    source = body if body is not None else PLUGIN_TEMPLATE.format(cls="TestPlugin", answer=answer)
    (folder / "main.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return folder
