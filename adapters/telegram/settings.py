"""Telegram's section of the settings (`Settings.section`), for generated bots and the Studio's
own bot."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from studio.settings import env_alias


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # the Studio's own bot; unset: the Studio is not on Telegram (generated bots still are)
    telegram_builder_token: str | None = Field(
        None, validation_alias=env_alias("TELEGRAM_BUILDER_TOKEN")
    )
    # true: /start gives any Telegram user a personal team; false: users join with /join CODE
    telegram_open_signup: bool = Field(
        False, validation_alias=env_alias("STUDIO_TELEGRAM_OPEN_SIGNUP")
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org", validation_alias=env_alias("STUDIO_TELEGRAM_API_URL")
    )
