"""Shared parts of the web-console browser tests: the real server in a subprocess, Debian's
Chromium through Playwright, and a page wrapper that records everything that went wrong."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def console_server(root: Path) -> Iterator[str]:
    """uvicorn serving a fresh avatarbot (data dir and SQLite under `root`); yields its URL."""
    port = _free_port()
    log_path = root / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "tests/helpers/console_server.py",
                "--port",
                str(port),
                "--root",
                str(root),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("server did not answer /health within 60 s")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def chromium(profile_dir: Path) -> Iterator[Any]:
    """A persistent Chromium context on a fresh profile; skips when Chromium is absent."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (scripts/install-test-system-deps.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
            locale="en-US",
            reduced_motion="reduce",
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


class Watched:
    """A page plus everything that went wrong on it: console errors, page errors, HTTP errors."""

    def __init__(self, context: Any) -> None:
        self.page = context.pages[0] if context.pages else context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("response", self._on_response)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _on_request_failed(self, request: Any) -> None:
        # blob: URLs are the page's own object URLs (videos, portraits), not network traffic.
        if request.url.startswith("blob:"):
            return
        self.problems.append(f"request failed: {request.method} {request.url} {request.failure}")

    def _on_response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def take_problems(self) -> list[str]:
        found, self.problems = self.problems, []
        return found

    def open(self, url: str, page_name: str) -> None:
        """Go to a console page and wait until it has drawn its first data."""
        self.page.goto(f"{url}/#/{page_name}")
        self.page.locator(f".page[data-page={page_name}][data-ready]").wait_for(state="attached")


def sign_in_over_rest(url: str, page: Any) -> dict[str, str]:
    """Create the admin (first user) over REST and hand its tokens to the page."""
    httpx.post(
        f"{url}/api/v1/auth/register", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    tokens = httpx.post(
        f"{url}/api/v1/auth/login", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    ).json()
    page.goto(f"{url}/#/login")
    page.evaluate(
        "([a, r]) => { localStorage.setItem('avatarbot.access', a);"
        " localStorage.setItem('avatarbot.refresh', r); }",
        [tokens["access_token"], tokens["refresh_token"]],
    )
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def token(page: Any) -> str:
    value = page.evaluate("localStorage.getItem('avatarbot.access')")
    assert value, "no access token in localStorage"
    return str(value)


def api_has(url: str, route: str) -> bool:
    paths = httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    return f"/api/v1{route}" in paths


def screenshot(page: Any, name: str) -> None:
    # Full-page shots of a scrolled page draw the sticky header mid-page: start at the top.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def assert_no_placeholder_text(page: Any, where: str) -> None:
    text = page.locator("body").inner_text()
    leaked = re.search(r"\b(null|undefined|NaN)\b|\[object Object\]", text)
    assert leaked is None, f"{where}: {leaked.group(0)!r} shown on the page"


def wait_for_video(page: Any, timeout_ms: int = 30_000) -> None:
    """Until a result video on the page has loaded its metadata and knows its duration."""
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=media-card] video');"
        " return v && v.readyState >= 1 && v.duration > 0; }",
        timeout=timeout_ms,
    )


def wait_task(
    url: str, headers: dict[str, str], task_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        task = dict(httpx.get(f"{url}/api/v1/tasks/{task_id}", headers=headers).json())
        if done(task):
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.2)


def real_video_pipeline() -> bool:
    """True when the test server renders with this checkout's pipeline (no stand-in)."""
    import os

    from avatarbot.jobs.handlers import get_handler
    from avatarbot.storage.models import TaskType

    if os.environ.get("CONSOLE_E2E_FAKE_VIDEO") == "1":
        return False
    import avatarbot.pipeline.tasks  # noqa: F401  (registers the real handlers, if any)

    try:
        get_handler(TaskType.VIDEO_GENERATION)
    except LookupError:
        return False
    return True
