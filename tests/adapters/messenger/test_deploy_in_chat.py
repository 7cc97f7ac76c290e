"""`/deploy BOT messenger PAGE_ID tag=…` in chat: the Page id and the tag are typed in the
command, the Page access token and the app secret are asked for privately (here through
`POST /api/v1/studio/secrets`), and the app is subscribed to the Page."""

from __future__ import annotations

from tests.adapters.messenger.conftest import APP_SECRET, TOKEN
from tests.adapters.meta.steps import asked, give_privately
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import PAGE_ID


async def test_the_page_token_and_app_secret_are_asked_for_privately_then_it_deploys(
    studio: Service, meta: FakeMeta
) -> None:
    meta.add_page(PAGE_ID, TOKEN)
    await studio.live_bot()

    text, request = asked(
        await studio.say(f"/deploy faq-bot messenger {PAGE_ID} tag=ACCOUNT_UPDATE")
    )
    assert "Page access token" in text and "Messenger" in text
    text, second = asked(await give_privately(studio, request, TOKEN))
    assert "app secret" in text and TOKEN not in text
    reply = (await give_privately(studio, second, APP_SECRET))["reply"]

    assert "is live on messenger" in reply and "/messenger/" in reply
    assert TOKEN not in reply and APP_SECRET not in reply
    [deployment] = await studio.call("GET", "/api/v1/deployments")
    assert (deployment["channel"], deployment["target"]) == ("messenger", PAGE_ID)
    assert meta.subscribed(PAGE_ID)


async def test_what_is_wrong_in_the_command_is_said_before_any_secret_isasked(
    studio: Service, meta: FakeMeta
) -> None:
    await studio.live_bot()
    no_page = (await studio.say("/deploy faq-bot messenger"))["reply"]
    assert "Page id" in no_page
    assert meta.calls == []
