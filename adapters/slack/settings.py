"""Slack's section of the settings (`Settings.section`), under Slack's own variable names."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from studio.settings import env_alias


class SlackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    slack_bot_token: str | None = Field(None, validation_alias=env_alias("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(
        None, validation_alias=env_alias("SLACK_SIGNING_SECRET")
    )
    # Slack user ids who own the workspace's team; unset: the first user to talk to the Studio
    slack_owners: str | None = Field(None, validation_alias=env_alias("STUDIO_SLACK_OWNERS"))
    slack_api_url: str = Field(
        "https://slack.com/api/", validation_alias=env_alias("STUDIO_SLACK_API_URL")
    )

    @property
    def missing(self) -> tuple[str, ...]:
        """The settings Slack still needs to be on (both credentials)."""
        given = (
            ("SLACK_BOT_TOKEN", self.slack_bot_token),
            ("SLACK_SIGNING_SECRET", self.slack_signing_secret),
        )
        return tuple(name for name, value in given if not value)

    @property
    def owner_ids(self) -> list[str]:
        return [o.strip() for o in (self.slack_owners or "").split(",") if o.strip()]
