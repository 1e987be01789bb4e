"""The Celery app (Redis broker and result backend) and the task that runs a Task row.

A worker process keeps one asyncio loop, one Database and one progress publisher for its
whole life, so models a handler caches (per process) load once. The DB Task row stays the
source of truth; the Celery message only carries the task id.

`celery -A avatarbot.jobs.celery_app worker` works too: the module-level `app` reads the
settings from the environment on first use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from datetime import timedelta
from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

from avatarbot.config import Settings

logger = logging.getLogger(__name__)

RUN_TASK_NAME = "avatarbot.run_task"
QUEUES = ("cpu", "gpu")


def celery_url(redis_url: str) -> str:
    """redis-py spells a unix socket `unix:///path`; kombu and Celery spell it `redis+socket`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


def make_celery(settings: Settings) -> Celery:
    if not settings.redis_url:
        raise RuntimeError("the Celery executor needs AVATARBOT_REDIS_URL")
    url = celery_url(settings.redis_url)
    jobs = settings.jobs
    celery = Celery("avatarbot", broker=url, backend=url, set_as_current=False)
    celery.conf.update(
        task_acks_late=True,  # a message is acked only after the task ran to the end
        task_reject_on_worker_lost=True,  # a killed worker's message goes back to the queue
        worker_prefetch_multiplier=1,  # long GPU jobs: never hoard messages
        task_soft_time_limit=jobs.task_time_limit_s + 15,
        task_time_limit=jobs.task_time_limit_s + 45,
        broker_transport_options={
            "visibility_timeout": jobs.visibility_timeout_s,
            "unacked_restore_interval": max(1, min(60, jobs.visibility_timeout_s // 4)),
        },
        result_backend_transport_options={"visibility_timeout": jobs.visibility_timeout_s},
        result_expires=timedelta(days=1),
        task_ignore_result=True,  # results live in the Task row
        task_queues=[
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
        ],
        task_default_queue="cpu",
        task_default_exchange="cpu",
        task_default_routing_key="cpu",
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    celery.task(name=RUN_TASK_NAME, bind=True, max_retries=None)(_execute)
    return celery


# --- worker side ---------------------------------------------------------------------------


class _WorkerState:
    """Per-process (per-thread with --pool threads) resources, created after the fork."""

    def __init__(self) -> None:
        from avatarbot.jobs.redis_progress import RedisProgressBus
        from avatarbot.pipeline.bootstrap import bootstrap_pipeline
        from avatarbot.storage.db import Database

        self.pid = os.getpid()
        self.settings = Settings()
        # After the fork: backends, job handlers and this process's ModelManager (whose
        # loaded networks all tasks of the process share; CUDA must start after a fork).
        bootstrap_pipeline(self.settings)
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.db = Database(self.settings.database_url)
        assert self.settings.redis_url
        self.bus = RedisProgressBus(self.settings.redis_url, listen=False)
        self.bus.start_publisher()


_states: dict[tuple[int, int], _WorkerState] = {}
_state_lock = threading.Lock()


def worker_state() -> _WorkerState:
    # An event loop runs one coroutine at a time: each pool thread gets its own.
    key = (os.getpid(), threading.get_ident())
    with _state_lock:
        state = _states.get(key)
        if state is None:
            state = _states[key] = _WorkerState()
        return state


@signals.worker_process_shutdown.connect
def _flush_progress(**_kwargs: Any) -> None:
    for (pid, _thread), state in list(_states.items()):
        if pid == os.getpid():
            state.bus.flush()


def _execute(_self: Any, task_id: str) -> str:
    """Celery entry point: run the Task row `task_id` once (a no-op if it is not runnable)."""
    from avatarbot.jobs.worker import execute_in_worker

    state = worker_state()
    try:
        return state.loop.run_until_complete(
            execute_in_worker(db=state.db, bus=state.bus, settings=state.settings, task_id=task_id)
        )
    finally:
        _drain(state.loop)


def _drain(loop: asyncio.AbstractEventLoop, timeout: float = 15.0) -> None:
    """Let coroutines the task left behind (late progress writes) finish before the loop idles.

    The loop only runs while a task runs; a DB write suspended between its UPDATE and COMMIT
    would otherwise keep SQLite's write lock until the next task, locking out other processes.
    """
    pending = [job for job in asyncio.all_tasks(loop) if not job.done()]
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=timeout))


_app: Celery | None = None


def get_app() -> Celery:
    global _app
    if _app is None:
        _app = make_celery(Settings())
    return _app


def __getattr__(name: str) -> Any:
    # `celery -A avatarbot.jobs.celery_app` looks up `app`; build it only then.
    if name in ("app", "celery"):
        return get_app()
    raise AttributeError(name)
