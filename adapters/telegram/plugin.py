"""Telegram as two plugins: generated bots (each with its own BotFather token, always on) and
the Studio's own bot (on when `TELEGRAM_BUILDER_TOKEN` is set)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.plugin import ChannelParts, PluginContext
from adapters.telegram.front import FRONT
from adapters.telegram.settings import TelegramSettings
from studio.address import TELEGRAM_STUDIO

if TYPE_CHECKING:
    from fastapi import APIRouter

    from runtime.team_front import TeamFront
    from studio.settings import Settings


class TelegramBotsPlugin:
    kind = "telegram"
    title = "Telegram"
    deployable = True
    front: TeamFront | None = None  # the Studio's own bot is the front (below)
    body_limits: tuple[tuple[str, int], ...] = ()

    def missing(self, settings: Settings) -> tuple[str, ...]:
        return ()

    def build(self, ctx: PluginContext) -> ChannelParts:
        from adapters.telegram.bots import TelegramBots

        telegram = TelegramBots(
            runtime=ctx.runtime,
            cipher=ctx.cipher,
            api_url=ctx.settings.section(TelegramSettings).telegram_api_url,
            public_url=ctx.settings.public_url,
        )
        telegram.on_revoked = ctx.studio.deployment_broken
        return ChannelParts(
            adapter=telegram,
            deployable=telegram,
            close=telegram.close,
            warm=telegram.warm,
            lead=telegram.lead if telegram.polling else None,
        )

    def routes(self) -> APIRouter | None:
        from adapters.telegram.bots import router

        return router()


class TelegramStudioPlugin:
    kind = TELEGRAM_STUDIO
    title = "the Studio's Telegram bot"
    deployable = False
    front: TeamFront | None = FRONT
    body_limits: tuple[tuple[str, int], ...] = ()

    def missing(self, settings: Settings) -> tuple[str, ...]:
        token = settings.section(TelegramSettings).telegram_builder_token
        return () if token else ("TELEGRAM_BUILDER_TOKEN",)

    def build(self, ctx: PluginContext) -> ChannelParts:
        from adapters.telegram.studio import TelegramStudio
        from adapters.telegram.tokens import TOKEN_PREFIX, UnaskedTokens

        settings = ctx.settings.section(TelegramSettings)
        assert settings.telegram_builder_token
        studio_bot = TelegramStudio(
            token=settings.telegram_builder_token,
            api_url=settings.telegram_api_url,
            public_url=ctx.settings.public_url,
            open_signup=settings.telegram_open_signup,
            runtime=ctx.runtime,
            members=ctx.studio.members,
            cipher=ctx.cipher,
        )
        ctx.studio.deploy_offers[TelegramBotsPlugin.kind] = studio_bot.new_bot_offer
        ctx.studio.on_action[TOKEN_PREFIX] = UnaskedTokens(ctx.studio.ops)

        async def start() -> None:
            studio_bot.start()  # in the background: /healthz never waits on it

        return ChannelParts(
            adapter=studio_bot,
            fronts=(studio_bot,),
            rooms=studio_bot.rooms,
            start=start,
            stop=studio_bot.stop,
            close=studio_bot.close,
            lead=studio_bot.poll if studio_bot.public_url is None else None,
        )

    def routes(self) -> APIRouter | None:
        from adapters.telegram.studio import router

        return router()


BOTS = TelegramBotsPlugin()
STUDIO = TelegramStudioPlugin()
