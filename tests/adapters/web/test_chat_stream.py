"""`POST /api/v1/chat/{id}` with `Accept: text/event-stream`, over a real socket (the app under
uvicorn): the answer's text streams as `token` events while the model writes it (litellm
streaming from the fake OpenAI-compatible server), then one `done` event with the whole answer.
A stream that breaks after its first words ends with the bot's fallback (the partial text is
not kept); a client that hangs up early does not stop the turn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import service_settings, serving_app
from tests.fakes.llm import FakeLLM

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.usefixtures("litellm_imported", "no_provider_keys"),
]
MODEL = "openai/fake-model"
FALLBACK = "Sorry, I can't answer that right now."
SSE = {"Accept": "text/event-stream"}


class Served:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.client = httpx.AsyncClient(base_url=base, timeout=30)

    async def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key}"}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    async def live_bot(self, name: str, model: str) -> str:
        spec = {"name": name, "model": model, "fallback": FALLBACK, "prompt": "Be brief."}
        await self.rest("POST", "/api/v1/bots/import", json=spec)
        for env in ("staging", "production"):
            await self.rest("POST", f"/api/v1/bots/{name}/promote", json={"to": env})
        deployed = await self.rest(
            "POST", f"/api/v1/bots/{name}/deployments", json={"channel": "web"}
        )
        return str(deployed["id"])

    async def events(self, deployment: str, text: str) -> list[tuple[str, dict[str, Any], float]]:
        """Each event of the streamed answer: (name, data, seconds since the request)."""
        started = time.perf_counter()
        found = []
        path = f"/api/v1/chat/{deployment}"
        async with self.client.stream("POST", path, json={"text": text}, headers=SSE) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            async for name, data in _parsed(answer.aiter_lines()):
                found.append((name, data, time.perf_counter() - started))
        return found


async def _parsed(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Server-sent events as the protocol frames them (`event:`, `data:`, a blank line)."""
    name, data = "message", ""
    async for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data += line.removeprefix("data: ")
        elif not line and data:
            yield name, json.loads(data)
            name, data = "message", ""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM
) -> AsyncIterator[Served]:
    settings = service_settings(tmp_path_factory.mktemp("stream"), llm_api_base=fake_llm.base_url)
    async with serving_app(settings) as base:
        key = (Path(settings.data_dir) / "local.key").read_text().strip()
        here = Served(base, key)
        yield here
        await here.client.aclose()


async def _kept(served: Served, bot: str) -> list[dict[str, Any]]:
    """The bot's latest conversation's messages, as stored."""
    listed = await served.rest("GET", f"/api/v1/bots/{bot}/conversations")
    if not listed:
        return []
    latest = max(listed, key=lambda c: c["id"])
    got = await served.rest("GET", f"/api/v1/bots/{bot}/conversations/{latest['id']}")
    return list(got["messages"])


async def test_the_text_streams_as_the_model_writes_it(served: Served, llm: FakeLLM) -> None:
    deployment = await served.live_bot("stream-bot", MODEL)
    # litellm imports what a stream needs during the first one, on the event loop: on a busy
    # machine that can hold back its words, so the words timed below are the second stream's
    llm.reply("Hello.")
    await served.events(deployment, "Hi")
    llm.reply("Refunds take five business days.", chunk_delay_s=0.15)
    events = await served.events(deployment, "How long do refunds take?")
    tokens = [(data["text"], at) for name, data, at in events if name == "token"]
    (done,) = [(data, at) for name, data, at in events if name == "done"]
    assert "".join(text for text, _ in tokens) == "Refunds take five business days."
    assert len(tokens) == 5 and done[0]["reply"] == "Refunds take five business days."
    assert done[1] - tokens[0][1] >= 0.3  # the first words were there long before the end
    assert llm.calls[-1].body["stream"] is True
    *_, answer = await _kept(served, "stream-bot")
    assert answer["text"] == "Refunds take five business days."
    assert (answer["prompt_tokens"], answer["completion_tokens"]) == (12, 5)
    assert answer["id"] == done[0]["message_id"] and answer["error"] is None


async def test_the_offline_model_streams_word_by_word(served: Served) -> None:
    deployment = await served.live_bot("offline-bot", "offline")
    events = await served.events(deployment, "hello")
    assert [data["text"] for name, data, _ in events if name == "token"] == [
        "Sorry, ",
        "I ",
        "can't ",
        "answer ",
        "that ",
        "right ",
        "now.",
    ]
    assert events[-1][0] == "done" and events[-1][1]["reply"] == FALLBACK


async def test_a_stream_that_breaks_midway_ends_with_the_fallback(
    served: Served, llm: FakeLLM
) -> None:
    deployment = await served.live_bot("broken-bot", MODEL)
    llm.broken_stream("one two three four", after=2)
    events = await served.events(deployment, "count for me")
    assert [data["text"] for name, data, _ in events if name == "token"] == ["one ", "two "]
    assert events[-1][0] == "done" and events[-1][1]["reply"] == FALLBACK
    assert len(llm.calls) == 1  # text was shown: never asked again (it would show twice)
    *_, answer = await _kept(served, "broken-bot")
    assert answer["text"] == FALLBACK and answer["error"].startswith("provider: ")


async def test_a_failure_before_the_first_word_is_retried(served: Served, llm: FakeLLM) -> None:
    deployment = await served.live_bot("retry-bot", MODEL)
    llm.fail(500)
    llm.reply("Here it is.")
    events = await served.events(deployment, "try again")
    assert "".join(data["text"] for name, data, _ in events if name == "token") == "Here it is."
    assert len(llm.calls) == 2


async def test_a_client_that_hangs_up_does_not_stop_the_turn(served: Served, llm: FakeLLM) -> None:
    deployment = await served.live_bot("gone-bot", MODEL)
    llm.reply("a b c d e f g h", chunk_delay_s=0.1)
    path = f"/api/v1/chat/{deployment}"
    async with served.client.stream("POST", path, json={"text": "hi"}, headers=SSE) as answer:
        async for name, _ in _parsed(answer.aiter_lines()):
            if name == "token":
                break  # the reader leaves after the first word
    for _ in range(100):
        kept = await _kept(served, "gone-bot")
        if len(kept) == 2:
            break
        await asyncio.sleep(0.05)
    assert [m["text"] for m in kept] == ["hi", "a b c d e f g h"]


async def test_without_the_header_the_answer_is_json_as_before(
    served: Served, llm: FakeLLM
) -> None:
    deployment = await served.live_bot("json-bot", MODEL)
    llm.reply("Plain.")
    answer = await served.client.post(f"/api/v1/chat/{deployment}", json={"text": "hi"})
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["reply"] == "Plain."
    assert llm.calls[-1].body.get("stream") is not True
