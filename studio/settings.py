"""Settings from the environment or `.env`, named as in SPEC §2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


def env_alias(name: str) -> AliasChoices:
    """A setting read from the variable `name`, and given by it, upper or lower case."""
    return AliasChoices(name, name.lower())


_env = env_alias


_Section = TypeVar("_Section", bound=BaseSettings)

# The databases the service runs on (storage: SQLite alone, PostgreSQL for several workers).
DATABASES = ("sqlite+aiosqlite", "postgresql+asyncpg")


def _is_http_url(value: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class Settings(BaseSettings):
    """The service's own settings; a channel plugin's are a section of their own
    (`section`), read from the same environment and `.env`."""

    # "allow": a channel's setting given here by name (tests, `load_settings(**overrides)`)
    # reaches its section.
    model_config = SettingsConfigDict(env_file=".env", extra="allow", populate_by_name=True)

    # unset: SQLite at `data_dir / "studio.db"`, beside the other embedded stores
    database_url: str = Field("", validation_alias=_env("STUDIO_DATABASE_URL"))
    qdrant_url: str | None = Field(None, validation_alias=_env("STUDIO_QDRANT_URL"))
    default_model: str = Field("offline", validation_alias=_env("STUDIO_DEFAULT_MODEL"))
    builder_model: str | None = Field(None, validation_alias=_env("STUDIO_BUILDER_MODEL"))
    judge_model: str | None = Field(None, validation_alias=_env("STUDIO_JUDGE_MODEL"))
    # litellm models for voice notes in (transcription) and voice answers out (speech)
    stt_model: str | None = Field(None, validation_alias=_env("STUDIO_STT_MODEL"))
    tts_model: str | None = Field(None, validation_alias=_env("STUDIO_TTS_MODEL"))
    llm_api_base: str | None = Field(None, validation_alias=_env("STUDIO_LLM_API_BASE"))
    llm_timeout_s: float = Field(30.0, gt=0, validation_alias=_env("STUDIO_LLM_TIMEOUT_S"))
    llm_deadline_s: float = Field(60.0, gt=0, validation_alias=_env("STUDIO_LLM_DEADLINE_S"))
    public_url: str | None = Field(None, validation_alias=_env("STUDIO_PUBLIC_URL"))
    embedding_model: str | None = Field(None, validation_alias=_env("STUDIO_EMBEDDING_MODEL"))
    allow_private_urls: bool = Field(False, validation_alias=_env("STUDIO_ALLOW_PRIVATE_URLS"))
    secret_key: str | None = Field(None, validation_alias=_env("STUDIO_SECRET_KEY"))
    data_dir: Path = Field(Path("./data"), validation_alias=_env("STUDIO_DATA_DIR"))
    web_rate_per_session: float = Field(
        30, gt=0, validation_alias=_env("STUDIO_WEB_RATE_PER_SESSION")
    )
    web_rate_per_address: float = Field(
        300, gt=0, validation_alias=_env("STUDIO_WEB_RATE_PER_ADDRESS")
    )
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("STUDIO_LOG_FORMAT"))
    # OpenTelemetry's own name: turns are exported as spans there (OTLP over HTTP) when set.
    otel_endpoint: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT"))

    _given: dict[str, Any] = PrivateAttr(default_factory=dict)
    _env_file: Any = PrivateAttr(default=".env")  # as `model_config` says, unless given

    if not TYPE_CHECKING:  # pydantic's own signature stays the one type checkers see

        def __init__(self, **values: Any) -> None:
            super().__init__(**values)
            # What a plugin's section takes from here (`section`): what was given by name (not
            # the `.env` keys `extra` also keeps, which must not outrank the environment), and
            # which `.env` file to read (None: none, as the tests ask).
            self._given = {name: value for name, value in values.items() if name[0] != "_"}
            self._env_file = values.get("_env_file", self.model_config.get("env_file"))

    def section(self, kind: type[_Section]) -> _Section:
        """A plugin's settings, read as the service's are: what was given here by name, else
        the environment, else `.env`, else the section's default."""
        return kind(_env_file=self._env_file, **self._given)

    @field_validator("database_url")
    @classmethod
    def _a_database(cls, value: str) -> str:
        """A URL of a database the service runs on (a typo would otherwise surface as a
        traceback at start, or as "STUDIO_SECRET_KEY is required")."""
        if not value:
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            driver = make_url(value).drivername
        except (ArgumentError, ValueError):
            driver = ""
        if driver not in DATABASES:
            raise ValueError(
                "expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DB"
            )
        return value

    @field_validator("qdrant_url")
    @classmethod
    def _a_qdrant(cls, value: str | None) -> str | None:
        """A server's URL or `:memory:` (anything else was taken as a folder to create)."""
        if not value:
            return None  # unset, or set empty: the embedded store
        if value == ":memory:" or _is_http_url(value):
            return value
        raise ValueError("expected http://HOST:6333 (a Qdrant server) or :memory:")

    @field_validator("public_url", "llm_api_base", "otel_endpoint")
    @classmethod
    def _an_http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if _is_http_url(value):
            return value
        raise ValueError("expected an http:// or https:// URL")

    @model_validator(mode="after")
    def _database_in_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'studio.db'}"
        return self

    @property
    def effective_judge_model(self) -> str | None:
        return self.judge_model or self.builder_model

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def describe_invalid(exc: ValidationError) -> str:
    """One line naming each bad variable, its value and what it should be."""
    by_alias: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            upper = str(alias.choices[0])
            by_alias.update({name: upper, upper: upper, upper.lower(): upper})
    problems: list[str] = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "settings"
        variable = by_alias.get(where, where)
        value = error.get("input")
        # (a database URL may carry its password)
        secret = any(word in variable for word in ("TOKEN", "SECRET", "KEY", "DATABASE_URL"))
        short = isinstance(value, str | int | float) and len(str(value)) < 80
        shown = f"={value}" if short and not secret else ""
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}{shown}: {message}")
    return "invalid setting " + "; ".join(problems)
