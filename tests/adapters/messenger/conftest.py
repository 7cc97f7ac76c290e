"""The whole service with the Messenger channel against the fake Graph API (over real HTTP), and
the steps the tests share: deploy a bot to a Page, post Meta's signed webhooks, trigger a
message by REST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.messenger.channel import MessengerChannel
from runtime.messages import Address, OutgoingMessage
from tests.adapters.meta.steps import APP_SECRET, deploy_live, post_signed
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import PAGE_ID, PSID

PUBLIC = "https://studio.example.com"
TOKEN = "EAAGfakeMessengerPageToken0123456789"
OTHER_SECRET = "fedcba9876543210fedcba9876543210"
OTHER_PAGE = "200000000000002"


@pytest.fixture
async def studio(tmp_path: Path, meta: FakeMeta) -> AsyncIterator[Service]:
    settings = service_settings(tmp_path, public_url=PUBLIC, studio_messenger_api_url=meta.base_url)
    async with running_service(settings) as service:
        yield service


def channel_of(studio: Service) -> MessengerChannel:
    adapter = studio.app.state.core.adapter("messenger")
    assert isinstance(adapter, MessengerChannel)
    return adapter


async def deploy(
    studio: Service,
    meta: FakeMeta,
    *,
    name: str = "faq-bot",
    page: str = PAGE_ID,
    token: str = TOKEN,
    app_secret: str = APP_SECRET,
    **options: str,
) -> dict[str, Any]:
    """A live bot deployed to a Page the fake knows: the deployment as REST answers."""
    meta.add_page(page, token)
    return await deploy_live(
        studio,
        channel="messenger",
        target=page,
        token=token,
        app_secret=app_secret,
        name=name,
        **options,
    )


async def post(
    studio: Service, deployment: str, payload: Any, secret: str | None = APP_SECRET
) -> httpx.Response:
    """A webhook post as Meta sends it (signed with `secret`; unsigned when None)."""
    return await post_signed(studio, f"/messenger/{deployment}", payload, secret)


async def trigger(studio: Service, text: str, *, name: str = "faq-bot") -> httpx.Response:
    """The bot writes to the person unasked: `POST /api/v1/bots/{bot}/trigger`."""
    return await studio.client.post(
        f"/api/v1/bots/{name}/trigger",
        headers=studio.auth(),
        json={"user": PSID, "channel": "messenger", "text": text},
    )


def to_person(deployment: str, text: str = "", **fields: Any) -> OutgoingMessage:
    address = Address(
        channel="messenger", deployment_id=deployment, conversation=PSID, user=f"messenger:{PSID}"
    )
    return OutgoingMessage(address=address, text=text, **fields)
