"""Builtin plugin: speech audio normalize, denoise, EQ."""
