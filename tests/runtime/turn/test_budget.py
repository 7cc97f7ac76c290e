"""The budget step in a chain before a recording endpoint, on a real (SQLite) database, with the
clocks in the test's hands."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from runtime.pipeline import TurnContext, TurnMode, TurnOutput, Usage
from runtime.turn.budget import (
    OVER_BUDGET_REPLY,
    REFRESH_S,
    TOO_FAST_REPLY,
    BudgetStep,
    month_of,
    month_start,
)
from runtime.turn.chain import Handler, build_chain
from storage import budget as budget_store
from storage.database import Database
from storage.tables import utcnow
from tests.runtime.turn.steps import Endpoint, context, spec
from tests.storage.spend import spend, team_and_bot


@dataclass
class Clock:
    """The wall clock starts at the real now (what stored messages are dated with)."""

    now: datetime = field(default_factory=utcnow)
    seconds: float = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.seconds += seconds


@dataclass
class Notifier:
    told: list[tuple[int, int, float, float]] = field(default_factory=list)
    fails: bool = False

    async def budget_reached(
        self, *, bot_id: int, percent: int, spent: float, budget: float
    ) -> None:
        if self.fails:
            raise RuntimeError("the Studio is down")
        self.told.append((bot_id, percent, round(spent, 6), budget))


@dataclass
class Setup:
    db: Database
    bot_id: int
    clock: Clock
    notifier: Notifier
    endpoint: Endpoint
    step: BudgetStep
    chain: Handler

    @property
    def month(self) -> str:
        return month_of(self.clock.now)

    def ctx(self, mode: TurnMode = "live", user: str = "web:alice", **budget: Any) -> TurnContext:
        return context("hi", spec(budget=budget), mode=mode, bot_id=self.bot_id, user=user)

    async def turn(self, **budget: Any) -> TurnOutput:
        return await self.chain(self.ctx(**budget))

    def restart(self) -> None:
        self.step = BudgetStep(
            db=self.db, notifier=self.notifier, now=self.clock.wall, monotonic=self.clock.monotonic
        )
        self.chain = build_chain([self.step], self.endpoint)


@pytest.fixture
async def setup(db: Database) -> Setup:
    _, bot_id = await team_and_bot(db)
    clock = Clock()
    notifier = Notifier()
    endpoint = Endpoint(cost_usd=0.3)
    step = BudgetStep(db=db, notifier=notifier, now=clock.wall, monotonic=clock.monotonic)
    return Setup(db, bot_id, clock, notifier, endpoint, step, build_chain([step], endpoint))


@pytest.fixture
def queries(db: Database) -> Iterator[list[str]]:
    """The SQL statements the database ran (both engines: reads and the writer)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        if not args[2].startswith("BEGIN"):
            seen.append(args[2])

    engines = [db.engine.sync_engine] + ([db._sync_writer] if db._sync_writer else [])
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    yield seen
    for engine in engines:
        event.remove(engine, "before_cursor_execute", record)


def refused(output: TurnOutput, guard: str, reply: str) -> bool:
    return (output.blocked, output.reply, output.usage, output.error) == (
        guard,
        reply,
        Usage(0, 0, 0.0),
        None,
    )


async def test_a_bot_without_a_budget_is_never_limited(setup: Setup) -> None:
    for _ in range(5):
        assert (await setup.turn()).reply == "ok"
    assert len(setup.endpoint.seen) == 5


@pytest.mark.parametrize("mode", ["try", "test"])
async def test_try_and_tests_are_never_limited(setup: Setup, mode: TurnMode) -> None:
    await spend(setup.db, setup.bot_id, 50.0)
    for _ in range(3):
        ctx = setup.ctx(mode, monthly_usd=1, per_user_per_minute=1)
        assert (await setup.chain(ctx)).reply == "ok"
    assert setup.notifier.told == []


async def test_a_bot_asked_by_another_is_never_limited(setup: Setup) -> None:
    await spend(setup.db, setup.bot_id, 50.0)
    for _ in range(3):
        ctx = setup.ctx(monthly_usd=1, per_user_per_minute=1)
        ctx.depth = 1
        assert (await setup.chain(ctx)).reply == "ok"


async def test_each_end_user_gets_so_many_messages_a_minute(setup: Setup) -> None:
    limit = {"per_user_per_minute": 2}
    assert (await setup.turn(**limit)).reply == "ok"
    setup.clock.advance(30)
    assert (await setup.turn(**limit)).reply == "ok"
    assert refused(await setup.turn(**limit), "rate_limit", TOO_FAST_REPLY)
    assert (await setup.chain(setup.ctx(user="web:bob", **limit))).reply == "ok"
    assert len(setup.endpoint.seen) == 3
    setup.clock.advance(30)  # the first message left the window; refused ones never counted
    assert (await setup.turn(**limit)).reply == "ok"
    assert refused(await setup.turn(**limit), "rate_limit", TOO_FAST_REPLY)
    setup.clock.advance(60)
    assert (await setup.turn(**limit)).reply == "ok"


