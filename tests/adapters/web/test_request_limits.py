"""Request bodies are capped before they are read, per route, with a JSON 413."""

from __future__ import annotations

from collections.abc import AsyncIterator

from adapters.web.request_limits import MAX_BODY_BYTES
from runtime.knowledge.extract import MAX_SOURCE_BYTES
from tests.factories import Service

CHUNK = 64 * 1024


class Body:
    """A request body streamed in chunks, counting what the service pulled."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.size:
            chunk = b"a" * min(CHUNK, self.size - self.pulled)
            self.pulled += len(chunk)
            yield chunk


async def test_a_declared_length_over_the_cap_is_413_before_authentication(
    service: Service,
) -> None:
    body = Body(10 * 1024 * 1024)
    response = await service.client.post(
        "/api/v1/bots/import",
        content=body,
        headers={"content-length": str(body.size), "content-type": "application/yaml"},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "the body is 10 MB; the limit is 1 MB"}
    assert body.pulled == 0  # not a byte read, and no key asked for


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_cap(service: Service) -> None:
    await service.import_bot()
    body = Body(10 * 1024 * 1024)  # no Content-Length: sent chunked
    response = await service.client.patch(
        "/api/v1/bots/faq-bot",
        content=body,
        headers={**service.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "the body is over the limit of 1 MB"}
    assert body.pulled <= MAX_BODY_BYTES + CHUNK
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["revision"] == 1


async def test_a_streamed_body_under_the_cap_goes_through(service: Service) -> None:
    text = b'{"name": "faq-bot", "prompt": "' + b"p" * 2000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(text), 500):
            yield text[start : start + 500]

    response = await service.client.post(
        "/api/v1/bots/import",
        content=chunks(),
        headers={**service.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text


async def test_a_body_just_over_the_cap_never_reads_as_equal_to_it(service: Service) -> None:
    """1,100,000 bytes rounds to "1 MB", as the cap does: the answer says "more than"."""
    body = Body(1_100_000)
    response = await service.client.post(
        "/api/v1/bots/import",
        content=body,
        headers={"content-length": str(body.size), "content-type": "application/yaml"},
    )
    assert response.status_code == 413
    assert response.json() == {"error": "the body is more than 1 MB; the limit is 1 MB"}


async def test_knowledge_uploads_keep_their_own_cap(service: Service) -> None:
    await service.import_bot()
    path = "/api/v1/bots/faq-bot/knowledge?name=big.txt"
    over = Body(MAX_SOURCE_BYTES + 1)
    refused = await service.client.post(
        path, content=over, headers={**service.auth(), "content-length": str(over.size)}
    )
    assert refused.status_code == 413
    assert refused.json()["error"] == "the body is more than 20 MB; the limit is 20 MB"
    assert over.pulled == 0
    # Over the usual cap but under the upload cap: this one is for the route to judge (no key).
    body = Body(5 * 1024 * 1024)
    response = await service.client.post(
        path, content=body, headers={"content-length": str(body.size)}
    )
    assert response.status_code == 401
    assert body.pulled == 0


async def test_chat_messages_over_4000_characters_stay_413(service: Service) -> None:
    deployment = await service.live_web_bot()
    response = await service.chat(deployment, "x" * 4001)
    assert response.status_code == 413
    assert response.json() == {"error": "message too long: at most 4000 characters"}
