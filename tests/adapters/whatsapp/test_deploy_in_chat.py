"""`/deploy BOT whatsapp PHONE_NUMBER_ID` in chat: what is no secret is typed in the command, the
access token and the app secret are asked for privately, one after the other (here through the
web console's and the terminal's path, `POST /api/v1/studio/secrets`), and never shown again."""

from __future__ import annotations

import pytest

from tests.adapters.meta.steps import asked, deployments, give_privately
from tests.adapters.whatsapp.conftest import APP_SECRET, TOKEN, Own
from tests.factories import Service
from tests.fakes.meta import FakeMeta

pytestmark = pytest.mark.asyncio(loop_scope="module")


def deploy_command(own: Own) -> str:
    return f"/deploy {own.bot} whatsapp {own.phone} template=follow_up"


async def test_the_token_and_app_secret_are_asked_for_privately_then_it_deploys(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    meta.add_phone_number(own.phone, TOKEN)
    await studio.live_bot(own.bot)

    text, request = asked(await studio.say(deploy_command(own)))
    assert "access token" in text and "WhatsApp" in text and "privately" in text
    assert f"/api/v1/bots/{own.bot}/deployments" in text  # the other private way
    assert await deployments(studio, own.bot) == []

    text, second = asked(await give_privately(studio, request, TOKEN))
    assert "app secret" in text and second != request
    assert TOKEN not in text

    done = await give_privately(studio, second, APP_SECRET)
    reply = done["reply"]
    assert "is live on whatsapp" in reply
    assert "/whatsapp/" in reply and "verify token" in reply  # what to paste into Meta's app
    assert TOKEN not in reply and APP_SECRET not in reply
    [deployment] = await deployments(studio, own.bot)
    assert (deployment["channel"], deployment["target"]) == ("whatsapp", own.phone)
    assert set(deployment["details"]) == {"webhook_url", "verify_token"}
    audit = await studio.call("GET", "/api/v1/audit")
    assert TOKEN not in str(audit) and APP_SECRET not in str(audit)

    again = await give_privately(studio, second, APP_SECRET)  # a request is answered once
    assert "was waiting" in again["reply"]


async def test_a_secret_meta_would_refuse_deploys_nothing_and_says_how_to_retry(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    meta.add_phone_number(own.phone, TOKEN)
    await studio.live_bot(own.bot)
    command = deploy_command(own)
    _, request = asked(await studio.say(command))
    _, second = asked(await give_privately(studio, request, TOKEN))
    refused = (await give_privately(studio, second, "not-an-app-secret"))["reply"]
    assert "Nothing was deployed" in refused and command in refused
    assert "not-an-app-secret" not in refused
    assert await deployments(studio, own.bot) == []


async def test_what_is_wrong_in_the_command_is_said_before_any_secret_isasked(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    await studio.live_bot(own.bot)
    no_number = (await studio.say(f"/deploy {own.bot} whatsapp"))["reply"]
    assert "phone" in no_number.lower()
    unknown = (await studio.say(f"/deploy {own.bot} whatsapp {own.phone} colour=red"))["reply"]
    assert "template" in unknown and "colour" in unknown
    fax = (await studio.say(f"/deploy {own.bot} fax"))["reply"]
    assert "whatsapp" in fax and "'fax'" in fax
    for said in (no_number, unknown, fax):
        assert "privately" not in said


async def test_an_editor_cannot_deploy(studio: Service, meta: FakeMeta, own: Own) -> None:
    await studio.live_bot(own.bot)
    created = await studio.call("POST", "/api/v1/keys", json={"role": "editor", "name": "ed"})
    command = deploy_command(own)
    response = await studio.client.post(
        "/api/v1/studio/messages",
        json={"text": command},
        headers=studio.auth(created["key"]),
    )
    assert response.status_code == 403  # an editor key cannot speak for members at all
    said = (await studio.say(command, user="ed"))["reply"]  # a member who is a viewer
    assert "privately" not in said and "admin" in said.lower()


async def test_rest_refuses_what_the_channel_does_not_take(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    meta.add_phone_number(own.phone, TOKEN)
    await studio.live_bot(own.bot)
    body = {"channel": "whatsapp", "target": own.phone, "token": TOKEN}
    for extra, says in (
        ({"app_secret": APP_SECRET, "colour": "red"}, "takes the options template, not colour"),
        ({"app_secret": APP_SECRET, "template": 7}, "template must be a string"),
        ({}, "app secret"),
    ):
        response = await studio.client.post(
            f"/api/v1/bots/{own.bot}/deployments", json={**body, **extra}, headers=studio.auth()
        )
        assert response.status_code == 422, response.text
        assert says in response.json()["error"], response.json()
    web = {"channel": "web", "template": "x"}
    response = await studio.client.post(
        f"/api/v1/bots/{own.bot}/deployments", json=web, headers=studio.auth()
    )
    assert response.status_code == 422 and "takes no options" in response.json()["error"]
    assert await deployments(studio, own.bot) == []
