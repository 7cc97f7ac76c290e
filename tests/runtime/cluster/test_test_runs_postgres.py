"""Two `serve` workers on one PostgreSQL: a bot's Studio test run is one run whichever worker
is asked for it, and who asked on the other worker hears how it ended."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.runtime.cluster.conftest import two_workers

pytestmark = pytest.mark.postgres


@pytest.fixture
async def workers(
    tmp_path: Path, postgres_url: str, llm: FakeLLM
) -> AsyncIterator[tuple[Service, Service]]:
    async with two_workers(tmp_path, postgres_url, llm_api_base=llm.base_url) as (a, b):
        await a.reply("/newbot faq-bot")
        await a.reply("/set faq-bot model openai/fake-model")
        await a.reply('/test faq-bot add "hi" expect contains "answer"')
        await a.reply("/bots", user="ada")
        await a.reply("/role ada admin")
        yield a, b


async def drain(*workers: Service, grace_s: float | None = None) -> None:
    for worker in workers:
        await worker.app.state.core.studio.drain(grace_s=grace_s)


async def test_a_promotion_asked_on_another_worker_joins_the_run(
    workers: tuple[Service, Service], llm: FakeLLM
) -> None:
    a, b = workers
    llm.stall(1.5, text="The answer.")  # the run lasts while ada asks
    assert "Running 1 test(s)" in await a.reply("/test faq-bot")
    joined = await b.reply("/promote faq-bot", user="ada")
    assert "already running" in joined and "promote it if they pass" in joined
    assert "already running" in await b.reply("/test faq-bot")  # joins the same watch
    await drain(a, b)
    assert len(llm.calls) == 1  # one run
    *_, report, promoted = await b.notices(user="ada")
    assert "1 passed" in report and "Froze the draft of *faq-bot* into v1" in promoted
    owner = await a.notices()
    assert sum("1 passed" in t for t in owner) == 2  # asked on each worker: told by each once
    bot = await b.call("GET", "/api/v1/bots/faq-bot")
    assert bot["environments"] == {"staging": 1}


async def test_a_run_that_stops_on_its_worker_is_reported_on_the_other(
    workers: tuple[Service, Service], llm: FakeLLM
) -> None:
    a, b = workers
    llm.stall(5.0, text="The answer.")
    await a.reply("/test faq-bot")
    assert "already running" in await b.reply("/promote faq-bot", user="ada")
    await drain(a, grace_s=0.2)  # as at a's shutdown: its run is marked failed
    await drain(b)
    *_, ended, refused = await b.notices(user="ada")
    assert "did not finish: interrupted" in ended
    assert "did not promote faq-bot" in refused
    llm.reset()
    llm.reply("The answer.")
    assert "Running 1 test(s)" in await b.reply("/test faq-bot")  # nothing left running
    await drain(b)