async def test_over_budget_the_bot_says_so_and_the_owners_hear_at_80_and_100(
    setup: Setup,
) -> None:
    budget = {"monthly_usd": 1.0}
    for _ in range(2):
        assert (await setup.turn(**budget)).reply == "ok"  # $0.30, $0.60
    assert setup.notifier.told == []
    assert (await setup.turn(**budget)).reply == "ok"  # $0.90
    assert setup.notifier.told == [(setup.bot_id, 80, 0.9, 1.0)]
    assert (await setup.turn(**budget)).reply == "ok"  # $1.20
    assert setup.notifier.told[1:] == [(setup.bot_id, 100, 1.2, 1.0)]
    for _ in range(3):
        assert refused(await setup.turn(**budget), "budget", OVER_BUDGET_REPLY)
    assert len(setup.endpoint.seen) == 4 and len(setup.notifier.told) == 2
    async with setup.db.read_conn() as conn:
        assert await budget_store.notices(conn, setup.bot_id, setup.month) == [80, 100]


async def test_passing_both_levels_at_once_tells_only_the_higher(setup: Setup) -> None:
    setup.endpoint.cost_usd = 2.0
    assert (await setup.turn(monthly_usd=1.5)).reply == "ok"
    assert setup.notifier.told == [(setup.bot_id, 100, 2.0, 1.5)]
    setup.endpoint.cost_usd = 0.0
    assert refused(await setup.turn(monthly_usd=1.5), "budget", OVER_BUDGET_REPLY)
    assert len(setup.notifier.told) == 1
    async with setup.db.read_conn() as conn:
        assert await budget_store.notices(conn, setup.bot_id, setup.month) == [80, 100]


async def test_a_restart_reads_the_month_and_never_tells_twice(setup: Setup) -> None:
    await spend(setup.db, setup.bot_id, 0.5, 0.4)  # $0.90 stored this month
    last_month = month_start(setup.clock.now) - timedelta(minutes=1)
    await spend(setup.db, setup.bot_id, 9.0, at=last_month)
    assert (await setup.turn(monthly_usd=1.0)).reply == "ok"  # $1.20
    assert [told[1] for told in setup.notifier.told] == [100]
    setup.restart()
    await spend(setup.db, setup.bot_id, 0.3)  # what the turn cost, as recording stores it
    assert refused(await setup.turn(monthly_usd=1.0), "budget", OVER_BUDGET_REPLY)
    assert len(setup.notifier.told) == 1


async def test_the_spend_is_read_once_then_kept_in_memory(setup: Setup, queries: list[str]) -> None:
    await spend(setup.db, setup.bot_id, 0.2)
    queries.clear()
    for _ in range(5):
        assert (await setup.turn(monthly_usd=100.0)).reply == "ok"
    assert len(queries) == 1 and "sum" in queries[0].lower()
    await spend(setup.db, setup.bot_id, 100.0)  # another worker's turns
    queries.clear()
    assert (await setup.turn(monthly_usd=100.0)).reply == "ok"  # not seen yet: $1.70 + $0.30
    setup.clock.advance(REFRESH_S)
    assert refused(await setup.turn(monthly_usd=100.0), "budget", OVER_BUDGET_REPLY)
    assert len([q for q in queries if "sum" in q.lower()]) == 1


async def test_a_new_month_starts_from_nothing(setup: Setup) -> None:
    await spend(setup.db, setup.bot_id, 5.0)
    assert refused(await setup.turn(monthly_usd=1.0), "budget", OVER_BUDGET_REPLY)
    next_month = month_start(month_start(setup.clock.now) + timedelta(days=32))
    setup.clock.advance((next_month - setup.clock.now).total_seconds() + 60)
    setup.endpoint.cost_usd = 0.9
    assert (await setup.turn(monthly_usd=1.0)).reply == "ok"
    assert [told[1] for told in setup.notifier.told] == [100, 80]


async def test_a_failing_notifier_never_fails_the_turn(setup: Setup) -> None:
    setup.notifier.fails = True
    setup.endpoint.cost_usd = 5.0
    output = await setup.turn(monthly_usd=1.0)
    assert output.reply == "ok" and output.error is None
    assert refused(await setup.turn(monthly_usd=1.0), "budget", OVER_BUDGET_REPLY)


async def test_an_unknown_price_adds_nothing(setup: Setup) -> None:
    setup.endpoint.cost_usd = None
    for _ in range(3):
        assert (await setup.turn(monthly_usd=0.01)).reply == "ok"
    assert setup.notifier.told == []
