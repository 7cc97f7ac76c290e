"""The whole service with the Messenger channel against the fake Graph API (over real HTTP), and
the steps the tests share: deploy a bot to a Page, post Meta's signed webhooks, trigger a
message by REST.

The tests of a module share one service (`studio`; the module is marked
`pytest.mark.asyncio(loop_scope="module")`): each deploys its own bot to its own Page (`own`),
and the fake Meta is reset for each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from adapters.messenger.channel import MessengerChannel
from runtime.messages import Address, OutgoingMessage
from tests.adapters.meta.steps import APP_SECRET, deploy_live, one_test, post_signed, unique
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import PSID

PUBLIC = "https://studio.example.com"
TOKEN = "EAAGfakeMessengerPageToken0123456789"
OTHER_SECRET = "fedcba9876543210fedcba9876543210"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_studio(
    tmp_path_factory: pytest.TempPathFactory, fake_meta: FakeMeta
) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path_factory.mktemp("messenger"),
        public_url=PUBLIC,
        studio_messenger_api_url=fake_meta.base_url,
    )
    async with running_service(settings) as service:
        yield service


@pytest_asyncio.fixture(loop_scope="module")
async def studio(
    module_studio: Service, meta: FakeMeta, request: pytest.FixtureRequest
) -> AsyncIterator[Service]:
    """The module's service, for one test (see `one_test`)."""
    async with one_test(module_studio, "messenger", request) as service:
        yield service


@dataclass(frozen=True, slots=True)
class Own:
    """A test's own bot and Page on the module's service, and another Page (a second
    deployment's, or one the token may not use)."""

    bot: str
    page: str
    other: str


@pytest.fixture
def own() -> Own:
    return Own(unique("faq-bot-"), unique("1043507287"), unique("2000000000"))


def channel_of(studio: Service) -> MessengerChannel:
    adapter = studio.app.state.core.adapter("messenger")
    assert isinstance(adapter, MessengerChannel)
    return adapter


async def deploy(
    studio: Service,
    meta: FakeMeta,
    *,
    name: str,
    page: str,
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


async def trigger(studio: Service, text: str, *, name: str) -> httpx.Response:
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
