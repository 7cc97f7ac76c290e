"""A channel on Meta's Graph API as a channel plugin: always on (each deployment brings its own
target, access token and app secret), its webhook (`adapters.meta.webhook`) taking a body as
large as Meta sends, and one setting, its Graph API URL (another Graph API: a local fake)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.meta.accounts import MetaDeployments
from adapters.meta.graph import GRAPH_API_URL, checked_api_url
from adapters.meta.webhook import WEBHOOK_MAX_BYTES, webhook_router
from adapters.plugin import ChannelParts, PluginContext
from runtime.channel import DeployableChannel

if TYPE_CHECKING:
    from fastapi import APIRouter

    from runtime.cipher import Cipher
    from runtime.runtime import Runtime
    from runtime.team_front import TeamFront
    from studio.settings import Settings


class _Channel(DeployableChannel, Protocol):
    """What the plugin does with its channel beyond deploying bots to it."""

    deployments: MetaDeployments

    async def close(self) -> None: ...


class ChannelClass(Protocol):
    """A Meta channel's class (a subclass of `adapters.meta.channel.MetaChannel`)."""

    def __call__(
        self, *, runtime: Runtime, cipher: Cipher, api_url: str, public_url: str | None
    ) -> _Channel: ...


class GraphSettings(BaseSettings):
    """A Meta plugin's section of the settings: a subclass names the variable its `api_url` is
    read from (`Field(GRAPH_API_URL, validation_alias=env_alias(…))`)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    api_url: str = GRAPH_API_URL

    @field_validator("api_url")
    @classmethod
    def _http(cls, value: str) -> str:
        return checked_api_url(value)


class MetaPlugin:
    """The plugin of the Meta channel `kind`. `channel` gives its class, imported only when the
    plugin is built, so that the plugin module stays cheap to import."""

    deployable = True
    front: TeamFront | None = None

    def __init__(
        self,
        *,
        kind: str,
        title: str,
        settings: type[GraphSettings],
        channel: Callable[[], ChannelClass],
    ) -> None:
        self.kind = kind
        self.title = title
        self.settings = settings
        self.channel = channel
        self.body_limits: tuple[tuple[str, int], ...] = ((rf"/{kind}/[^/]+", WEBHOOK_MAX_BYTES),)

    def missing(self, settings: Settings) -> tuple[str, ...]:
        return ()

    def build(self, ctx: PluginContext) -> ChannelParts:
        section = ctx.settings.section(self.settings)
        channel = self.channel()(
            runtime=ctx.runtime,
            cipher=ctx.cipher,
            api_url=section.api_url,
            public_url=ctx.settings.public_url,
        )
        channel.deployments.on_broken = ctx.studio.deployment_broken
        return ChannelParts(adapter=channel, deployable=channel, close=channel.close)

    def routes(self) -> APIRouter | None:
        return webhook_router(self.kind)
