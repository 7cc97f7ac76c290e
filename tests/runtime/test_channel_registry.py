"""`ChannelRegistry`: the channels bots are deployed to, on or off, and how each reads what a
deployment was given (`plan`)."""

from __future__ import annotations

import pytest

from adapters.web.channel import WebChannel
from runtime.channel import ChannelOffError, ChannelRegistry, DeployInputError, UnknownChannelError

TOKEN = "123456789:AAE" + "x" * 32


def test_offered_channels_keep_their_order_and_say_what_turns_them_on() -> None:
    channels = ChannelRegistry()
    web = WebChannel("https://studio.example/")
    channels.offer(web)
    channels.offer_off("slack", "Slack", missing=("SLACK_BOT_TOKEN",))
    assert channels.offered() == ("web", "slack")
    assert channels.deployable("web") is web and channels.get("web") is web
    with pytest.raises(ChannelOffError) as off:
        channels.deployable("slack")
    assert (off.value.offer.title, off.value.offer.missing) == ("Slack", ("SLACK_BOT_TOKEN",))
    assert not channels.has("slack")  # nothing to send with
    with pytest.raises(UnknownChannelError):
        channels.deployable("fax")
    assert (channels.title("slack"), channels.title("fax")) == ("Slack", "fax")


def test_the_web_takes_nothing_and_links_to_its_page() -> None:
    web = WebChannel("https://studio.example/")
    assert web.plan(target=None, secrets={}, options={}).target is None
    for target, secrets in (("#general", {}), (None, {"token": TOKEN})):
        with pytest.raises(DeployInputError, match="a web deployment takes no target or token"):
            web.plan(target=target, secrets=secrets, options={})
    assert web.link("d1", None) == "https://studio.example/chat/d1"


def test_telegram_reads_its_bot_from_the_token_and_serves_one_deployment_per_bot() -> None:
    from adapters.telegram.bots import TelegramBots

    telegram = TelegramBots.__new__(TelegramBots)  # `plan` reads only what it is given
    plan = telegram.plan(target=None, secrets={"token": f" {TOKEN} "}, options={})
    assert (plan.target, plan.credentials) == ("123456789", TOKEN)
    assert plan.exclusive is not None and "@BotFather" in plan.exclusive
    for secrets in ({}, {"token": "not-a-token"}):
        with pytest.raises(DeployInputError, match="token from @BotFather"):
            telegram.plan(target=None, secrets=secrets, options={})


def test_slack_needs_its_channel_and_no_token() -> None:
    from adapters.slack.channel import SlackChannel

    slack = SlackChannel.__new__(SlackChannel)  # `plan` reads only what it is given
    assert slack.plan(target="C0001", secrets={}, options={}).target == "C0001"
    with pytest.raises(DeployInputError, match="name the Slack channel"):
        slack.plan(target=None, secrets={}, options={})
    with pytest.raises(DeployInputError, match="takes no token"):
        slack.plan(target="C0001", secrets={"token": "xoxb-1"}, options={})
    assert slack.link("d1", "https://slack.example/archives/C0001") == (
        "https://slack.example/archives/C0001"
    )
