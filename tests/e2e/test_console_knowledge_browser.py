"""The agents page's knowledge panel in headless Chromium against the real server: upload a
Chinese document, see it listed and found, replace it, delete it (checked over REST)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.console_browser import (
    Watched,
    chromium,
    console_server,
    screenshot,
    sign_in_over_rest,
    token,
)
from tests.helpers.documents import ZH_HANDBOOK

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def console_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with console_server(tmp_path_factory.mktemp("console-knowledge")) as url:
        yield url


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory, console_url: str) -> Iterator[Watched]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        w = Watched(context)
        sign_in_over_rest(console_url, w.page)
        yield w


def test_upload_search_and_delete_in_the_console(
    console_url: str, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    page.set_viewport_size({"width": 1280, "height": 860})
    headers = {"Authorization": f"Bearer {token(page)}"}
    handbook = tmp_path / "员工手册.md"
    handbook.write_text(ZH_HANDBOOK, encoding="utf-8")

    page.goto(f"{console_url}/#/agents")
    page.locator(
        "[data-testid=agents-list] tr[data-name=assistant] [data-testid=knowledge-open]"
    ).click()
    panel = page.locator("[data-testid=knowledge-panel]")
    panel.locator("[data-testid=knowledge-list]").wait_for()
    panel.locator("input[type=file]").set_input_files(str(handbook))
    panel.locator("[data-testid=knowledge-upload] button[type=submit]").click()
    row = panel.locator("[data-testid=knowledge-list] tr", has_text="员工手册.md")
    row.wait_for()
    [doc] = httpx.get(f"{console_url}/api/v1/agents/assistant/knowledge", headers=headers).json()[
        "data"
    ]
    assert doc["filename"] == "员工手册.md" and doc["chunk_count"] >= 1

    panel.locator("input[name=q]").fill("年假")
    panel.locator("input[name=q]").press("Enter")
    panel.locator("[data-testid=knowledge-results]", has_text="十五天带薪年假").wait_for()
    screenshot(page, "agents-knowledge")

    row.locator("button").click()
    panel.locator("[data-testid=knowledge-list] tr", has_text="员工手册.md").wait_for(
        state="detached"
    )
    listing = httpx.get(f"{console_url}/api/v1/agents/assistant/knowledge", headers=headers)
    assert listing.json()["count"] == 0
    assert watched.take_problems() == []
