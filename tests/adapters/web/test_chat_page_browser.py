"""The chat page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import httpx
import pytest

from tests.adapters.web.conftest import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def _deploy(base: str, key: str) -> str:
    with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}) as api:
        spec = {
            "name": "faq-bot",
            "greeting": "Hi! Ask me about refunds.",
            "fallback": "Not yet. See **docs** at https://example.com",
        }
        for path, body in [
            ("/bots/import", spec),
            ("/bots/faq-bot/promote", {"to": "staging"}),
            ("/bots/faq-bot/promote", {"to": "production"}),
            ("/bots/faq-bot/deployments", {"channel": "web"}),
        ]:
            response = api.post(path, json=body)
            assert response.status_code < 300, response.text
    return str(response.json()["url"])


async def test_a_visitor_chats_and_finds_the_conversation_after_a_reload(
    chromium: str, live_service: tuple[str, str]
) -> None:
    from playwright.async_api import async_playwright

    base, key = live_service
    url = base + _deploy(base, key)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(url)
        await page.wait_for_selector(".msg.bot")
        assert await page.inner_text("header h1") == "faq-bot"
        await page.fill("#text", "How do refunds work? <b>x</b>")
        await page.press("#text", "Enter")
        last = ".msg:nth-child(3)"
        await page.wait_for_function(
            f"document.querySelector('{last}') && "
            f"!document.querySelector('{last}').textContent.startsWith('…')"
        )
        await page.reload()
        await page.wait_for_function("document.querySelectorAll('.msg').length === 3")
        bubbles = [await m.inner_html() for m in await page.query_selector_all(".msg")]
        assert bubbles[0] == "Hi! Ask me about refunds."
        assert bubbles[1] == "How do refunds work? &lt;b&gt;x&lt;/b&gt;"  # escaped, not bold
        assert "<strong>docs</strong>" in bubbles[2]
        assert '<a href="https://example.com"' in bubbles[2]
        await page.click("#reset")
        await page.wait_for_function("document.querySelectorAll('.msg').length === 1")
        await browser.close()
