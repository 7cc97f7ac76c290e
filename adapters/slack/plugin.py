"""Slack as a plugin: one Slack app hosts the Studio and every bot deployed to Slack; on when
`SLACK_BOT_TOKEN` and `SLACK_SIGNING_SECRET` are set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.plugin import ChannelParts, PluginContext
from adapters.slack.front import FRONT
from adapters.slack.settings import SlackSettings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from runtime.team_front import TeamFront
    from studio.settings import Settings


class SlackPlugin:
    kind = "slack"
    title = "Slack"
    deployable = True
    front: TeamFront | None = FRONT
    body_limits: tuple[tuple[str, int], ...] = ()

    def missing(self, settings: Settings) -> tuple[str, ...]:
        return settings.section(SlackSettings).missing

    def build(self, ctx: PluginContext) -> ChannelParts:
        from adapters.slack.app import SlackAdapter

        settings = ctx.settings.section(SlackSettings)
        assert settings.slack_bot_token and settings.slack_signing_secret
        slack = SlackAdapter(
            token=settings.slack_bot_token,
            signing_secret=settings.slack_signing_secret,
            api_url=settings.slack_api_url,
            owners=settings.owner_ids,
            runtime=ctx.runtime,
            members=ctx.studio.members,
            cipher=ctx.cipher,
        )
        return ChannelParts(
            adapter=slack,
            deployable=slack.channel,
            rooms=slack.rooms,
            stop=slack.finish,
            close=slack.close,
        )

    def routes(self) -> APIRouter | None:
        from adapters.slack.app import router

        return router()


PLUGIN = SlackPlugin()
