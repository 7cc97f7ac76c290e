"""What the bot sends unasked to a web session (a scheduled message, a follow-up, a trigger) is
kept in the session's conversation; the open chat page fetches it (every 20 s while visible, at
once when it shows again), each message once. In a real headless Chromium whose timers run on
Playwright's clock, against a real `serve`; the messages are written into its database as the
scheduler keeps them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.adapters.web.conftest import CHROMIUM_ARGS, serving

pytestmark = pytest.mark.browser
COUNT = "document.querySelectorAll('.msg').length"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """`main.py serve`: (base URL, owner key, database)."""
    tmp = tmp_path_factory.mktemp("proactive")
    with serving(tmp) as base:
        data = tmp / "data"
        yield base, (data / "local.key").read_text().strip(), data / "studio.db"


def _deploy(base: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"{base}/api/v1", headers=headers) as api:
        for path, body in [
            ("/bots/import", {"name": "news-bot", "greeting": "Hi!", "fallback": "Noted."}),
            ("/bots/news-bot/promote", {"to": "staging"}),
            ("/bots/news-bot/promote", {"to": "production"}),
            ("/bots/news-bot/deployments", {"channel": "web"}),
        ]:
            response = api.post(path, json=body)
            assert response.status_code < 300, response.text
    return str(response.json()["url"])


def _say_unasked(database: Path, session: str, text: str) -> None:
    """An assistant message in the session's conversation, as a schedule keeps it."""
    parts = json.dumps([{"type": "proactive", "origin": "schedule", "id": "morning"}])
    with sqlite3.connect(database) as conn:
        conversation, bot = conn.execute(
            "SELECT id, bot_id FROM conversation WHERE key = ? AND ended_at IS NULL", (session,)
        ).fetchone()
        conn.execute(
            "INSERT INTO message (conversation_id, bot_id, role, text, parts, created_at)"
            " VALUES (?, ?, 'assistant', ?, ?, ?)",
            (conversation, bot, text, parts, datetime.now(UTC).isoformat(sep=" ")),
        )


async def test_messages_sent_unasked_appear_once_on_the_open_page(
    chromium: str, service: tuple[str, str, Path]
) -> None:
    from playwright.async_api import Page, async_playwright

    base, key, database = service
    url = base + _deploy(base, key)

    async def texts(page: Page) -> list[str]:
        return [await m.inner_text() for m in await page.query_selector_all(".msg")]

    async def ask(page: Page, text: str, count: int) -> None:
        await page.fill("#text", text)
        await page.press("#text", "Enter")
        await page.wait_for_function(
            f"{COUNT} === {count} && !document.querySelector('#send').disabled"
        )

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        await page.clock.install(time=start)
        await page.clock.pause_at(start + timedelta(seconds=1))  # timers run when the test says
        await page.goto(url)
        await page.wait_for_selector(".msg.bot")
        await ask(page, "hello", 3)
        deployment = url.rsplit("/", 1)[1]
        session = await page.evaluate(f"localStorage.getItem('chat-studio-session:{deployment}')")

        _say_unasked(database, session, "Good morning! Any questions?")
        await page.clock.run_for(19_000)
        assert await page.evaluate(COUNT) == 3  # not fetched before its 20 s
        await page.clock.run_for(1_000)
        await page.wait_for_function("document.body.innerText.includes('Good morning')")

        _say_unasked(database, session, "Still there?")
        await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
        await page.wait_for_function("document.body.innerText.includes('Still there')")

        _say_unasked(database, session, "News: refunds now take 2 days.")
        await ask(page, "thanks", 8)  # sent before the page fetched the news: shown above it
        _say_unasked(database, session, "Bye for now.")
        await page.clock.run_for(20_000)
        await page.wait_for_function("document.body.innerText.includes('Bye for now')")
        shown = await texts(page)
        assert shown == [
            "Hi!",
            "hello",
            "Noted.",
            "Good morning! Any questions?",
            "Still there?",
            "News: refunds now take 2 days.",
            "thanks",
            "Noted.",
            "Bye for now.",
        ]
        await page.reload()  # what the conversation holds: the same, in its order
        await page.wait_for_function(f"{COUNT} === 9")
        assert await texts(page) == shown
        await browser.close()
