"""Brains decide what an agent says and which tools it calls: offline rules or an LLM.

base.py holds the shared types, rules.py and llm.py the brains, factory.py picks and builds one.
"""

from __future__ import annotations

from avatarbot.agents.brains.base import Brain, BrainContext, BrainResult

__all__ = ["Brain", "BrainContext", "BrainResult"]
