"""Job handlers for pipeline work (video generation, speech); registered with jobs.handlers."""

from __future__ import annotations
