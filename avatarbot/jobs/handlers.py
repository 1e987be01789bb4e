"""Registry of task handlers: what runs for each TaskType.

A handler is a plain blocking function run in a worker thread (local executor) or a
Celery worker process. It reports progress through the context and returns a result dict;
a "path" key in the result becomes Task.result_path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from avatarbot.config import Settings
from avatarbot.storage.models import TaskType


@dataclass
class JobContext:
    task_id: str
    params: dict[str, Any]
    settings: Settings
    report: Callable[[str, float, str], None]  # (stage, percent 0-100, message)
    cancelled: Callable[[], bool]
    attempt: int = 1


JobHandler = Callable[[JobContext], dict[str, Any]]

_HANDLERS: dict[TaskType, JobHandler] = {}


def register_handler(task_type: TaskType, handler: JobHandler) -> None:
    _HANDLERS[task_type] = handler


def get_handler(task_type: TaskType) -> JobHandler:
    _load_builtin_handlers()
    try:
        return _HANDLERS[task_type]
    except KeyError:
        raise LookupError(f"no handler registered for task type {task_type.value}") from None


def _load_builtin_handlers() -> None:
    # Imported here, not at module import, so that `import avatarbot.jobs` stays light.
    from avatarbot.pipeline import tasks  # noqa: F401  (registers video/voice handlers)
