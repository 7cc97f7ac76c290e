"""The schedule tables on SQLite and PostgreSQL: an occurrence is claimed once, a follow-up
sending once, the audience is each person's latest open conversation, reports replace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, text

from builders.spec import BotSpec, FollowUp
from storage import conversations as conv_store
from storage import schedules as store
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.teams import TeamRepository

DUE = datetime(2030, 3, 30, 9, tzinfo=UTC)


async def a_bot(db: Database) -> tuple[int, int, str]:
    async with db.write() as session:
        team = await TeamRepository(session).create("t")
        assert team.id is not None
        bot = await BotRepository(session).create(team.id, BotSpec(name="echo"))
        assert bot.id is not None
        deployment = await DeploymentRepository(session).create(
            team_id=team.id, bot_id=bot.id, channel="test", env="production", target="room"
        )
    return team.id, bot.id, deployment.id


async def test_an_occurrence_is_claimed_once(any_db: Database) -> None:
    _, bot_id, _ = await a_bot(any_db)

    def claim(conn: Connection, due: datetime = DUE, env: str = "production") -> int | None:
        return store.claim_run(
            conn, bot_id=bot_id, env=env, schedule_id="s", due_at=due, owner="p1", now=DUE
        )

    first = await any_db.run_write(claim)
    assert first is not None
    assert await any_db.run_write(claim) is None
    local = DUE.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Lisbon"))
    assert await any_db.run_write(lambda conn: claim(conn, local)) is None  # the same instant
    assert await any_db.run_write(lambda conn: claim(conn, env="staging")) is not None
    later = await any_db.run_write(lambda conn: claim(conn, DUE + timedelta(days=1)))
    assert later is not None
    lease = DUE + timedelta(days=1, minutes=2)
    assert await any_db.run_write(
        lambda conn: store.progress(
            conn, run_id=later, owner="p1", cursor=40, sent=40, failed=1, lease_until=lease
        )
    )
    async with any_db.read_conn() as conn:
        held = await store.unfinished_runs(conn, now=lease - timedelta(seconds=1))
        assert later not in [r.id for r in held] and first in [r.id for r in held]
        unfinished = await store.unfinished_runs(conn, now=lease + timedelta(seconds=1))
        assert [(r.id, r.cursor, r.sent, r.failed) for r in unfinished][-1] == (later, 40, 40, 1)
    assert await any_db.run_write(
        lambda conn: store.finish_run(
            conn, run_id=later, owner="p1", status="sent", sent=90, failed=1, error=None, now=DUE
        )
    )
    async with any_db.read_conn() as conn:
        latest = await store.latest_runs(conn, bot_id)
        assert latest[("production", "s")].id == later
        assert latest[("production", "s")].status == "sent"
        assert latest[("staging", "s")].due_at == DUE


async def test_a_run_is_taken_over_only_once_its_lease_ran_out(any_db: Database) -> None:
    _, bot_id, _ = await a_bot(any_db)
    run_id = await any_db.run_write(
        lambda conn: store.claim_run(
            conn, bot_id=bot_id, env="production", schedule_id="s", due_at=DUE, owner="p1", now=DUE
        )
    )
    assert run_id is not None

    def take(owner: str, now: datetime) -> Callable[[Connection], bool]:
        return lambda conn: store.take_run(conn, run_id=run_id, owner=owner, now=now)

    def renew(owner: str) -> Callable[[Connection], bool]:
        until = DUE + timedelta(hours=1)
        return lambda conn: store.renew(conn, run_id=run_id, owner=owner, lease_until=until)

    assert not await any_db.run_write(take("p2", DUE + timedelta(minutes=1)))  # p1 holds it
    assert await any_db.run_write(take("p2", DUE + store.LEASE + timedelta(seconds=1)))
    assert not await any_db.run_write(take("p3", DUE + store.LEASE + timedelta(seconds=1)))
    assert not await any_db.run_write(renew("p1"))  # p1 learns it is no longer its
    assert not await any_db.run_write(
        lambda conn: store.progress(
            conn, run_id=run_id, owner="p1", cursor=9, sent=9, failed=0, lease_until=DUE
        )
    )
    assert await any_db.run_write(renew("p2"))
    await any_db.run_write(lambda conn: store.release(conn, run_id=run_id, owner="p2"))
    assert await any_db.run_write(take("p3", DUE))  # released (a shutdown): at once

    def finish(owner: str) -> Callable[[Connection], bool]:
        return lambda conn: store.finish_run(
            conn, run_id=run_id, owner=owner, status="sent", sent=1, failed=0, error=None, now=DUE
        )

    assert not await any_db.run_write(finish("p2"))
    assert await any_db.run_write(finish("p3"))
    assert not await any_db.run_write(take("p4", DUE + timedelta(days=1)))  # finished


async def test_a_run_reaches_each_recipient_once_and_old_runs_go(any_db: Database) -> None:
    _, bot_id, deployment = await a_bot(any_db)

    def claim(conn: Connection, due: datetime) -> int:
        found = store.claim_run(
            conn, bot_id=bot_id, env="production", schedule_id="s", due_at=due, owner="p", now=due
        )
        assert found is not None
        return found

    def deliver(run_id: int, user: str) -> Callable[[Connection], bool]:
        return lambda conn: store.deliver_once(
            conn, run_id=run_id, deployment_id=deployment, user=user
        )

    first = await any_db.run_write(lambda conn: claim(conn, DUE))
    assert await any_db.run_write(deliver(first, "test:ana"))
    assert not await any_db.run_write(deliver(first, "test:ana"))
    assert await any_db.run_write(deliver(first, "test:rui"))
    async with any_db.read_conn() as conn:
        assert await store.delivered(conn, run_id=first, deployment_id=deployment, user="test:ana")
        assert not await store.delivered(
            conn, run_id=first, deployment_id=deployment, user="test:eva"
        )
    second = await any_db.run_write(lambda conn: claim(conn, DUE + timedelta(days=1)))
    assert await any_db.run_write(deliver(second, "test:ana"))  # the next run: again

    def finish(conn: Connection) -> None:
        for run_id in (first, second):
            store.finish_run(
                conn,
                run_id=run_id,
                owner="p",
                status="sent",
                sent=2,
                failed=0,
                error=None,
                now=DUE + timedelta(days=1),
            )

    await any_db.run_write(finish)
    unfinished = await any_db.run_write(lambda conn: claim(conn, DUE + timedelta(days=2)))
    await any_db.run_write(deliver(unfinished, "test:ana"))

    await any_db.run_write(lambda conn: store.expire(conn, before=DUE + timedelta(days=1)))
    async with any_db.read_conn() as conn:  # nothing finished before that
        assert len((await conn.execute(text("select * from schedule_delivery"))).all()) == 4
    await any_db.run_write(lambda conn: store.expire(conn, before=DUE + timedelta(days=3)))
    async with any_db.read_conn() as conn:
        runs = (await conn.execute(text("select id from schedule_run order by id"))).all()
        kept = (await conn.execute(text("select run_id from schedule_delivery"))).all()
    # the schedule's latest run stays (its row keeps the occurrence from firing again), and
    # the deliveries of one still sending
    assert [row[0] for row in runs] == [unfinished]
    assert [row[0] for row in kept] == [unfinished]


async def test_pauses(any_db: Database) -> None:
    _, bot_id, _ = await a_bot(any_db)

    def pause(conn: Connection) -> bool:
        return store.pause(conn, bot_id=bot_id, schedule_id="s", by="x", now=DUE)

    assert await any_db.run_write(pause) and not await any_db.run_write(pause)
    async with any_db.read_conn() as conn:
        assert await store.paused(conn, bot_id) == {"s"}
        assert await store.is_paused(conn, bot_id, "s")
    resume = lambda conn: store.resume(conn, bot_id=bot_id, schedule_id="s")  # noqa: E731
    assert await any_db.run_write(resume) and not await any_db.run_write(resume)


async def test_a_follow_up_sending_is_claimed_once_and_a_reply_rearms(any_db: Database) -> None:
    _, bot_id, deployment = await a_bot(any_db)
    nudge = FollowUp(id="nudge", after_minutes=30, message="Still there?", times=2)
    arming = store.Arming(
        bot_id=bot_id,
        deployment_id=deployment,
        conversation_key="c1",
        address={"channel": "test"},
        version=1,
        followups=(nudge,),
        at=DUE,
    )
    await any_db.run_write(lambda conn: store.arm(conn, arming))
    async with any_db.read_conn() as conn:
        assert await store.due_followups(conn, now=DUE, limit=10) == []
        (row,) = await store.due_followups(conn, now=DUE + timedelta(minutes=30), limit=10)
    now = row.due_at
    assert await any_db.run_write(lambda conn: store.claim_followup(conn, row, now=now))
    assert not await any_db.run_write(lambda conn: store.claim_followup(conn, row, now=now))
    spoke = replace(arming, at=DUE + timedelta(minutes=5))  # the end user spoke
    async with any_db.read_conn() as conn:  # read just before they did
        (stale,) = await store.due_followups(conn, now=DUE + timedelta(hours=2), limit=10)
    await any_db.run_write(lambda conn: store.arm(conn, spoke))
    assert not await any_db.run_write(lambda conn: store.claim_followup(conn, stale, now=now))
    async with any_db.read_conn() as conn:
        (again,) = await store.due_followups(conn, now=DUE + timedelta(hours=1), limit=10)
    assert again.sent == 0 and again.due_at == DUE + timedelta(minutes=35)
    assert await any_db.run_write(lambda conn: store.claim_followup(conn, again, now=now))
    async with any_db.read_conn() as conn:
        (second,) = await store.due_followups(conn, now=DUE + timedelta(days=1), limit=10)
    assert second.sent == 1
    assert await any_db.run_write(lambda conn: store.claim_followup(conn, second, now=now))
    async with any_db.read_conn() as conn:  # the last of `times`: gone
        assert await store.due_followups(conn, now=DUE + timedelta(days=1), limit=10) == []


async def test_the_audience_is_each_persons_latest_open_conversation(any_db: Database) -> None:
    _, bot_id, deployment = await a_bot(any_db)

    def new(user: str, key: str) -> conv_store.NewConversation:
        return conv_store.NewConversation(
            bot_id=bot_id, deployment_id=deployment, channel="test", key=key, user=user
        )

    def fill(conn: Connection) -> list[int]:
        ids = [conv_store.start_conversation(conn, new(f"u{n}", f"k{n}")) for n in range(5)]
        ids.append(conv_store.start_conversation(conn, new("u0", "k0-later")))
        ended = conv_store.start_conversation(conn, new("u9", "k9"))
        conv_store.end_conversation(conn, ended)
        return ids

    ids = await any_db.run_write(fill)
    async with any_db.read_conn() as conn:
        first = await store.audience(conn, deployment_ids=[deployment], after=0, limit=2)
        rest = await store.audience(
            conn, deployment_ids=[deployment], after=first[-1].conversation_id, limit=10
        )
        assert await store.audience(conn, deployment_ids=[], after=0, limit=10) == []
        found = await store.latest_conversation(conn, deployment_ids=[deployment], user="u0")
    got = [r.conversation_id for r in first + rest]
    assert got == ids[1:]  # u0's earlier conversation is not its latest
    assert found is not None and found.key == "k0-later"


async def test_a_report_at_the_same_place_is_replaced(any_db: Database) -> None:
    team_id, bot_id, _ = await a_bot(any_db)

    def put(conn: Connection, period: str, place: str = "#ops") -> int:
        return store.put_report(
            conn,
            team_id=team_id,
            bot_id=bot_id,
            cron="0 9 * * *",
            tz="UTC",
            period=period,
            address={"kind": "slack"},
            place=place,
            by="x",
            now=DUE,
        )

    first = await any_db.run_write(lambda conn: put(conn, "24h"))
    assert await any_db.run_write(lambda conn: put(conn, "7d")) == first
    other = await any_db.run_write(lambda conn: put(conn, "7d", "#other"))
    async with any_db.read_conn() as conn:
        assert [(r.id, r.period) for r in await store.reports(conn, bot_id)] == [
            (first, "7d"),
            (other, "7d"),
        ]
    gone = lambda conn: store.remove_report(conn, bot_id=bot_id, report_id=first)  # noqa: E731
    assert await any_db.run_write(gone) and not await any_db.run_write(gone)
