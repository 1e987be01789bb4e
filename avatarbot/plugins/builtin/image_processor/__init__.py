"""Builtin plugin: image resize, crop, format conversion and face crop."""
