"""Builtin plugin: video editing with ffmpeg."""
