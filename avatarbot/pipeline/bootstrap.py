"""One pipeline set-up per process, the same in every entry point.

    from avatarbot.pipeline.bootstrap import bootstrap_pipeline
    runtime = bootstrap_pipeline(settings)   # serve, agent chat (build_services), the Celery
                                             # worker (per worker process), render, bench, voice

It wires what would otherwise import in circles (backends <-> status, jobs <-> pipeline):
- the neural backends (wav2lip, sadtalker, gfpgan, coqui, piper, openai) into the stage
  registries, so `render --backend wav2lip` works wherever the checkpoint is present;
- one ModelManager for the process: every backend keeps its loaded network in its LRU (under
  pipeline.model_memory_gb) on the device it picks (pipeline.device: auto = cuda -> mps -> cpu),
  so tasks share loaded networks instead of each loading its own;
- the video and speech job handlers (not for `render`, `voice say` and `bench`, which run no
  jobs: the handlers import the database models, a third of a second of CLI start-up);
- the native-log switches that keep mediapipe/TFLite chatter off the terminal.

Nothing heavy is imported here: factories are lazy and the device is picked on first load.
Calling it again with the same settings is a no-op; with other settings (a reload, another
data dir in tests) it registers again, keeping the ModelManager while its own settings hold.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatarbot.pipeline.backend_settings import data_dir_of, pipeline_setting
from avatarbot.pipeline.models import ModelManager
from avatarbot.pipeline.native_logs import configure_native_logging

# Settings the backends read when they register (a change means registering again).
BACKEND_KEYS = (
    "commercial_use",
    "device",
    "wav2lip_checkpoint",
    "gfpgan_checkpoint",
    "sadtalker_dir",
    "sadtalker_checkpoint_dir",
    "sadtalker_python",
    "piper_voice",
    "xtts_model_dir",
    "openai_tts_base_url",
    "openai_tts_api_key",
    "openai_tts_model",
)


@dataclass(frozen=True)
class PipelineRuntime:
    """What the bootstrap set up for this process."""

    data_dir: Path
    models: ModelManager
    key: tuple[Any, ...]


_runtime: PipelineRuntime | None = None
_lock = threading.Lock()


def _manager_key(settings: Any) -> tuple[Any, ...]:
    return (
        str(data_dir_of(settings) / "models"),
        str(pipeline_setting(settings, "device", "auto")),
        float(pipeline_setting(settings, "model_memory_gb", 4.0)),
        bool(pipeline_setting(settings, "commercial_use", False)),
    )


def _backend_key(settings: Any) -> tuple[Any, ...]:
    values = []
    for name in BACKEND_KEYS:
        value = pipeline_setting(settings, name)
        secret = getattr(value, "get_secret_value", None)
        values.append(secret() if callable(secret) else value)
    return (str(data_dir_of(settings)), *values)


def bootstrap_pipeline(settings: Any, *, jobs: bool = True) -> PipelineRuntime:
    """Register backends (and, with `jobs`, the job handlers) and create the process's
    ModelManager (idempotent)."""
    global _runtime
    from avatarbot.pipeline import frame_farm
    from avatarbot.pipeline.neural import register_neural_backends

    configure_native_logging()
    frame_farm.configure(int(pipeline_setting(settings, "render_processes", 2)))
    key = (*_manager_key(settings), *_backend_key(settings))
    with _lock:
        current = _runtime
        if current is not None and current.key == key and _still_registered(jobs):
            return current
        if current is not None and current.key[:4] == _manager_key(settings):
            models = current.models  # same models dir, device and budget: keep what is loaded
        else:
            _, device, budget_gb, commercial = _manager_key(settings)
            models = ModelManager(
                data_dir_of(settings) / "models",
                device=device,
                max_cache_size_gb=budget_gb,
                commercial=commercial,
            )
        register_neural_backends(settings, model_cache=models)
        if jobs:
            from avatarbot.pipeline.tasks import register_pipeline_handlers

            register_pipeline_handlers()
        _runtime = PipelineRuntime(data_dir_of(settings), models, key)
        return _runtime


def _still_registered(jobs: bool) -> bool:
    """Whether the registrations are still in place (tests reset the registries)."""
    from avatarbot.pipeline.animators import animator_names
    from avatarbot.pipeline.enhancers import enhancer_names
    from avatarbot.pipeline.tts import tts_backend_names

    backends = (
        {"wav2lip", "sadtalker"} <= set(animator_names())
        and "gfpgan" in enhancer_names()
        and {"coqui", "piper", "openai"} <= set(tts_backend_names())
    )
    if not backends or not jobs:
        return backends
    from avatarbot.jobs.handlers import has_handler
    from avatarbot.storage.models import TaskType

    return has_handler(TaskType.VIDEO_GENERATION) and has_handler(TaskType.VOICE_SYNTHESIS)


def bootstrap_from_environment(*, jobs: bool = True) -> Any:
    """For the CLI commands: Settings from the environment / .env, bootstrapped; returns them.
    Commands that run no jobs (render, voice say, bench) pass jobs=False."""
    from avatarbot.config import Settings

    settings = Settings()
    bootstrap_pipeline(settings, jobs=jobs)
    return settings


def current_runtime() -> PipelineRuntime | None:
    """The runtime of the last bootstrap in this process (None before any)."""
    return _runtime


def model_manager() -> ModelManager | None:
    return _runtime.models if _runtime is not None else None


def pipeline_health() -> dict[str, Any]:
    """For /health: what "auto" picks per mode (and why not better), and the loaded networks."""
    from avatarbot.pipeline.backend_choice import choices_by_mode

    out: dict[str, Any] = {"modes": choices_by_mode()}
    runtime = _runtime
    if runtime is not None:
        stats = runtime.models.get_cache_stats()
        out["models"] = {
            "device": runtime.models.known_device() or "auto (picked on first load)",
            "loaded": stats["loaded_models"],
            "loaded_mb": round(stats["loaded_bytes"] / 2**20, 1),
            "budget_mb": round(stats["max_cache_bytes"] / 2**20, 1),
            "loads": stats["loads"],
            "hits": stats["hits"],
        }
    return out
