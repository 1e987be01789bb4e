"""The brain modules form no import circle: base.py knows no concrete brain; factory.py builds them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from avatarbot.agents.brains.factory import build_brain, choose_brain_kind
from avatarbot.agents.brains.llm import LLMBrain
from avatarbot.agents.brains.rules import RulesBrain
from avatarbot.config import Settings

BRAINS = Path(__file__).resolve().parents[3] / "avatarbot" / "agents" / "brains"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_base_imports_no_concrete_brain() -> None:
    imported = _imports(BRAINS / "base.py")
    assert not {m for m in imported if m.startswith("avatarbot.agents.brains")}
    # ...and no concrete brain imports the factory back.
    for name in ("llm.py", "rules.py"):
        assert "avatarbot.agents.brains.factory" not in _imports(BRAINS / name)


def test_importing_base_loads_no_brain() -> None:
    code = (
        "import sys, avatarbot.agents.brains.base as b; "
        "print(sorted(m for m in sys.modules if m.startswith('avatarbot.agents.brains.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=BRAINS.parents[2],
    ).stdout
    assert "avatarbot.agents.brains.base" in out
    assert "brains.llm" not in out and "brains.rules" not in out


def test_factory_builds_each_kind() -> None:
    offline = Settings(_env_file=None)  # type: ignore[call-arg]
    online = Settings(_env_file=None, llm={"base_url": "http://127.0.0.1:9/v1", "model": "m"})  # type: ignore[call-arg]
    assert choose_brain_kind("auto", offline) == "rules"
    assert choose_brain_kind("llm", offline) == "rules"
    assert choose_brain_kind("auto", online) == "llm"
    assert choose_brain_kind("rules", online) == "rules"
    assert isinstance(build_brain("llm", online), LLMBrain)
    assert isinstance(build_brain("rules", offline), RulesBrain)
