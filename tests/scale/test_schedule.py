"""A schedule fires once however many workers run the scheduler (issue 21). It was planned as
the session's scale tests started (`tests/scale/conftest.py`); by now the other modules have
run on it, killed workers and the leader, so it fires after a takeover as often as not."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.scale.cluster import Cluster
from tests.scale.schedule import TICK, Planned

pytestmark = pytest.mark.postgres

FIRE_LATE_S = 40  # the occurrence may be sent this late (a leader's refresh, a loaded machine)
TWICE_WINDOW_S = 5  # a second sending of the occurrence would come within this


async def test_a_schedule_fires_once_with_several_workers(
    cluster: Cluster, planned: Planned
) -> None:
    """The occurrence planned as the session started reaches its chat once, from one worker."""
    deadline = planned.fire + timedelta(seconds=FIRE_LATE_S)

    def ticks() -> list[tuple[int | None, float]]:
        return [
            (s.worker, s.at)
            for s in cluster.sent(planned.bot)
            if s.chat == planned.chat and s.text == TICK
        ]

    while True:  # the fake is polled: it runs in another thread
        if ticks() or datetime.now(UTC) > deadline:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(TWICE_WINDOW_S)
    sent = ticks()
    running = [worker.index for worker in cluster.alive]
    assert len(sent) == 1, (
        f"the occurrence of {planned.fire:%H:%M} UTC was sent {len(sent)} times by workers "
        f"{[w for w, _ in sent]} (waited until {FIRE_LATE_S} s after it, then "
        f"{TWICE_WINDOW_S} s more; workers running now: {running})"
    )
    live = await asyncio.to_thread(
        cluster.call, "GET", "/api/v1/bots/sched-bot/schedules", worker=running[0]
    )
    runs = [s["last_run"] for s in live["live"] if s["env"] == "production"]
    assert runs and runs[0] is not None and runs[0]["sent"] == 1, live
