"""The body cap over a real socket (the app under uvicorn, as `main.py serve` runs it): the
client receives the 413, and big bodies in flight never keep `/healthz` waiting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from adapters.web.request_limits import MAX_BODY_BYTES
from tests.conftest import service_settings, serving_app

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str]]:
    """The service on a free port in this event loop: (base URL, owner key)."""
    settings = service_settings(tmp_path_factory.mktemp("served"))
    async with serving_app(settings) as base:
        yield base, (Path(settings.data_dir) / "local.key").read_text().strip()


async def _open(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def test_an_unauthenticated_10_mb_post_gets_the_413_before_it_is_sent(
    served: tuple[str, str],
) -> None:
    base, _ = served
    reader, writer = await _open(base)
    size = 10 * 1024 * 1024
    writer.write(
        b"POST /api/v1/bots/import HTTP/1.1\r\nHost: studio\r\n"
        b"Content-Type: application/yaml\r\nContent-Length: %d\r\n\r\n" % size
    )
    await writer.drain()
    status, _, body = await _response(reader)  # not a byte of the body sent yet
    assert status == 413
    assert json.loads(body) == {"error": "the body is 10 MB; the limit is 1 MB"}
    writer.write(b"a" * size)  # dropped unread; the connection stays usable
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: studio\r\n\r\n")
    await writer.drain()
    status, _, body = await _response(reader)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    writer.close()
    await writer.wait_closed()


async def test_a_client_sending_the_whole_body_first_still_reads_the_413(
    served: tuple[str, str],
) -> None:
    base, _ = served
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/api/v1/bots/import", content=b"a" * (10 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json() == {"error": "the body is 10 MB; the limit is 1 MB"}


async def test_healthz_answers_while_near_limit_bodies_are_arriving(
    served: tuple[str, str],
) -> None:
    base, key = served
    size = MAX_BODY_BYTES - 1024
    uploads = [await _open(base) for _ in range(4)]
    for number, (_, writer) in enumerate(uploads):
        writer.write(
            f"PATCH /api/v1/bots/big-{number} HTTP/1.1\r\nHost: studio\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
            + b'{"prompt": "'
            + b"p" * (size // 2)
        )
        await writer.drain()
    async with httpx.AsyncClient(base_url=base) as client:
        health = await client.get("/healthz")
    assert health.json() == {"status": "ok"}  # while all four bodies are half sent
    for _, writer in uploads:
        writer.write(b"p" * (size - size // 2 - len(b'{"prompt": "') - 2) + b'"}')
        await writer.drain()
    for reader, writer in uploads:
        status, _, body = await _response(reader)
        assert status == 404, body  # read, parsed and answered: no such bot
        writer.close()
        await writer.wait_closed()
    await writer.wait_closed()
