"""The chat page's thumbs under each bot answer, in a real headless Chromium (Debian's) against a
real `serve`: a toggle each, by mouse or keyboard, kept (the review sees the rating) and shown
again after a reload."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.adapters.web.conftest import CHROMIUM_ARGS
from tests.adapters.web.test_chat_page_browser import _deploy

pytestmark = pytest.mark.browser
ANSWER = ".msg.bot:nth-child(3)"
UP = f"{ANSWER} .rate button[aria-label='Good answer']"
DOWN = f"{ANSWER} .rate button[aria-label='Bad answer']"


def _review(base: str, key: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{base}/api/v1/bots/thumbs-bot/review", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_thumbs_rate_an_answer_toggle_and_survive_a_reload(
    chromium: str, live_service: tuple[str, str]
) -> None:
    from playwright.async_api import Page, async_playwright

    base, key = live_service
    url = base + _deploy(base, key, "thumbs-bot")

    async def pressed(page: Page) -> tuple[str | None, str | None]:
        return (
            await page.get_attribute(UP, "aria-pressed"),
            await page.get_attribute(DOWN, "aria-pressed"),
        )

    async def settled(page: Page, up: str, down: str) -> None:
        await page.wait_for_function(
            f"document.querySelector(`{UP}`).getAttribute('aria-pressed') === '{up}' && "
            f"document.querySelector(`{DOWN}`).getAttribute('aria-pressed') === '{down}'"
        )

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(url)
        await page.wait_for_selector(".msg.bot")
        assert await page.query_selector(".msg.bot .rate") is None  # the greeting is not rated
        await page.fill("#text", "How do refunds work?")
        await page.press("#text", "Enter")
        await page.wait_for_selector(f"{ANSWER} .rate")
        assert await pressed(page) == ("false", "false")
        assert await page.inner_text(ANSWER) == "Not yet. See docs at example.com"
        assert await page.query_selector(".msg.user .rate") is None

        await page.click(DOWN)
        await settled(page, "false", "true")
        [item] = _review(base, key)
        assert item["why"] == "👎 by 1 person" and item["user_message"] == "How do refunds work?"

        await page.click(UP)  # replaces the 👎
        await settled(page, "true", "false")
        assert _review(base, key) == []

        await page.reload()
        await page.wait_for_selector(f"{ANSWER} .rate")
        assert await pressed(page) == ("true", "false")

        await page.focus(UP)  # by keyboard: pressing the pressed one takes it back
        await page.keyboard.press("Space")
        await settled(page, "false", "false")
        await page.reload()
        await page.wait_for_selector(f"{ANSWER} .rate")
        assert await pressed(page) == ("false", "false")
        await browser.close()
