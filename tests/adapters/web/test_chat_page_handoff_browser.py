"""The chat page while a person of the team has the conversation, in a real headless Chromium:
their answers from a Slack thread (signed events to a real `serve`, the fake Slack Web API)
appear without a reload, and the bot stays silent."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.adapters.web.conftest import CHROMIUM_ARGS, serving
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import JSON, event_body, message_event, sign

pytestmark = pytest.mark.browser
SECRET = "slack-signing-secret"
OWNER = "U0001"


@pytest.fixture(scope="module")
def slack_service(
    tmp_path_factory: pytest.TempPathFactory, fake_slack: FakeSlack
) -> Iterator[tuple[str, Path]]:
    """`main.py serve` with Slack on (against the fake): (base URL, database)."""
    tmp = tmp_path_factory.mktemp("handoff")
    slack = {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "STUDIO_SLACK_API_URL": fake_slack.base_url,
        "STUDIO_SLACK_OWNERS": OWNER,
    }
    with serving(tmp, **slack) as base:
        yield base, tmp / "data" / "studio.db"


def _deploy(base: str, fake_slack: FakeSlack) -> str:
    """The bot built in the Studio's Slack DM by the workspace's owner (only the workspace's
    team hands over to its channels), live on the web: its chat page's path."""
    for said in (
        "newbot desk-bot",
        "handoff desk-bot to #support",
        'route desk-bot "person" to human',
        "promote desk-bot",
        "promote desk-bot production",
        "yes",
        "deploy desk-bot web",
    ):
        before = len(fake_slack.calls_to("chat.postMessage"))
        body = event_body(message_event(said, user=OWNER))
        headers = {**sign(body, SECRET), "Content-Type": JSON}
        assert httpx.post(f"{base}/slack/events", content=body, headers=headers).is_success
        deadline = time.monotonic() + 10
        while len(fake_slack.calls_to("chat.postMessage")) == before:
            assert time.monotonic() < deadline, f"no answer to {said!r}"
            time.sleep(0.02)
    answer = str(fake_slack.calls_to("chat.postMessage")[-1].body.get("text"))
    found = re.search(r"/chat/[A-Za-z0-9_-]+", answer)
    assert found is not None, answer
    return found.group(0)


def _thread(database: Path) -> str:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        (thread,) = conn.execute("SELECT thread FROM handoff WHERE closed_at IS NULL").fetchone()
    return str(thread)


async def test_the_team_s_answers_appear_on_the_page(
    chromium: str, slack_service: tuple[str, Path], fake_slack: FakeSlack
) -> None:
    from playwright.async_api import async_playwright

    fake_slack.reset()
    fake_slack.add_channel("C0001", "support", member=True)
    base, database = slack_service
    url = base + _deploy(base, fake_slack)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(url)
        await page.wait_for_selector(".msg.bot")
        await page.fill("#text", "I need a person")
        await page.press("#text", "Enter")
        await page.wait_for_function("document.body.innerText.includes('asked a person')")
        body = event_body(
            message_event(
                "Hello, **Sam** here.",
                user="U0009",
                channel="C0001",
                channel_type="channel",
                thread_ts=_thread(database),
            )
        )
        headers = {**sign(body, SECRET), "Content-Type": JSON}
        async with httpx.AsyncClient() as client:
            answered = await client.post(f"{base}/slack/events", content=body, headers=headers)
        assert answered.status_code == 200
        await page.wait_for_function("document.body.innerText.includes('Sam here')")
        await page.fill("#text", "Thanks!")
        await page.press("#text", "Enter")
        await page.wait_for_function("document.querySelectorAll('.msg').length === 5")
        bubbles = [await m.inner_html() for m in await page.query_selector_all(".msg")]
        assert bubbles[3].strip() == "<p>Hello, <strong>Sam</strong> here.</p>"  # as the bot
        assert bubbles[4] == "Thanks!"  # and the bot said nothing after it
        await browser.close()
