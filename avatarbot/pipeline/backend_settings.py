"""Reading pipeline settings for the backends: a leaf module (imports nothing of avatarbot).

Backends (tts/*, animators/*, enhancers/*) read their configuration through these helpers, and
the status/bootstrap modules import the backends: keeping the helpers here, not in
neural_status, is what keeps that dependency one-way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def data_dir_of(settings_or_data_dir: Any) -> Path:
    """DATA_DIR of a Settings object, or the path itself."""
    if isinstance(settings_or_data_dir, str | os.PathLike):
        return Path(settings_or_data_dir)
    return Path(settings_or_data_dir.data_dir)


def pipeline_setting(settings: Any, name: str, default: Any = None) -> Any:
    """settings.pipeline.<name> (the app's Settings), else settings.<name>, else default.

    A plain data-dir path carries no settings: every lookup gives the default. Empty strings
    count as unset, so `wav2lip_checkpoint: ""` means "use the cache layout".
    """
    if settings is None or isinstance(settings, str | os.PathLike):
        return default
    for holder in (getattr(settings, "pipeline", None), settings):
        value = getattr(holder, name, None) if holder is not None else None
        if value not in (None, ""):
            return value
    return default
