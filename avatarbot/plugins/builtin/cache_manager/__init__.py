"""Builtin plugin: key-value cache with TTL and stats (memory or Redis)."""
