"""The web channel as a plugin: always on; its chat routes belong to the web app itself
(`adapters.web.app`), which also serves the REST API and the console."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.plugin import ChannelParts, PluginContext

if TYPE_CHECKING:
    from fastapi import APIRouter

    from runtime.team_front import TeamFront
    from studio.settings import Settings


class WebPlugin:
    kind = "web"
    title = "the web chat"
    deployable = True
    front: TeamFront | None = None
    body_limits: tuple[tuple[str, int], ...] = ()

    def missing(self, settings: Settings) -> tuple[str, ...]:
        return ()

    def build(self, ctx: PluginContext) -> ChannelParts:
        from adapters.web.channel import WebChannel

        channel = WebChannel(ctx.settings.public_url)
        return ChannelParts(adapter=channel, deployable=channel)

    def routes(self) -> APIRouter | None:
        return None


PLUGIN = WebPlugin()
