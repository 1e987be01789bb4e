"""Which brain answers an agent, and building it.

The concrete brains import base.py for the shared types; keeping their construction here (not in
base.py) means nothing imports back the other way.
"""

from __future__ import annotations

from avatarbot.agents.brains.base import Brain
from avatarbot.agents.brains.llm import LLMBrain
from avatarbot.agents.brains.rules import RulesBrain
from avatarbot.config import Settings


def choose_brain_kind(agent_brain: str, settings: Settings) -> str:
    """'llm' or 'rules' for an agent's brain setting ('auto' picks llm only when configured)."""
    if agent_brain == "rules":
        return "rules"
    if settings.llm.enabled:
        return "llm"
    return "rules"  # 'llm' without a configured server falls back rather than failing every chat


def build_brain(kind: str, settings: Settings) -> Brain:
    if kind == "llm":
        return LLMBrain(settings.llm)
    return RulesBrain()
