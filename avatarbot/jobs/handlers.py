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


def has_handler(task_type: TaskType) -> bool:
    return task_type in _HANDLERS


def get_handler(task_type: TaskType) -> JobHandler:
    # The pipeline's handlers are registered by the process's pipeline bootstrap
    # (avatarbot.pipeline.bootstrap); jobs/ never imports the pipeline itself.
    try:
        return _HANDLERS[task_type]
    except KeyError:
        raise LookupError(
            f"no handler registered for task type {task_type.value} "
            "(the process did not run the pipeline bootstrap)"
        ) from None
