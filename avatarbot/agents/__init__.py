"""Agents: who people talk to. AgentManager (profiles, memory, brains, tools) is the entry point."""
