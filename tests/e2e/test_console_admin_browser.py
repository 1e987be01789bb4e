"""Admin pages of the web console in headless Chromium against the real server: voice
profiles, plugins, digital humans, tasks (result view, retry), token renewal, cron preview.
Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.console_browser import (
    REPO,
    Watched,
    api_has,
    chromium,
    console_server,
    real_video_pipeline,
    screenshot,
    sign_in_over_rest,
    token,
    wait_for_video,
    wait_task,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with console_server(tmp_path_factory.mktemp("console-admin")) as url:
        yield url


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, console_url: str) -> Iterator[Watched]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        w = Watched(context)
        sign_in_over_rest(console_url, w.page)
        yield w


def test_admin_pages_drive_their_apis(console_url: str, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    page.set_viewport_size({"width": 1280, "height": 860})
    headers = {"Authorization": f"Bearer {token(page)}"}

    page.goto(f"{console_url}/#/channels")
    feishu = page.locator("[data-testid=webhook-feishu]")
    assert feishu.inner_text() == f"{console_url}/webhooks/feishu"
    assert page.locator("[data-testid=webhook-wecom]").inner_text() == (
        f"{console_url}/webhooks/wecom"
    )
    assert page.locator("[data-testid=webhook-wecom_bot]").inner_text() == (
        f"{console_url}/webhooks/wecom-bot"
    )

    if api_has(console_url, "/voice/profiles"):
        # Real speech for the reference recording: the server's own TTS says a sentence.
        speech = httpx.post(
            f"{console_url}/api/v1/voice/synthesize",
            headers=headers,
            json={"text": "This is a clear reference recording for the narrator voice profile."},
        )
        assert speech.status_code == 200, speech.text
        reference = tmp_path / "reference.wav"
        reference.write_bytes(speech.content)
        page.goto(f"{console_url}/#/voices")
        page.locator("form input[name=name]").fill("narrator")
        page.locator("form input[name=reference]").set_input_files(str(reference))
        page.locator("form audio:not(.hidden)").wait_for()  # the upload can be played first
        page.locator("form button[type=submit]").click()
        row = page.locator("[data-testid=voices-list] tr[data-name=narrator]")
        row.wait_for()
        assert page.locator("form .error-text").inner_text() == ""
        row.locator("button", has_text="Play sample").click()
        page.wait_for_function(
            "() => { const a = document.querySelector('audio[src^=blob]');"
            " return a && a.readyState >= 1 && a.duration > 0; }"
        )
        profiles = httpx.get(f"{console_url}/api/v1/voice/profiles", headers=headers).json()
        narrator = [p for p in profiles if p["name"] == "narrator"]
        assert narrator and narrator[0]["has_reference"] is True

    if api_has(console_url, "/plugins/list"):
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
    if api_has(console_url, "/digital-human/create") and portrait.is_file():
        page.goto(f"{console_url}/#/humans")
        form = page.locator("form", has=page.locator("input[name=image]"))
        form.locator("input[name=name]").fill("Linus")
        form.locator("input[name=image]").set_input_files(str(portrait))
        page.wait_for_function("() => document.querySelector('.preview img')?.naturalWidth > 0")
        form.locator("button[type=submit]").click()
        row = page.locator("[data-testid=humans-list] tr[data-name=Linus]")
        failure = form.locator(".error-text")
        page.wait_for_function(
            "() => document.querySelector('[data-testid=humans-list] tr[data-name=Linus]')"
            " || document.querySelector('form .error-text')?.textContent",
            timeout=60_000,
        )
        assert failure.inner_text() == "", (
            f"creating a digital human failed: {failure.inner_text()}"
        )
        humans = httpx.get(f"{console_url}/api/v1/digital-human/list", headers=headers).json()
        assert "Linus" in [h["name"] for h in humans]
        row.locator("button", has_text="Preview clip").click()
        wait_for_video(page, timeout_ms=90_000)
        screenshot(page, "humans-preview")

    assert watched.take_problems() == []


def test_tasks_page_plays_a_finished_video(console_url: str, watched: Watched) -> None:
    page = watched.page
    headers = {"Authorization": f"Bearer {token(page)}"}
    started = httpx.post(
        f"{console_url}/api/v1/digital-human/generate", headers=headers, json={"text": "hello"}
    )
    assert started.status_code == 202, started.text
    task_id = started.json()["task_id"]
    wait_task(console_url, headers, task_id, lambda t: t["status"] == "completed")
    watched.open(console_url, "tasks")
    row = watched.page.locator(f"[data-testid=tasks-list] tr[data-id='{task_id}']")
    assert "completed" in row.inner_text() and "100 %" in row.inner_text()
    row.locator("button", has_text="View").click()
    wait_for_video(page)
    screenshot(page, "tasks-view")
    assert watched.take_problems() == []


def test_a_failed_task_shows_its_error_and_retries(console_url: str, watched: Watched) -> None:
    if not real_video_pipeline():
        pytest.skip("needs the real video pipeline")
    page = watched.page
    headers = {"Authorization": f"Bearer {token(page)}"}
    # Accepted (the voice is only resolved by the TTS when the task runs), then fails there.
    started = httpx.post(
        f"{console_url}/api/v1/digital-human/generate",
        headers=headers,
        json={"text": "hello", "voice": "no-such-voice"},
    )
    assert started.status_code == 202, started.text
    task_id = started.json()["task_id"]
    failed = wait_task(console_url, headers, task_id, lambda t: t["status"] == "failed")
    assert failed["error_message"]

    page.goto(f"{console_url}/#/tasks")
    page.locator(".page[data-page=tasks][data-ready]").wait_for(state="attached")
    row = page.locator(f"[data-testid=tasks-list] tr[data-id='{task_id}']")
    assert "failed" in row.inner_text()
    assert failed["error_message"][:40] in row.inner_text()
    row.locator("button", has_text="Retry").click()
    retried = wait_task(
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
    renewed = token(page)
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
