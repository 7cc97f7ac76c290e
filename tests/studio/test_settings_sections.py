"""A channel plugin's settings are a section of their own, read from the same environment and
`.env` as the service's, or given to the service's settings by name (as tests do)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from studio.settings import Settings, env_alias


class FaxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)
    api_url: str = Field(
        "https://fax.example/api", validation_alias=env_alias("STUDIO_FAX_API_URL")
    )


def test_a_section_reads_the_environment_or_takes_its_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    assert Settings().section(FaxSettings).api_url == "https://fax.example/api"
    monkeypatch.setenv("STUDIO_FAX_API_URL", "http://127.0.0.1:9/fax")
    assert Settings().section(FaxSettings).api_url == "http://127.0.0.1:9/fax"


def test_a_section_takes_what_the_service_settings_were_given_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STUDIO_FAX_API_URL", "http://127.0.0.1:9/from-env")
    given = Settings(studio_fax_api_url="http://127.0.0.1:9/given")  # type: ignore[call-arg]
    assert given.section(FaxSettings).api_url == "http://127.0.0.1:9/given"


def test_a_section_reads_the_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STUDIO_FAX_API_URL", raising=False)
    (tmp_path / ".env").write_text("STUDIO_FAX_API_URL=http://127.0.0.1:9/dotenv\n")
    assert Settings().section(FaxSettings).api_url == "http://127.0.0.1:9/dotenv"
