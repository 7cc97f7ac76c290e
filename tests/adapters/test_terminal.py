"""The terminal front over HTTP: the same engine, as plain text, with later messages."""

from __future__ import annotations

import httpx

from adapters.terminal.chat import HttpLink, converse
from tests.factories import Service


async def test_a_terminal_conversation_through_a_running_service(service: Service) -> None:
    lines = iter(
        [
            "/newbot faq-bot\n",
            '/test faq-bot add "hi" expect contains "nope"\n',
            "/test faq-bot\n",
            "/promote faq-bot production\n",
            "\n",
            "quit\n",
            "/bots\n",  # never read: quit ends the conversation
        ]
    )
    written: list[str] = []
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio.test", headers=service.auth()
    ) as client:
        link = HttpLink(client)
        await converse(link, read=lambda: next(lines), write=written.append, interactive=False)
        await service.app.state.core.studio.drain()
        written.extend(await link.later())
    out = "".join(written)
    assert "Created" in out and "Added test 1" in out
    assert "no staging version" in out
    assert "0 passed, 1 failed" in out
    assert out.count("faq-bot") >= 3


async def test_a_refused_key_is_said_plainly(service: Service) -> None:
    written: list[str] = []
    lines = iter(["/bots\n", ""])
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio.test", headers=service.auth("cs_wrong")
    ) as client:
        await converse(
            HttpLink(client), read=lambda: next(lines), write=written.append, interactive=False
        )
    assert written == ["error: invalid API key\n\n"]
