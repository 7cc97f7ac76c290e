"""The web console shows a flow's picture inline (a PNG from the answer's base64 `data`, through a
blob URL the page's policy allows), with a link to download it."""

from __future__ import annotations

import pytest

from tests.adapters.web.conftest import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


async def test_the_flow_picture_is_shown_in_the_console(
    chromium: str, live_service: tuple[str, str]
) -> None:
    from playwright.async_api import async_playwright

    base, key = live_service
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        await page.goto(base + "/")
        await page.fill("#key", key)
        await page.press("#key", "Enter")
        await page.wait_for_selector("#text", state="visible")
        for line in ("/newbot flow-bot", "/flow flow-bot"):
            await page.fill("#text", line)
            await page.press("#text", "Enter")
            await page.wait_for_function("() => !document.querySelector('#log .msg.pending')")
        picture = page.locator("#log img.picture").last
        await picture.wait_for()
        await page.wait_for_function(
            "() => { const i = document.querySelector('#log img.picture'); "
            "return i && i.complete && i.naturalWidth > 0; }"
        )
        assert (await picture.get_attribute("src") or "").startswith("blob:")
        assert await picture.get_attribute("alt") == "flow-bot-flow.png"
        download = page.locator("#log a.file").last
        assert await download.get_attribute("download") == "flow-bot-flow.png"
        assert problems == []
        await browser.close()
