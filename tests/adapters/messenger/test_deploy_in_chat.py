"""`/deploy BOT messenger PAGE_ID tag=…` in chat: the Page id and the tag are typed in the
command, the Page access token and the app secret are asked for privately (here through
`POST /api/v1/studio/secrets`), and the app is subscribed to the Page."""

from __future__ import annotations

import pytest

from tests.adapters.messenger.conftest import APP_SECRET, TOKEN, Own
from tests.adapters.meta.steps import asked, deployments, give_privately
from tests.factories import Service
from tests.fakes.meta import FakeMeta

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_page_token_and_app_secret_are_asked_for_privately_then_it_deploys(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    meta.add_page(own.page, TOKEN)
    await studio.live_bot(own.bot)

    text, request = asked(
        await studio.say(f"/deploy {own.bot} messenger {own.page} tag=ACCOUNT_UPDATE")
    )
    assert "Page access token" in text and "Messenger" in text
    text, second = asked(await give_privately(studio, request, TOKEN))
    assert "app secret" in text and TOKEN not in text
    reply = (await give_privately(studio, second, APP_SECRET))["reply"]

    assert "is live on messenger" in reply and "/messenger/" in reply
    assert TOKEN not in reply and APP_SECRET not in reply
    [deployment] = await deployments(studio, own.bot)
    assert (deployment["channel"], deployment["target"]) == ("messenger", own.page)
    assert meta.subscribed(own.page)


async def test_what_is_wrong_in_the_command_is_said_before_any_secret_isasked(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    await studio.live_bot(own.bot)
    no_page = (await studio.say(f"/deploy {own.bot} messenger"))["reply"]
    assert "Page id" in no_page
    assert meta.calls == []
