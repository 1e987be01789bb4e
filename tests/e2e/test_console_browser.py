"""The web console in headless Chromium against the real server (uvicorn in a subprocess).

First run: create the admin, log out and in again, "/video 你好" in the chat until a playable
MP4 is on the page; agents and schedules made in the UI are visible over REST; every page
renders without console errors and fits a 375 px phone. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

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
PAGES = ["chat", "agents", "humans", "voices", "schedules", "plugins", "tasks", "channels"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("console")
    port = _free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "tests/e2e/console_server.py", "--port", str(port), "--root", str(root)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not answer /health within 60 s")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def chromium_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (scripts/install-test-system-deps.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
            locale="en-US",
        )
        context.set_default_timeout(20_000)
        yield context
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
        # A <video> element drops its own range requests when it has what it needs; blob: URLs
        # are local object URLs, not network traffic.
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


@pytest.fixture(scope="module")
def watched(chromium_context: Any) -> Watched:
    return Watched(chromium_context)


def _token(page: Any) -> str:
    token = page.evaluate("localStorage.getItem('avatarbot.access')")
    assert token, "no access token in localStorage"
    return str(token)


def _screenshot(page: Any, name: str) -> None:
    # Full-page shots of a scrolled page draw the sticky header mid-page: start at the top.
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _assert_no_placeholder_text(page: Any, where: str) -> None:
    text = page.locator("body").inner_text()
    leaked = re.search(r"\b(null|undefined|NaN)\b|\[object Object\]", text)
    assert leaked is None, f"{where}: {leaked.group(0)!r} shown on the page"


def _api_has(url: str, route: str) -> bool:
    paths = httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    return f"/api/v1{route}" in paths


def test_first_run_login_and_video_in_chat(console_url: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{console_url}/")
    setup = page.locator("[data-testid=setup-form]")
    setup.wait_for()
    _screenshot(page, "setup")
    _assert_no_placeholder_text(page, "setup")
    setup.locator("input[name=email]").fill(ADMIN_EMAIL)
    setup.locator("input[name=password]").fill(ADMIN_PASSWORD)
    setup.locator("button[type=submit]").click()
    page.locator("[data-testid=chat-input]").wait_for()
    assert httpx.get(f"{console_url}/api/v1/auth/status").json()["has_users"] is True

    page.locator("#logout").click()
    login = page.locator("[data-testid=login-form]")
    login.wait_for()
    page.set_viewport_size({"width": 375, "height": 760})
    _screenshot(page, "login-375")
    _assert_no_placeholder_text(page, "login")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    page.set_viewport_size({"width": 1280, "height": 860})
    login.locator("input[name=email]").fill(ADMIN_EMAIL)
    login.locator("input[name=password]").fill(ADMIN_PASSWORD)
    login.locator("button[type=submit]").click()
    page.locator("[data-testid=chat-input]").wait_for()
    me = httpx.get(
        f"{console_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {_token(page)}"}
    )
    assert me.status_code == 200 and me.json()["is_superuser"] is True

    page.locator("[data-testid=chat-input]").fill("/video 你好")
    page.locator("[data-testid=chat-send]").click()
    assert page.locator("[data-testid=msg-user]").last.inner_text() == "/video 你好"
    if _api_has(console_url, "/agents/list"):
        # With agents installed the chat goes through the agent (channel web), not the fallback.
        page.locator("[data-testid=msg-bot] .tool", has_text="make_video").wait_for()
    video = page.locator("[data-testid=media-card] video").first
    video.wait_for(timeout=90_000)
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=media-card] video');"
        " return v && v.readyState >= 1 && v.duration > 0; }",
        timeout=30_000,
    )
    state = video.evaluate("v => ({ready: v.readyState, duration: v.duration, src: v.src})")
    assert state["ready"] >= 1 and state["duration"] > 0.5, state
    assert state["src"].startswith("blob:")
    bar = page.locator("[data-testid=media-card] .progress").first
    assert bar.get_attribute("data-percent") == "100"
    assert page.locator("[data-testid=media-card] a[download]").count() == 1

    # The task the chat started is a real completed task with an MP4 result.
    headers = {"Authorization": f"Bearer {_token(page)}"}
    tasks = httpx.get(f"{console_url}/api/v1/tasks", headers=headers).json()
    assert tasks and tasks[0]["status"] == "completed" and tasks[0]["progress"] == 100
    result = httpx.get(f"{console_url}{tasks[0]['result_url']}", headers=headers)
    assert result.headers["content-type"] == "video/mp4" and result.content[4:8] == b"ftyp"

    _screenshot(page, "chat")
    _assert_no_placeholder_text(page, "chat")
    assert watched.take_problems() == []


def test_natural_language_reaches_the_agent(console_url: str, watched: Watched) -> None:
    if not _api_has(console_url, "/agents/list"):
        pytest.skip("this checkout has no agents API yet (agents branch)")
    page = watched.page
    page.goto(f"{console_url}/#/chat")
    page.locator("[data-testid=chat-clear]").click()
    page.locator("[data-testid=chat-input]").fill("which digital humans are there?")
    page.locator("[data-testid=chat-send]").click()
    answer = page.locator("[data-testid=msg-bot]").last
    answer.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=msg-bot]')]"
        ".some((m) => m.innerText.includes('Ava'))"
    )
    assert page.locator("[data-testid=msg-user]").count() == 1  # cleared before
    # The conversation is still there after a visit to another page.
    page.goto(f"{console_url}/#/tasks")
    page.locator(".page[data-page=tasks][data-ready]").wait_for(state="attached")
    page.goto(f"{console_url}/#/chat")
    page.locator(".page[data-page=chat][data-ready]").wait_for(state="attached")
    assert "Ava" in page.locator("[data-testid=msg-bot]").last.inner_text()
    assert watched.take_problems() == []


def test_agent_and_schedule_created_in_ui_show_over_rest(
    console_url: str, watched: Watched
) -> None:
    missing = [r for r in ("/agents/list", "/scheduler/list") if not _api_has(console_url, r)]
    if missing:
        pytest.skip(f"this checkout has no {', '.join(missing)} API yet (agents/jobs branches)")
    page = watched.page
    headers = {"Authorization": f"Bearer {_token(page)}"}

    page.goto(f"{console_url}/#/agents")
    form = page.locator("[data-testid=agent-form]")
    form.locator("input[name=name]").fill("weather_bot")
    form.locator("textarea[name=prompt]").fill("You report the weather briefly.")
    form.locator("button[type=submit]").click()
    page.locator("[data-testid=agents-list] tr[data-name=weather_bot]").wait_for()
    agents = httpx.get(f"{console_url}/api/v1/agents/list", headers=headers).json()
    agents = agents.get("items", agents) if isinstance(agents, dict) else agents
    assert "weather_bot" in [a["name"] for a in agents]

    page.goto(f"{console_url}/#/schedules")
    form = page.locator("[data-testid=schedule-form]")
    form.locator("input[name=name]").fill("morning report")
    form.locator("input[name=cron]").fill("30 8 * * 1-5")
    assert "08:30" in page.locator("[data-testid=cron-preview]").inner_text()
    form.locator("select[name=agent]").select_option("weather_bot")
    form.locator("input[name=chat_id]").fill("oc_e2e_chat")
    form.locator("button[type=submit]").click()
    page.locator("[data-testid=schedules-list] td", has_text="morning report").wait_for()
    schedules = httpx.get(f"{console_url}/api/v1/scheduler/list", headers=headers).json()
    schedules = schedules.get("items", schedules) if isinstance(schedules, dict) else schedules
    created = [s for s in schedules if s["name"] == "morning report"]
    assert created and created[0]["cron"] == "30 8 * * 1-5"
    assert created[0]["agent"] == "weather_bot"
    assert created[0]["target"]["chat_id"] == "oc_e2e_chat"
    row = page.locator(f"[data-testid=schedules-list] tr[data-id='{created[0]['id']}']")
    row.locator("button", has_text="Run now").click()
    runs_url = f"{console_url}/api/v1/scheduler/{created[0]['id']}/runs"
    deadline = time.monotonic() + 30
    while not httpx.get(runs_url, headers=headers).json():
        assert time.monotonic() < deadline, "Run now left no run record"
        time.sleep(0.2)
    _screenshot(page, "schedules-created")
    assert watched.take_problems() == []


def test_admin_pages_drive_their_apis(console_url: str, watched: Watched) -> None:
    page = watched.page
    page.set_viewport_size({"width": 1280, "height": 860})
    headers = {"Authorization": f"Bearer {_token(page)}"}

    page.goto(f"{console_url}/#/channels")
    feishu = page.locator("[data-testid=webhook-feishu]")
    assert feishu.inner_text() == f"{console_url}/webhooks/feishu"
    assert page.locator("[data-testid=webhook-wecom]").inner_text() == (
        f"{console_url}/webhooks/wecom"
    )

    if _api_has(console_url, "/voice/profiles"):
        page.goto(f"{console_url}/#/voices")
        page.locator("form input[name=name]").fill("narrator")
        page.locator("form button[type=submit]").click()
        row = page.locator("[data-testid=voices-list] tr[data-name=narrator]")
        row.locator("button", has_text="Play sample").click()
        page.wait_for_function(
            "() => { const a = document.querySelector('audio[src^=blob]');"
            " return a && a.readyState >= 1 && a.duration > 0; }"
        )
        profiles = httpx.get(f"{console_url}/api/v1/voice/profiles", headers=headers).json()
        assert "narrator" in [p["name"] for p in profiles]

    if _api_has(console_url, "/plugins/list"):
        page.goto(f"{console_url}/#/plugins")
        row = page.locator("[data-testid=plugins-list] tr[data-name=video_editor]")
        row.locator("button", has_text="Disable").click()
        row.locator("button", has_text="Enable").wait_for()
        listed = httpx.get(f"{console_url}/api/v1/plugins/list", headers=headers).json()
        state = {p["name"]: p["enabled"] for p in listed["plugins"]}
        assert state["video_editor"] is False
        row.locator("button", has_text="Enable").click()
        row.locator("button", has_text="Disable").wait_for()
        listed = httpx.get(f"{console_url}/api/v1/plugins/list", headers=headers).json()
        assert {p["name"]: p["enabled"] for p in listed["plugins"]}["video_editor"] is True

    portrait = REPO / "avatarbot" / "pipeline" / "assets" / "default_portrait.jpg"
    if _api_has(console_url, "/digital-human/create") and portrait.is_file():
        page.goto(f"{console_url}/#/humans")
        form = page.locator("form", has=page.locator("input[name=image]"))
        form.locator("input[name=name]").fill("Grace")
        form.locator("input[name=image]").set_input_files(str(portrait))
        page.wait_for_function("() => document.querySelector('.preview img')?.naturalWidth > 0")
        form.locator("button[type=submit]").click()
        row = page.locator("[data-testid=humans-list] tr[data-name=Grace]")
        failure = form.locator(".error-text")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=humans-list] tr[data-name=Grace]')"
            " || document.querySelector('form .error-text')?.textContent",
            timeout=60_000,
        )
        assert failure.inner_text() == "", (
            f"creating a digital human failed: {failure.inner_text()}"
        )
        humans = httpx.get(f"{console_url}/api/v1/digital-human/list", headers=headers).json()
        assert "Grace" in [h["name"] for h in humans]
        row.locator("button", has_text="Preview clip").click()
        page.wait_for_function(
            "() => { const v = document.querySelector('[data-testid=media-card] video');"
            " return v && v.readyState >= 1 && v.duration > 0; }",
            timeout=90_000,
        )

    page.goto(f"{console_url}/#/tasks")
    first = page.locator("[data-testid=tasks-list] tbody tr").first
    assert "completed" in first.inner_text()
    first.locator("button", has_text="View").click()
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=media-card] video');"
        " return v && v.readyState >= 1 && v.duration > 0; }"
    )
    assert watched.take_problems() == []


def _real_video_pipeline() -> bool:
    from avatarbot.jobs.handlers import get_handler
    from avatarbot.storage.models import TaskType

    try:
        get_handler(TaskType.VIDEO_GENERATION)
    except LookupError:
        return False
    return True


def _wait_task(url: str, headers: dict[str, str], task_id: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        task = httpx.get(f"{url}/api/v1/tasks/{task_id}", headers=headers).json()
        if done(task):
            return dict(task)
        assert time.monotonic() < deadline, task
        time.sleep(0.2)


def test_a_failed_task_shows_its_error_and_retries(console_url: str, watched: Watched) -> None:
    if not _api_has(console_url, "/digital-human/generate-from-audio") or not (
        _real_video_pipeline()
    ):
        pytest.skip("needs the real video pipeline and /digital-human/generate-from-audio")
    page = watched.page
    headers = {"Authorization": f"Bearer {_token(page)}"}
    started = httpx.post(
        f"{console_url}/api/v1/digital-human/generate-from-audio",
        headers=headers,
        files={"audio": ("broken.wav", b"this is not audio at all", "audio/wav")},
    )
    assert started.status_code == 202, started.text
    task_id = started.json()["task_id"]
    failed = _wait_task(console_url, headers, task_id, lambda t: t["status"] == "failed")
    assert failed["error_message"]

    page.goto(f"{console_url}/#/tasks")
    page.locator(".page[data-page=tasks][data-ready]").wait_for(state="attached")
    row = page.locator(f"[data-testid=tasks-list] tr[data-id='{task_id}']")
    assert "failed" in row.inner_text()
    assert failed["error_message"][:40] in row.inner_text()
    row.locator("button", has_text="Retry").click()
    retried = _wait_task(
        console_url,
        headers,
        task_id,
        lambda t: t["attempts"] >= 2 and t["status"] in ("failed", "completed"),
    )
    assert retried["attempts"] == 2
    assert watched.take_problems() == []


def test_an_expired_access_token_is_renewed_with_the_refresh_token(
    console_url: str, watched: Watched
) -> None:
    page = watched.page
    page.goto(f"{console_url}/#/chat")
    page.locator(".page[data-page=chat][data-ready]").wait_for(state="attached")
    page.evaluate("localStorage.setItem('avatarbot.access', 'not.a.valid-token')")
    page.goto(f"{console_url}/#/tasks")
    page.locator(".page[data-page=tasks][data-ready]").wait_for(state="attached")
    assert page.locator("[data-testid=tasks-list] tbody tr").count() >= 1
    renewed = _token(page)
    assert renewed != "not.a.valid-token"
    me = httpx.get(f"{console_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {renewed}"})
    assert me.status_code == 200
    # Only the rejected calls themselves show up; each was retried after the refresh.
    problems = watched.take_problems()
    assert problems and all("401" in p for p in problems), problems


def test_cron_preview_module(console_url: str, watched: Watched) -> None:
    """The schedule page's cron reading, in the browser that runs it."""
    page = watched.page
    page.goto(f"{console_url}/#/chat")
    result = page.evaluate(
        """async () => {
          const c = await import('/static/js/cron.js');
          const friday10 = new Date('2026-11-27T02:00:00Z');  // 10:00 on a Friday in Shanghai
          let bad = '';
          try { c.parseCron('61 * * * *'); } catch (e) { bad = e.message; }
          return {
            weekdays: c.nextRuns('0 9 * * 1-5', 'Asia/Shanghai', 3, friday10),
            leap: c.nextRuns('0 0 29 2 *', 'UTC', 1, friday10),
            quarter: c.nextRuns('*/15 * * * *', 'UTC', 2, friday10),
            either: c.nextRuns('0 8 1 * mon', 'UTC', 2, friday10),
            en: c.describeCron('30 8 * * 1-5', 'en'),
            zh: c.describeCron('30 8 * * 1-5', 'zh'),
            daily: c.describeCron('@daily', 'en'),
            bad,
          };
        }"""
    )
    assert result["weekdays"] == ["2026-11-30 09:00", "2026-12-01 09:00", "2026-12-02 09:00"]
    assert result["leap"] == ["2028-02-29 00:00"]
    assert result["quarter"] == ["2026-11-27 02:15", "2026-11-27 02:30"]
    # Day-of-month and weekday both restricted: either one matching fires (classic cron).
    assert result["either"] == ["2026-11-30 08:00", "2026-12-01 08:00"]
    assert result["en"] == "On weekdays at 08:30"
    assert result["zh"] == "工作日 08:30"
    assert result["daily"] == "Every day at 00:00"
    assert "minute" in result["bad"]
    assert watched.take_problems() == []


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_renders_cleanly(console_url: str, watched: Watched, width: int) -> None:
    page = watched.page
    page.set_viewport_size({"width": width, "height": 860 if width > 400 else 760})
    page.goto(f"{console_url}/#/chat")
    page.locator("[data-testid=chat-input]").wait_for()
    for name in PAGES:
        page.goto(f"{console_url}/#/{name}")
        page.locator(f"nav a[data-route={name}].active").wait_for(state="attached")
        page.locator(f".page[data-page={name}][data-ready]").wait_for(state="attached")
        page.wait_for_function("[...document.images].every((i) => i.complete)")
        overflow = page.evaluate("document.scrollingElement.scrollWidth")
        assert overflow <= width, f"{name} at {width} px is {overflow} px wide"
        _screenshot(page, name if width > 400 else f"{name}-375")
        _assert_no_placeholder_text(page, name)
        assert watched.take_problems() == [], name
    # The language switch flips the UI text and is remembered across reloads.
    page.goto(f"{console_url}/#/tasks")
    page.locator("nav a[data-route=tasks]", has_text="Tasks").wait_for(state="attached")
    page.locator("#lang-toggle").click()
    page.locator("nav a[data-route=tasks]", has_text="任务").wait_for(state="attached")
    page.locator("[data-testid=tasks-list] table, [data-testid=tasks-list] p").first.wait_for()
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    page.reload()
    page.locator("nav a[data-route=tasks]", has_text="任务").wait_for(state="attached")
    if width <= 400:
        _screenshot(page, "tasks-zh-375")
    page.locator("#lang-toggle").click()
    page.locator("nav a[data-route=tasks]", has_text="Tasks").wait_for(state="attached")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert watched.take_problems() == []
