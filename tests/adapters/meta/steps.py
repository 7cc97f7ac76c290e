"""Steps the tests of Meta's channels share: deploy a live bot by REST, post a signed webhook,
answer what the Studio asks for privately; one test's turn on the service its module shares."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from studio.replies import secret_form
from tests.factories import Service
from tests.fakes.meta_payloads import dumps, signed_headers

APP_SECRET = "0123456789abcdef0123456789abcdef"


async def deploy_live(
    studio: Service,
    *,
    channel: str,
    target: str,
    token: str,
    app_secret: str = APP_SECRET,
    name: str = "faq-bot",
    **options: str,
) -> dict[str, Any]:
    """`name` live (staging and production) and deployed to `channel`: the REST answer."""
    await studio.live_bot(name)
    body = {"channel": channel, "target": target, "token": token, "app_secret": app_secret}
    deployed: dict[str, Any] = await studio.call(
        "POST", f"/api/v1/bots/{name}/deployments", json={**body, **options}
    )
    return deployed


async def post_signed(
    studio: Service, path: str, payload: Any, secret: str | None = APP_SECRET
) -> httpx.Response:
    """A webhook post as Meta sends it (signed with `secret`; unsigned when None)."""
    body = dumps(payload)
    headers = signed_headers(body, secret) if secret else {"Content-Type": "application/json"}
    return await studio.client.post(path, content=body, headers=headers)


def asked(said: dict[str, Any]) -> tuple[str, str]:
    """(the Studio answer's text, the request its private form answers)."""
    [message] = said["messages"]
    [button] = message["buttons"]
    found = secret_form(button["action"])
    assert found is not None, button
    return message["text"], found[0]


async def give_privately(studio: Service, request: str, value: str) -> dict[str, Any]:
    """The value for `request`, as the web console and the terminal give it."""
    body = {"request": request, "value": value}
    said: dict[str, Any] = await studio.call("POST", "/api/v1/studio/secrets", json=body)
    return said


# -- a service shared by a test module -----------------------------------------------------------

_numbers = itertools.count(1)


def unique(prefix: str) -> str:
    """`prefix` and 5 digits no other test of the session got: a bot's name, or a phone-number
    or Page id (`prefix` its first 10 digits), for a test to have to itself on its module's
    service."""
    return f"{prefix}{next(_numbers):05d}"


@asynccontextmanager
async def one_test(
    service: Service, channel: str, request: pytest.FixtureRequest
) -> AsyncIterator[Service]:
    """The module's service for one test: the channel's messaging window back on the real clock
    (a test may move it with the fake's), and every turn the test started finished when it ends,
    so nothing of it reaches the fakes (reset for the next test) later."""
    marker = request.node.get_closest_marker("asyncio")
    if marker is None or marker.kwargs.get("loop_scope") != "module":
        pytest.fail(
            f"{request.node.nodeid} uses its module's service, which runs in the module's event"
            " loop: mark it (or its module) pytest.mark.asyncio(loop_scope='module')"
        )
    window = service.app.state.core.adapter(channel).window
    window.clock = time.time
    try:
        yield service
    finally:
        await service.app.state.core.runtime.drain()
        window.clock = time.time


async def deployments(studio: Service, bot: str) -> list[dict[str, Any]]:
    """The bot's deployments (the module's service has other tests' too)."""
    found: list[dict[str, Any]] = await studio.call(
        "GET", "/api/v1/deployments", params={"bot": bot}
    )
    return found
