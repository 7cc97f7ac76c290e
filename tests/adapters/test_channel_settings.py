"""Slack's and Telegram's settings are sections of their own, read as the service's are: what
was given by name, else the environment, else `.env` (never `.env` over the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack.settings import SlackSettings
from adapters.telegram.settings import TelegramSettings
from studio.settings import Settings


def test_the_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("STUDIO_TELEGRAM_OPEN_SIGNUP=true\nSTUDIO_SLACK_OWNERS=UOLD\n")
    monkeypatch.setenv("STUDIO_TELEGRAM_OPEN_SIGNUP", "false")
    monkeypatch.setenv("STUDIO_SLACK_OWNERS", "UENV")
    settings = Settings()
    assert settings.section(TelegramSettings).telegram_open_signup is False
    assert settings.section(SlackSettings).owner_ids == ["UENV"]
    monkeypatch.delenv("STUDIO_SLACK_OWNERS")
    assert Settings().section(SlackSettings).owner_ids == ["UOLD"]  # .env, when nothing else


def test_given_by_name_beats_dotenv_and_no_env_file_reads_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STUDIO_TELEGRAM_OPEN_SIGNUP", raising=False)
    (tmp_path / ".env").write_text(
        "STUDIO_TELEGRAM_OPEN_SIGNUP=true\nSLACK_BOT_TOKEN=xoxb-dev\nSLACK_SIGNING_SECRET=dev\n"
    )
    given = Settings(telegram_open_signup=False)  # type: ignore[call-arg]
    assert given.section(TelegramSettings).telegram_open_signup is False
    assert Settings().section(SlackSettings).missing == ()
    ignoring = Settings(_env_file=None)  # type: ignore[call-arg]
    assert ignoring.section(SlackSettings).missing == ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
