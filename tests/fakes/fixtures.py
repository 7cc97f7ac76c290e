"""pytest fixtures for the platform fakes (a plugin module, loaded by `pytest_plugins` in conftest).

Each fake runs in its own thread and event loop, so one server serves the whole session and any
test's event loop; the function-scoped fixtures hand it over reset.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.llm import FakeLLM


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    """The session's fake OpenAI-compatible server (started on first use)."""
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm: FakeLLM) -> FakeLLM:
    """The session's fake LLM, with no calls recorded and nothing scripted."""
    fake_llm.reset()
    return fake_llm
