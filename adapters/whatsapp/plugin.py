"""WhatsApp as a channel plugin: always on (each deployment brings its own phone number, token
and app secret); `STUDIO_WHATSAPP_API_URL` points it at another Graph API (a local fake)."""

from __future__ import annotations

from pydantic import Field

from adapters.meta.graph import GRAPH_API_URL
from adapters.meta.plugin import ChannelClass, GraphSettings, MetaPlugin
from studio.settings import env_alias


class WhatsAppSettings(GraphSettings):
    """The WhatsApp plugin's section of the settings."""

    api_url: str = Field(GRAPH_API_URL, validation_alias=env_alias("STUDIO_WHATSAPP_API_URL"))


def _channel() -> ChannelClass:
    from adapters.whatsapp.channel import WhatsAppChannel

    return WhatsAppChannel


PLUGIN = MetaPlugin(kind="whatsapp", title="WhatsApp", settings=WhatsAppSettings, channel=_channel)
