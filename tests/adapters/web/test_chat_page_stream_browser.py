"""The chat page in a real headless Chromium shows an answer as the model writes it: a partial
answer first, then the whole one (the bot's model streams from the fake OpenAI-compatible
server through `main.py serve`)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.adapters.web.conftest import CHROMIUM_ARGS, serving
from tests.fakes.llm import FakeLLM

pytestmark = pytest.mark.browser
ANSWER = "Refunds take five business days after we receive the item."
BUBBLE = "document.querySelector('.msg:nth-child(3)')"


@pytest.fixture(scope="module")
def streaming_service(
    tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM
) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("streaming")
    with serving(tmp, STUDIO_LLM_API_BASE=fake_llm.base_url) as base:
        yield base, (tmp / "data" / "local.key").read_text().strip()


def _deploy(base: str, key: str) -> str:
    spec = {"name": "stream-bot", "model": "openai/fake-model", "greeting": "Hi!"}
    with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}) as api:
        for path, body in [
            ("/bots/import", spec),
            ("/bots/stream-bot/promote", {"to": "staging"}),
            ("/bots/stream-bot/promote", {"to": "production"}),
            ("/bots/stream-bot/deployments", {"channel": "web"}),
        ]:
            response = api.post(path, json=body, timeout=30)
            assert response.status_code < 300, response.text
    return str(response.json()["url"])


async def test_the_answer_shows_as_it_is_written(
    chromium: str, streaming_service: tuple[str, str], llm: FakeLLM
) -> None:
    from playwright.async_api import async_playwright

    base, key = streaming_service
    url = base + _deploy(base, key)
    llm.reply(ANSWER, chunk_delay_s=0.25)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(url)
        await page.wait_for_selector(".msg.bot")
        await page.fill("#text", "How long do refunds take?")
        await page.press("#text", "Enter")
        partial = await page.wait_for_function(
            f"{BUBBLE} && {BUBBLE}.textContent.startsWith('Refunds') && "
            f"!{BUBBLE}.textContent.includes('item.') && {BUBBLE}.textContent",
            timeout=30_000,
        )
        shown = await partial.json_value()
        assert ANSWER.startswith(shown) and len(shown) < len(ANSWER)
        await page.wait_for_function(f"{BUBBLE}.textContent.includes('item.')", timeout=30_000)
        assert await page.inner_text(".msg:nth-child(3) p") == ANSWER  # the final HTML
        assert await page.query_selector(".msg:nth-child(3) .rate")  # thumbs, as before
        await browser.close()
    assert llm.calls[-1].body["stream"] is True
