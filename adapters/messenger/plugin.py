"""Messenger as a channel plugin: always on (each deployment brings its own Page, Page access
token and app secret); `STUDIO_MESSENGER_API_URL` points it at another Graph API (a local
fake)."""

from __future__ import annotations

from pydantic import Field

from adapters.meta.graph import GRAPH_API_URL
from adapters.meta.plugin import ChannelClass, GraphSettings, MetaPlugin
from studio.settings import env_alias


class MessengerSettings(GraphSettings):
    """The Messenger plugin's section of the settings."""

    api_url: str = Field(GRAPH_API_URL, validation_alias=env_alias("STUDIO_MESSENGER_API_URL"))


def _channel() -> ChannelClass:
    from adapters.messenger.channel import MessengerChannel

    return MessengerChannel


PLUGIN = MetaPlugin(
    kind="messenger", title="Messenger", settings=MessengerSettings, channel=_channel
)
