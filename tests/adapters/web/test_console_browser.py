"""The web console (`GET /`) in a real headless Chromium (Debian's), driven by Playwright.

A person enters the local team's key, builds, promotes and deploys a bot by talking to the Studio,
presses a confirmation button, and follows the deployment link to chat with the bot.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.adapters.web.conftest import CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.async_api import Page

SCREENSHOT = Path("/tmp/console.png")
KEY_ITEM = "chat-studio-console-key"  # where the page keeps the key (localStorage)

pytestmark = pytest.mark.browser


# Functions, not expressions: the console's Content-Security-Policy forbids eval().
_SETTLED = "() => !document.querySelector('#log .msg.pending')"


async def _answer_after(page: Page, selector: str) -> str:
    """The text of the Studio's answer to the last bubble matching `selector`."""
    await page.wait_for_function(_SETTLED)
    answer = page.locator(f"#log {selector}").last.locator("xpath=following-sibling::div[1]")
    return await answer.inner_text()


async def _say(page: Page, text: str) -> str:
    """Type `text` into the console, send it with Enter, and return the Studio's answer."""
    users = await page.locator("#log .msg.user").count()
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await page.wait_for_function(
        f"() => document.querySelectorAll('#log .msg.user').length > {users}"
    )
    return await _answer_after(page, ".msg.user")


async def test_a_team_builds_promotes_and_deploys_a_bot_from_the_console(
    chromium: str, live_service: tuple[str, str]
) -> None:
    from playwright.async_api import async_playwright

    base, key = live_service
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1100, "height": 860})
        page = await context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
        )

        await page.goto(base + "/")
        await page.wait_for_selector("#key", state="visible")
        assert not await page.is_visible("#text")
        await page.fill("#key", key)
        await page.press("#key", "Enter")
        await page.wait_for_selector("#text", state="visible")
        assert await page.evaluate("document.activeElement.id") == "text"
        assert "create a bot called faq-bot" in await page.inner_text("#log .intro")

        assert "faq-bot" in await _say(page, "/newbot faq-bot")
        assert "Hello there" in await _say(page, "/set faq-bot greeting Hello there")
        assert "v1" in await _say(page, "/promote faq-bot")

        question = await _say(page, "/promote faq-bot production")
        confirm = page.locator("#log .msg.bot button", has_text="Confirm")
        assert await confirm.count() == 1, question
        assert await confirm.get_attribute("class") in ("primary", "danger")  # styled
        await confirm.click()
        await page.wait_for_selector("#log .msg.user.action")
        promoted = await _answer_after(page, ".msg.user.action")
        assert "production" in promoted and "v1" in promoted, promoted
        assert await confirm.is_disabled()  # a button is pressed once

        deployed = await _say(page, "/deploy faq-bot web")
        link = page.locator('#log .msg.bot a[href*="/chat/d_"]')
        assert await link.count() == 1, deployed
        assert await link.get_attribute("target") == "_blank"

        await _say(page, '/test faq-bot add "hours?" expect contains "answer"')
        started = await _say(page, "/test faq-bot")
        assert "background" in started, started
        report = page.locator("#log .msg.notice", has_text="tests: 1 passed")  # polled later
        await report.wait_for(timeout=15_000)

        typed = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'
        await _say(page, typed)
        assert await page.locator("#log .msg.user").last.text_content() == typed
        assert await page.locator("#log script, #log img").count() == 0
        assert await page.evaluate("window.__pwned") is None

        await page.press("#text", "ArrowUp")  # recalls the last command
        assert await page.input_value("#text") == typed
        await page.fill("#text", "")

        await page.screenshot(path=str(SCREENSHOT))

        async with context.expect_page() as opened:
            await link.click()
        chat = await opened.value
        await chat.wait_for_load_state()
        assert re.search(r"/chat/d_[A-Za-z0-9_-]+$", chat.url), chat.url
        await chat.wait_for_selector(".msg.bot")
        assert await chat.inner_text(".msg.bot") == "Hello there"
        await chat.fill("#text", "What are your opening hours?")
        await chat.press("#text", "Enter")
        last = ".msg:nth-child(3)"
        answer = "I can't answer that yet."
        await chat.wait_for_function(  # streamed word by word: until the whole answer is there
            "([selector, text]) => document.querySelector(selector)?.innerText === text",
            arg=[last, answer],
        )
        assert await chat.inner_text(last) == answer
        await chat.close()

        await page.reload()  # the key is kept: no prompt, and no old messages replayed
        await page.wait_for_selector("#text", state="visible")
        assert await page.evaluate(f"localStorage.getItem({KEY_ITEM!r})") == key
        assert not await page.is_visible("#key-panel")
        assert await page.locator("#log .msg").count() == 0
        assert "faq-bot" in await _say(page, "/bots")

        await page.click("#forget")  # forgetting the key asks for it again
        await page.wait_for_selector("#key", state="visible")
        assert await page.evaluate(f"localStorage.getItem({KEY_ITEM!r})") is None
        assert await page.locator("#log .msg").count() == 0

        assert problems == []
        await browser.close()


async def test_a_wrong_key_is_refused_with_the_servers_message(
    chromium: str, live_service: tuple[str, str]
) -> None:
    from playwright.async_api import async_playwright

    base, _ = live_service
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(base + "/")
        await page.fill("#key", "not-a-key")
        await page.press("#key", "Enter")
        await page.wait_for_function(
            "() => document.getElementById('key-error').textContent.includes('401')"
        )
        assert not await page.is_visible("#text")
        assert await page.evaluate(f"localStorage.getItem({KEY_ITEM!r})") is None
        await browser.close()


async def test_a_secret_goes_into_a_password_field_never_into_a_message(
    chromium: str, live_service: tuple[str, str]
) -> None:
    import httpx
    from playwright.async_api import async_playwright

    base, key = live_service
    value = "sk-live-C0nsoleV4lue"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(base + "/")
        await page.fill("#key", key)
        await page.press("#key", "Enter")
        await page.wait_for_selector("#text", state="visible")

        asked = await _say(page, "/secret set console-crm")
        assert "PUT /api/v1/secrets/console-crm" in asked
        await page.locator("#log .msg.bot button", has_text="Enter the value").click()
        field = page.locator("#log form.secret input")
        assert await field.get_attribute("type") == "password"
        await field.fill(value)
        await field.press("Enter")
        await page.wait_for_selector("#log .msg.user.action")
        saved = await _answer_after(page, ".msg.user.action")
        assert "Secret console-crm saved" in saved, saved
        assert await page.locator("#log form.secret").count() == 0  # gone once sent
        assert value not in await page.content()
        await browser.close()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
        listed = (await c.get("/api/v1/secrets")).json()
    assert [s["name"] for s in listed] == ["console-crm"]
