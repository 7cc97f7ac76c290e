"""pytest fixtures for the platform fakes (a plugin module, loaded by `pytest_plugins` in conftest).

Each fake runs in its own thread and event loop, so one server serves the whole session and any
test's event loop; the function-scoped fixtures hand it over reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.fakes.llm import FakeLLM
from tests.fakes.meta import FakeMeta
from tests.fakes.openapi import FakeOpenApi
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

if TYPE_CHECKING:
    from tests.fakes.mcp import FakeMcp
    from tests.fakes.otlp import FakeOtlp


@pytest.fixture(scope="session")
def fake_llm(litellm_imported: None) -> Iterator[FakeLLM]:
    """The session's fake OpenAI-compatible server (started on first use). Its callers reach it
    through litellm, whose import (seconds; tens on a loaded machine without bytecode) is paid
    here, in setup, not inside a test waiting for an answer."""
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm: FakeLLM) -> FakeLLM:
    """The session's fake LLM, with no calls recorded and nothing scripted."""
    fake_llm.reset()
    return fake_llm


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    """The session's fake Slack Web API (started on first use)."""
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def slack(fake_slack: FakeSlack) -> FakeSlack:
    """The session's fake Slack, with no calls, scripts, channels, users or files."""
    fake_slack.reset()
    return fake_slack


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegram]:
    """The session's fake Telegram Bot API (started on first use). Its callers reach it through
    aiogram and python-telegram-bot, whose imports (seconds; over ten on a loaded machine
    without bytecode) are paid here, in setup, not inside a test waiting for an answer."""
    from adapters.telegram.bots import _import_aiogram
    from adapters.telegram.studio import _import_ptb

    _import_aiogram()
    _import_ptb()
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def telegram(fake_telegram: FakeTelegram) -> FakeTelegram:
    """The session's fake Telegram, with no calls, scripts, bots, webhooks, updates or files."""
    fake_telegram.reset()
    return fake_telegram


@pytest.fixture(scope="session")
def fake_meta() -> Iterator[FakeMeta]:
    """The session's fake Meta Graph API: WhatsApp Cloud API and Messenger (started on first
    use)."""
    server = FakeMeta().start()
    yield server
    server.stop()


@pytest.fixture
def meta(fake_meta: FakeMeta) -> FakeMeta:
    """The session's fake Meta, with no calls, scripts, tokens, numbers, Pages, templates,
    windows, messages or media, and its clock back to now."""
    fake_meta.reset()
    return fake_meta


@pytest.fixture(scope="session")
def fake_openapi() -> Iterator[FakeOpenApi]:
    """The session's fake HTTP service described by OpenAPI (started on first use)."""
    server = FakeOpenApi().start()
    yield server
    server.stop()


@pytest.fixture
def openapi(fake_openapi: FakeOpenApi) -> FakeOpenApi:
    """The session's fake OpenAPI service, with no requests recorded and its defaults back."""
    fake_openapi.reset()
    return fake_openapi


@pytest.fixture(scope="session")
def fake_mcp() -> Iterator[FakeMcp]:
    """The session's fake MCP server (started on first use; the SDK's import, ~3 s, only then)."""
    from tests.fakes.mcp import FakeMcp

    server = FakeMcp().start()
    yield server
    server.stop()


@pytest.fixture
def mcp_server(fake_mcp: FakeMcp) -> FakeMcp:
    """The session's fake MCP server, with no requests or calls recorded and its defaults."""
    fake_mcp.reset()
    return fake_mcp


@pytest.fixture(scope="session")
def litellm_imported() -> None:
    """Pay litellm's import (~3 s) once, in setup, rather than inside the first test that calls
    a model (`fake_llm` asks for it; elsewhere `pytestmark = pytest.mark.usefixtures(...)`)."""
    from runtime.llm import import_litellm

    import_litellm()


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's keys must not change what is sent (or let a call leave the machine)."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_API_BASE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def fake_otlp() -> Iterator[FakeOtlp]:
    """The session's fake OpenTelemetry collector (started on first use)."""
    from tests.fakes.otlp import FakeOtlp

    server = FakeOtlp().start()
    yield server
    server.stop()


@pytest.fixture
def otlp(fake_otlp: FakeOtlp) -> FakeOtlp:
    """The session's fake collector, with no spans received."""
    fake_otlp.reset()
    return fake_otlp
