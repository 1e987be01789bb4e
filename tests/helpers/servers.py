"""Run an ASGI app with real uvicorn on 127.0.0.1 (random port) in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class RunningServer:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_uvicorn(app: Any, *, timeout: float = 20.0) -> RunningServer:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    # Signal handlers can only be installed in the main thread; this one runs elsewhere.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.02)
    return RunningServer(f"http://127.0.0.1:{port}", server, thread)


@dataclass
class Recorded:
    """One request a fake platform received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class Failure:
    path_prefix: str
    times: int
    status: int = 500
    body: dict[str, Any] | None = None


class FailurePlan:
    """Fail the next N requests whose path starts with a prefix (status and/or error body)."""

    def __init__(self) -> None:
        self._plans: list[Failure] = []
        self._lock = threading.Lock()

    def add(
        self, path_prefix: str, times: int, status: int = 500, body: dict[str, Any] | None = None
    ) -> None:
        with self._lock:
            self._plans.append(Failure(path_prefix, times, status, body))

    def take(self, path: str) -> Failure | None:
        with self._lock:
            for plan in self._plans:
                if path.startswith(plan.path_prefix) and plan.times > 0:
                    plan.times -= 1
                    return plan
        return None

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()


def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail with a clear error at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
