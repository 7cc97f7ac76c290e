"""The channels this service has, in the order the Studio lists them. A channel is a folder
under `adapters/` with a `ChannelPlugin` (see `adapters.plugin`) and one entry here."""

from __future__ import annotations

from adapters.messenger.plugin import PLUGIN as messenger
from adapters.plugin import ChannelPlugin
from adapters.slack.plugin import PLUGIN as slack
from adapters.telegram.plugin import BOTS as telegram
from adapters.telegram.plugin import STUDIO as telegram_studio
from adapters.web.plugin import PLUGIN as web
from adapters.whatsapp.plugin import PLUGIN as whatsapp

CHANNELS: tuple[ChannelPlugin, ...] = (web, slack, telegram, telegram_studio, whatsapp, messenger)
