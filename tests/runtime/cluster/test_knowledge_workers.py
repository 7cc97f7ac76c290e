"""Knowledge with several workers: a bot's knowledge is changed by one worker at a time, and
what one worker stores in the Qdrant server another finds. No Qdrant server can be installed on
the machines these tests run on, so that test runs only when one is given
(`STUDIO_TEST_QDRANT_URL`, e.g. `http://127.0.0.1:6333`) and is skipped, with that reason,
otherwise (the embedded store belongs to one process)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from tests.people import bot_id
from tests.runtime.cluster.conftest import two_workers
from tests.scenarios.test_knowledge_flow import ask, go_live, upload

pytestmark = pytest.mark.postgres


@pytest.fixture
def qdrant_url() -> str:
    url = os.environ.get("STUDIO_TEST_QDRANT_URL")
    if not url:
        pytest.skip(
            "STUDIO_TEST_QDRANT_URL is not set: knowledge across workers needs a Qdrant server"
        )
    return url


async def test_what_one_worker_learns_the_other_answers_from(
    tmp_path: Path, postgres_url: str, qdrant_url: str
) -> None:
    code = uuid.uuid4().hex[:8]  # the server may keep earlier runs' collections
    document = (
        f"Returns are accepted within 30 days of delivery. The return code is RET-{code}: "
        "write it on the parcel."
    ).encode()
    async with two_workers(tmp_path, postgres_url, qdrant_url=qdrant_url) as (a, b):
        await a.import_bot("faq-bot")
        added = await upload(a, "returns.txt", document)
        assert added.status_code == 201, added.text
        deployment = await go_live(a)
        assert f"RET-{code}" in await ask(b, deployment, "What is the return code for a parcel?")
        await a.call("DELETE", "/api/v1/bots/faq-bot")  # its collection goes with it


async def test_a_bots_knowledge_is_changed_by_one_worker_at_a_time(
    tmp_path: Path, postgres_url: str
) -> None:
    async with two_workers(tmp_path, postgres_url) as (a, b):
        await a.import_bot("faq-bot")
        bot = await bot_id(a, "faq-bot")
        adding = a.app.state.core.studio.knowledge
        sweeping = b.app.state.core.studio.knowledge
        assert await sweeping.collect(bot) == 0  # (its store opened: a sweep takes no time)
        async with adding._lock(bot):  # an ingest under way on a
            sweep = asyncio.create_task(sweeping.collect(bot))
            await asyncio.sleep(0.3)
            assert not sweep.done()  # b's sweep waits: the vectors are not orphans yet
        assert await asyncio.wait_for(sweep, 5) == 0
