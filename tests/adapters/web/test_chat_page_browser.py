"""The chat page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.adapters.web.conftest import CHROMIUM_ARGS
from tests.fakes.server import ServedFake

pytestmark = pytest.mark.browser
_STORAGE = "(() => { try { return localStorage.length >= 0; } catch (e) { return e.name; } })()"


def _api(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"})


def _deploy(base: str, key: str, name: str = "faq-bot") -> str:
    with _api(base, key) as api:
        spec = {
            "name": name,
            "greeting": "Hi! Ask me about refunds.",
            "fallback": "Not yet. See **docs** at [example.com](https://example.com)",
        }
        for path, body in [
            ("/bots/import", spec),
            (f"/bots/{name}/promote", {"to": "staging"}),
            (f"/bots/{name}/promote", {"to": "production"}),
            (f"/bots/{name}/deployments", {"channel": "web"}),
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
        link = '<a href="https://example.com" target="_blank" rel="noopener noreferrer">'
        assert link in bubbles[2]
        await page.click("#reset")
        await page.wait_for_function("document.querySelectorAll('.msg').length === 1")
        await browser.close()


class _OtherSite(ServedFake):
    """A shop's page that embeds the chat page in an iframe. Opened as `http://localhost:PORT`, it
    is another site than the service's `127.0.0.1`, so the chat page is a third party there."""

    name = "other-site"

    def __init__(self, chat_url: str) -> None:
        page = f'<!doctype html><title>Shop</title><iframe src="{chat_url}"></iframe>'

        async def home(request: Request) -> HTMLResponse:
            return HTMLResponse(page)

        self.app = Starlette(routes=[Route("/", home)])


async def test_embedded_where_storage_is_denied_the_page_keeps_its_session_in_memory(
    chromium: str, live_service: tuple[str, str], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    base, key = live_service
    url = base + _deploy(base, key, "shop-bot")
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    # Chromium's own setting "Block third-party cookies", which denies a third-party frame its
    # storage too: reading `localStorage` there throws a SecurityError.
    blocked = {"profile": {"cookie_controls_mode": 1, "block_third_party_cookies": True}}
    (profile / "Default" / "Preferences").write_text(json.dumps(blocked))
    with _OtherSite(url) as shop:
        async with async_playwright() as p:
            browser = await p.chromium.launch_persistent_context(
                profile, executable_path=chromium, args=CHROMIUM_ARGS
            )
            page = await browser.new_page()
            await page.goto(f"http://localhost:{shop.port}/")
            frame = await (await page.wait_for_selector("iframe")).content_frame()
            assert frame is not None
            await frame.wait_for_selector(".msg.bot")
            assert await frame.evaluate(_STORAGE) == "SecurityError"  # really denied
            for number, question in enumerate(("Refunds?", "And exchanges?"), start=1):
                await frame.fill("#text", question)
                await frame.press("#text", "Enter")
                last = f".msg:nth-child({2 * number + 1})"
                await frame.wait_for_function(
                    f"document.querySelector('{last}') && "
                    f"!document.querySelector('{last}').textContent.startsWith('…')"
                )
            bubbles = [await m.inner_html() for m in await frame.query_selector_all(".msg")]
            assert len(bubbles) == 5 and "<strong>docs</strong>" in bubbles[-1]
            assert 'rel="noopener noreferrer"' in bubbles[-1]
            await browser.close()
    with _api(base, key) as api:
        conversations = api.get("/bots/shop-bot/conversations").json()
    assert len(conversations) == 1  # both messages in one session, kept in memory
