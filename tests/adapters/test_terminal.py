"""The terminal front over HTTP: the same engine, as plain text, with later messages."""

from __future__ import annotations

import io
import sys

import httpx
import pytest

from adapters.terminal.chat import HttpLink, LinkError, chat_in_terminal, converse
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
        await link.start()
        await converse(link, read=lambda: next(lines), write=written.append, interactive=False)
        await service.app.state.core.studio.drain()
        written.extend(await link.later())
    out = "".join(written)
    assert "Created" in out and "Added test 1" in out
    assert "no staging version" in out
    assert "0 passed, 1 failed" in out
    assert out.count("faq-bot") >= 3


async def test_a_refused_key_is_said_plainly(service: Service) -> None:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio.test", headers=service.auth("cs_wrong")
    ) as client:
        link = HttpLink(client)
        with pytest.raises(LinkError, match="invalid API key"):
            await link.start()
        with pytest.raises(LinkError, match="invalid API key"):
            await link.say("/bots")


async def test_a_stopped_service_is_said_plainly() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as client:
        with pytest.raises(LinkError, match="did not answer"):
            await HttpLink(client).say("/bots")


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])  # a UTF-8 locale, C.UTF-8
async def test_bytes_that_are_not_text_are_answered_not_a_traceback(
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    errors: str,
) -> None:
    piped = io.TextIOWrapper(io.BytesIO(b"\xff\xfe bad\n/bots\n"), encoding="utf-8", errors=errors)
    monkeypatch.setattr(sys, "stdin", piped)
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio.test", headers=service.auth()
    ) as client:
        await chat_in_terminal(HttpLink(client))
    out = capsys.readouterr().out
    assert "didn't understand" in out  # the odd line, answered
    assert "No bots yet" in out  # and the chat went on
