"""Steps the tests of Meta's channels share: deploy a live bot by REST, post a signed webhook,
answer what the Studio asks for privately."""

from __future__ import annotations

from typing import Any

import httpx

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
