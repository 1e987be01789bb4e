"""Builtin plugin: resumable, sha256-verified model downloads."""
