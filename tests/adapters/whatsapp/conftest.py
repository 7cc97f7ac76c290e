"""The whole service with the WhatsApp channel against the fake Graph API (over real HTTP), and
the steps the tests share: deploy a bot to a phone number, post Meta's signed webhooks.

The tests of a module share one service (`studio`; the module is marked
`pytest.mark.asyncio(loop_scope="module")`): each deploys its own bot to its own phone number
(`own`), and the fake Meta is reset for each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from adapters.whatsapp.channel import WhatsAppChannel
from tests.adapters.meta.steps import APP_SECRET, deploy_live, one_test, post_signed, unique
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import PHONE_NUMBER_ID, WA_ID

PUBLIC = "https://studio.example.com"
TOKEN = "EAAGfakeWhatsAppToken0123456789"
TEMPLATE = "follow_up"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_studio(
    tmp_path_factory: pytest.TempPathFactory, fake_meta: FakeMeta
) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path_factory.mktemp("whatsapp"),
        public_url=PUBLIC,
        studio_whatsapp_api_url=fake_meta.base_url,
    )
    async with running_service(settings) as service:
        yield service


@pytest_asyncio.fixture(loop_scope="module")
async def studio(
    module_studio: Service, meta: FakeMeta, request: pytest.FixtureRequest
) -> AsyncIterator[Service]:
    """The module's service, for one test (see `one_test`)."""
    async with one_test(module_studio, "whatsapp", request) as service:
        yield service


@dataclass(frozen=True, slots=True)
class Own:
    """A test's own bot and phone-number id on the module's service, and one more id (a second
    deployment's, or one nobody deployed to)."""

    bot: str
    phone: str
    other: str


@pytest.fixture
def own() -> Own:
    return Own(unique("faq-bot-"), unique("1065403522"), unique("2000000000"))


def channel_of(studio: Service) -> WhatsAppChannel:
    adapter = studio.app.state.core.adapter("whatsapp")
    assert isinstance(adapter, WhatsAppChannel)
    return adapter


async def deploy(
    studio: Service,
    meta: FakeMeta,
    *,
    name: str = "faq-bot",
    phone: str = PHONE_NUMBER_ID,
    token: str = TOKEN,
    app_secret: str = APP_SECRET,
    **options: str,
) -> dict[str, Any]:
    """A live bot deployed to a phone number the fake knows: the deployment as REST answers."""
    meta.add_phone_number(phone, token)
    return await deploy_live(
        studio,
        channel="whatsapp",
        target=phone,
        token=token,
        app_secret=app_secret,
        name=name,
        **options,
    )


async def post(
    studio: Service, deployment: str, payload: dict[str, Any], secret: str | None = APP_SECRET
) -> httpx.Response:
    """A webhook post as Meta sends it (signed with `secret`; unsigned when None)."""
    return await post_signed(studio, f"/whatsapp/{deployment}", payload, secret)


async def trigger(studio: Service, deployment: str, text: str) -> None:
    """The bot writes to Alice unasked: what `POST /api/v1/bots/{bot}/trigger` runs."""
    core = studio.app.state.core
    target = await core.runtime.target(deployment)
    await core.scheduler.trigger(
        bot_id=target.bot_id, env="production", channel="whatsapp", user=WA_ID, message=text
    )
