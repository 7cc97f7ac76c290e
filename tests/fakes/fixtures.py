"""pytest fixtures for the platform fakes (loaded through `pytest_plugins` in conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.llm import FakeLLM


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The session's fake LLM, with no calls recorded and nothing scripted."""
    fake_llm_server.reset()
    return fake_llm_server
