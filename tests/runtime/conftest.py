"""Fixtures for the runtime tests that reach the fake LLM through the real litellm."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.llm import import_litellm


@pytest.fixture(scope="module")
def litellm_imported() -> Iterator[None]:
    """Pay litellm's import (~3 s) once per module, in setup, rather than inside a test."""
    import_litellm()
    yield


@pytest.fixture
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's keys must not change what is sent (or let a call leave the machine)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
