"""Brains decide what an agent says and which tools it calls: offline rules or an LLM."""

from __future__ import annotations

from avatarbot.agents.brains.base import Brain, BrainContext, BrainResult, choose_brain_kind

__all__ = ["Brain", "BrainContext", "BrainResult", "choose_brain_kind"]
