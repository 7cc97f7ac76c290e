"""One contract for the repositories, run on SQLite and (when available) PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import Connection, text

from builders.spec import BotSpec
from storage import conversations as conv
from storage import inbox
from storage.audit import REDACTED, AuditRepository
from storage.bots import BotRepository
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.errors import DuplicateError, StaleRevisionError
from storage.migrate import migrate
from storage.tables import Bot, utcnow
from storage.teams import TeamRepository


async def _team_and_bot(db: Database, name: str = "faq-bot") -> tuple[int, Bot]:
    async with db.write() as session:
        team = await TeamRepository(session).create(f"team-{name}")
        assert team.id is not None
        bot = await BotRepository(session).create(team.id, BotSpec(name=name))
    return team.id, bot


async def _count(db: Database, table: str) -> int:
    async with db.read_conn() as c:
        return int((await c.execute(text(f"select count(*) from {table}"))).scalar() or 0)


async def test_migrating_twice_changes_nothing(any_db: Database) -> None:
    await migrate(any_db)
    assert await _count(any_db, "bot") == 0


async def test_teams_members_and_hashed_keys(any_db: Database) -> None:
    async with any_db.write() as session:
        repo = TeamRepository(session)
        team = await repo.create("acme")
        with pytest.raises(DuplicateError):
            await repo.create("acme")
        assert team.id is not None
        plain, row = await repo.create_api_key(team.id, "ci", "editor")  # session still usable
        await repo.add_member(team.id, "api:ci", "editor")
    async with any_db.read() as session:
        repo = TeamRepository(session)
        found = await repo.find_api_key(plain)
        assert found is not None and found.role == "editor" and found.id == row.id
        assert await repo.find_api_key(plain + "x") is None
        assert [m.identity for m in await repo.members(team.id)] == ["api:ci"]
    async with any_db.read_conn() as c:
        stored = (await c.execute(text("select key_hash, prefix from apikey"))).one()
    assert plain not in stored[0] and stored[1] == plain[:10]


async def test_bots_drafts_compare_and_set(any_db: Database) -> None:
    team_id, _ = await _team_and_bot(any_db)
    async with any_db.write() as session:
        with pytest.raises(DuplicateError):
            await BotRepository(session).create(team_id, BotSpec(name="faq-bot"))
        await BotRepository(session).create(team_id, BotSpec(name="abc"))
    async with any_db.write() as session:
        repo = BotRepository(session)
        current = await repo.get(team_id, "faq-bot")
        assert current is not None
        await repo.save_draft(current, BotSpec(name="faq-bot", prompt="new"), expected_revision=1)
        assert current.revision == 2
    async with any_db.write() as session:
        repo = BotRepository(session)
        current = await repo.get(team_id, "faq-bot")
        assert current is not None
        with pytest.raises(StaleRevisionError) as caught:
            await repo.save_draft(
                current, BotSpec(name="faq-bot", prompt="lost"), expected_revision=1
            )
        assert caught.value.current == 2
    async with any_db.read() as session:
        repo = BotRepository(session)
        assert await repo.names(team_id) == ["abc", "faq-bot"]
        reloaded = await repo.get(team_id, "faq-bot")
        assert reloaded is not None and reloaded.draft["prompt"] == "new"


async def test_versions_are_numbered_even_when_written_concurrently(any_db: Database) -> None:
    _, bot = await _team_and_bot(any_db)

    async def freeze(prompt: str) -> int:
        async with any_db.write() as session:
            repo = BotRepository(session)
            row = await repo.by_id(bot.id)  # type: ignore[arg-type]
            assert row is not None
            version = await repo.add_version(
                row, BotSpec(name="faq-bot", prompt=prompt), created_by="t"
            )
            return version.number

    numbers = await asyncio.gather(*[freeze(f"p{i}") for i in range(4)])
    assert sorted(numbers) == [1, 2, 3, 4]
    async with any_db.write() as session:
        repo = BotRepository(session)
        v2 = await repo.version(bot.id, 2)  # type: ignore[arg-type]
        assert v2 is not None and v2.id is not None
        await repo.set_pointer(bot.id, "staging", v2.id)  # type: ignore[arg-type]
        await repo.set_pointer(bot.id, "staging", v2.id)  # type: ignore[arg-type]
        latest = await repo.latest_version(bot.id)  # type: ignore[arg-type]
        assert latest is not None
        assert latest.spec_hash == BotSpec.model_validate(latest.spec).content_hash()
    async with any_db.read() as session:
        pointers = await BotRepository(session).pointers(bot.id)  # type: ignore[arg-type]
    assert {env: p.number for env, p in pointers.items()} == {"staging": 2}


async def test_deleting_a_bot_removes_its_versions_pointers_deployments(any_db: Database) -> None:
    team_id, bot = await _team_and_bot(any_db)
    async with any_db.write() as session:
        repo = BotRepository(session)
        version = await repo.add_version(bot, BotSpec(name="faq-bot"), created_by="t")
        assert version.id is not None and bot.id is not None
        await repo.set_pointer(bot.id, "production", version.id)
        deployments = DeploymentRepository(session)
        await deployments.create(
            team_id=team_id, bot_id=bot.id, channel="web", env="production", target="x"
        )
        with pytest.raises(DuplicateError):
            await deployments.create(
                team_id=team_id, bot_id=bot.id, channel="web", env="production", target="x"
            )
        listed = await deployments.for_team(team_id)
        assert [(d.target, name) for d, name in listed] == [("x", "faq-bot")]
    async with any_db.write() as session:
        row = await BotRepository(session).by_id(bot.id)
        assert row is not None
        await BotRepository(session).delete(row)
    for table in ("bot", "bot_version", "environment_pointer", "deployment"):
        assert await _count(any_db, table) == 0, table


async def test_conversations_history_and_stats(any_db: Database) -> None:
    _, bot = await _team_and_bot(any_db)
    assert bot.id is not None
    new = conv.NewConversation(bot_id=bot.id, deployment_id=None, channel="web", key="k", user="u1")
    sandbox = conv.NewConversation(
        bot_id=bot.id, deployment_id=None, channel="web", key="s", user="u2", sandbox=True
    )
    conversation_id = await any_db.run_write(partial(conv.start_conversation, new=new))
    sandbox_id = await any_db.run_write(partial(conv.start_conversation, new=sandbox))
    turns = [
        [
            conv.TurnRecord("user", "q1"),
            conv.TurnRecord(
                "assistant",
                "a1",
                latency_ms=10,
                cost_usd=0.01,
                prompt_tokens=3,
                completion_tokens=2,
            ),
        ],
        [
            conv.TurnRecord("user", "q2", error="timeout: x"),
            conv.TurnRecord("assistant", "sorry", latency_ms=30, error="timeout: x"),
        ],
        [conv.TurnRecord("user", "q3"), conv.TurnRecord("assistant", "a3", latency_ms=20)],
    ]
    for records in turns:
        await any_db.run_write(
            partial(
                conv.add_messages, conversation_id=conversation_id, bot_id=bot.id, records=records
            )
        )
    await any_db.run_write(
        partial(conv.add_messages, conversation_id=sandbox_id, bot_id=bot.id, records=turns[0])
    )
    async with any_db.read_conn() as c:
        assert await conv.active_conversation(c, None, "k") == conversation_id
        assert await conv.history(c, conversation_id, 1) == [("user", "q3"), ("assistant", "a3")]
        assert await conv.history(c, conversation_id, 5) == [
            ("user", "q1"),
            ("assistant", "a1"),
            ("user", "q3"),
            ("assistant", "a3"),
        ]
        row = await conv.stats(c, bot.id, utcnow() - timedelta(hours=1))
        total = row.total
        assert (total.turns, row.conversations, row.users, total.errors) == (3, 1, 1, 1)
        assert total.unknown_cost_turns == 1 and total.cost_usd == pytest.approx(0.01)
        assert (total.prompt_tokens, total.completion_tokens) == (3, 2)
        assert row.latencies_ms == [10.0, 20.0, 30.0]
        assert list(row.usage) == [(None, "web")]  # one version (none here) on one channel
        assert [s.messages for s in await conv.recent_conversations(c, bot.id)] == [6]
    async with any_db.read_conn() as c:
        no_parts = "select count(*) from message where parts is null"
        assert (await c.execute(text(no_parts))).scalar() == 8  # SQL NULL, not JSON null
    await any_db.run_write(partial(conv.end_conversation, conversation_id=conversation_id))
    async with any_db.read_conn() as c:
        assert await conv.active_conversation(c, None, "k") is None


async def test_a_series_counts_per_day_or_hour_and_version(any_db: Database) -> None:
    _, bot = await _team_and_bot(any_db)
    assert bot.id is not None
    new = conv.NewConversation(bot_id=bot.id, deployment_id=None, channel="web", key="k", user="u")
    conversation_id = await any_db.run_write(partial(conv.start_conversation, new=new))
    answers = [
        conv.TurnRecord("assistant", "a", version=1, latency_ms=10, cost_usd=0.5),
        conv.TurnRecord("assistant", "b", version=1, latency_ms=30, error="timeout: x"),
        conv.TurnRecord("assistant", "c", version=2, latency_ms=20, error="blocked: pii"),
        conv.TurnRecord("assistant", "d", version=2),
    ]
    ids = []
    for record in answers:
        ids += await any_db.run_write(
            partial(
                conv.add_messages,
                conversation_id=conversation_id,
                bot_id=bot.id,
                records=[conv.TurnRecord("user", "q"), record],
            )
        )
    now = utcnow()
    yesterday = (now - timedelta(days=1)).replace(hour=10, minute=5)
    async with any_db.write_conn() as c:  # the first answer (and its question) a day earlier
        moved = text("update message set created_at = :at where id in (:q, :a)")
        await c.execute(moved, {"at": yesterday, "q": ids[0], "a": ids[1]})
    async with any_db.read_conn() as c:
        daily = await conv.series(c, bot.id, now - timedelta(days=7), hourly=False)
        hourly = await conv.series(c, bot.id, now - timedelta(days=7), hourly=True)
    day, today = yesterday.strftime("%Y-%m-%d"), now.strftime("%Y-%m-%d")
    assert daily.answers == [
        conv.BucketStats(day, 1, "web", None, 1, 0, 0.5),
        conv.BucketStats(today, 1, "web", None, 1, 1, None),  # failed; the price unknown
        conv.BucketStats(today, 2, "web", None, 2, 0, None),  # a guard's refusal is no error
    ]
    assert daily.conversations == {day: 1, today: 1}
    assert {k: sorted(v) for k, v in daily.latencies_ms.items()} == {
        day: [10.0],
        today: [20.0, 30.0],
    }
    assert daily.arm_latencies_ms == {} and daily.rated_down == {}
    assert hourly.answers[0].bucket == f"{day} 10:00"
    assert hourly.conversations[now.strftime("%Y-%m-%d %H:00")] == 1


async def test_stats_and_series_by_channel_and_a_b_variant(any_db: Database) -> None:
    """Answers on two channels, two of them in an A/B test, one rated 👎; a `/try` answer
    (sandbox) counts nowhere. The breakdowns add up to the stored turns."""
    _, bot = await _team_and_bot(any_db)
    assert bot.id is not None
    answers = {
        ("web", False): [
            conv.TurnRecord("assistant", "a", version=1, latency_ms=10, cost_usd=0.25,
                            prompt_tokens=5, completion_tokens=1),
            conv.TurnRecord("assistant", "b", version=2, latency_ms=40, cost_usd=0.5,
                            prompt_tokens=7, completion_tokens=2, ab_test_id=9, variant="B"),
        ],
        ("telegram", False): [
            conv.TurnRecord("assistant", "c", version=1, latency_ms=20, prompt_tokens=11,
                            completion_tokens=3, ab_test_id=9, variant="A"),
        ],
        ("web", True): [conv.TurnRecord("assistant", "sandbox", version=2, cost_usd=9.0)],
    }  # fmt: skip
    rated = []
    for (channel, sandbox), records in answers.items():
        new = conv.NewConversation(
            bot_id=bot.id, deployment_id=None, channel=channel, key=channel, user="u",
            sandbox=sandbox,
        )  # fmt: skip
        conversation_id = await any_db.run_write(partial(conv.start_conversation, new=new))
        rated += await any_db.run_write(
            partial(
                conv.add_messages, conversation_id=conversation_id, bot_id=bot.id, records=records
            )
        )
    async with any_db.write_conn() as c:  # 👎 for the web's B answer, 👍 for telegram's A
        rate = text(
            'insert into feedback (message_id, "user", bot_id, rating, channel, created_at) '
            "values (:m, 'u', :b, :r, 'web', :at)"
        )
        for message_id, rating in ((rated[1], -1), (rated[2], 1)):
            await c.execute(rate, {"m": message_id, "b": bot.id, "r": rating, "at": utcnow()})
    since, today = utcnow() - timedelta(hours=1), utcnow().strftime("%Y-%m-%d")
    async with any_db.read_conn() as c:
        row = await conv.stats(c, bot.id, since)
        daily = await conv.series(c, bot.id, since, hourly=False)
    assert row.usage == {
        (1, "web"): conv.Usage(1, 0, 0, 5, 1, 0.25, 0),
        (1, "telegram"): conv.Usage(1, 0, 0, 11, 3, 0.0, 1),
        (2, "web"): conv.Usage(1, 0, 0, 7, 2, 0.5, 0),
    }
    assert row.total == conv.Usage(3, 0, 0, 23, 6, 0.75, 1)
    assert sorted(daily.answers, key=lambda r: (r.version or 0, r.channel)) == [
        conv.BucketStats(today, 1, "telegram", (9, "A"), 1, 0, None),
        conv.BucketStats(today, 1, "web", None, 1, 0, 0.25),
        conv.BucketStats(today, 2, "web", (9, "B"), 1, 0, 0.5),
    ]
    assert sorted(daily.latencies_ms[today]) == [10.0, 20.0, 40.0]
    assert daily.arm_latencies_ms == {(today, (9, "A")): [20.0], (today, (9, "B")): [40.0]}
    assert daily.rated_down == {(9, "B"): 1}


async def test_the_inbox_deduplicates_even_under_concurrency(any_db: Database) -> None:
    record = partial(
        inbox.record_inbound,
        dedupe_key="slack:C1:1.0",
        deployment_id="d",
        conversation="c",
        payload={"a": 1},
        worker="w1",
    )
    ids = await asyncio.gather(*[any_db.run_write(record) for _ in range(5)])
    assert len([i for i in ids if i is not None]) == 1
    inbox_id = next(i for i in ids if i is not None)
    outbox_id = await any_db.run_write(
        partial(inbox.add_outbound, deployment_id="d", payload={"t": 1}, worker="w1")
    )
    async with any_db.read_conn() as c:
        [waiting] = await inbox.pending_inbox(c)
        assert (waiting.id, waiting.payload, waiting.worker) == (inbox_id, {"a": 1}, "w1")
        assert [(r.id, r.worker) for r in await inbox.pending_outbox(c)] == [(outbox_id, "w1")]
    await any_db.run_write(partial(inbox.set_inbox_status, item_id=inbox_id, status="done"))
    await any_db.run_write(partial(inbox.mark_outbound, item_id=outbox_id, status="sent"))
    await any_db.run_write(
        partial(
            inbox.record_inbound,
            dedupe_key="new",
            deployment_id="d",
            conversation="c",
            payload={},
            worker=None,
        )
    )
    await any_db.run_write(partial(inbox.expire, before=utcnow() + timedelta(seconds=1)))
    async with any_db.read_conn() as c:
        assert [r.payload for r in await inbox.pending_inbox(c)] == [{}]  # pending rows are kept
    assert await _count(any_db, "outbox") == 0


async def test_a_conversations_pending_messages_come_oldest_first_up_to_a_row(
    any_db: Database,
) -> None:
    ids: dict[str, int | None] = {}

    def record_all(conn: Connection) -> None:
        for key, conversation in (("1", "a"), ("2", "b"), ("3", "a"), ("4", "a")):
            ids[key] = inbox.record_inbound(
                conn,
                dedupe_key=key,
                deployment_id="d",
                conversation=conversation,
                payload={"k": key},
                worker=None,
            )

    await any_db.run_write(record_all)
    await any_db.run_write(partial(inbox.set_inbox_status, item_id=ids["1"] or 0, status="done"))
    assert None not in ids.values()
    outbox_id = await any_db.run_write(
        partial(inbox.add_outbound, deployment_id="d", payload={}, worker=None)
    )
    async with any_db.read_conn() as c:
        found = await inbox.pending_of(c, deployment_id="d", conversation="a", up_to=ids["3"] or 0)
        assert [p["k"] for _, p in found] == ["3"]  # "1" is done, "4" came after
        found = await inbox.pending_of(c, deployment_id="d", conversation="a", up_to=ids["4"] or 0)
        assert [i for i, _ in found] == [ids["3"], ids["4"]]
        assert (
            await inbox.pending_of(c, deployment_id="x", conversation="a", up_to=ids["4"] or 0)
            == []
        )
        assert await inbox.outbox_pending(c, outbox_id)
    await any_db.run_write(partial(inbox.mark_outbound, item_id=outbox_id, status="sent"))
    async with any_db.read_conn() as c:
        assert not await inbox.outbox_pending(c, outbox_id)


async def test_audit_redacts_secrets_at_any_depth(any_db: Database) -> None:
    team_id, _ = await _team_and_bot(any_db)
    async with any_db.write() as session:
        audit = AuditRepository(session)
        await audit.record(
            team_id=team_id,
            actor="a",
            action="deploy",
            target="faq-bot",
            after={"token": "123:abc", "nested": [{"api_key": "k", "ok": 1}]},
        )
        await audit.record(team_id=team_id, actor="a", action="bot.edit", target="other")
    async with any_db.read() as session:
        events = await AuditRepository(session).events(team_id)
        assert [e.action for e in events] == ["bot.edit", "deploy"]
        assert events[1].after == {"token": REDACTED, "nested": [{"api_key": REDACTED, "ok": 1}]}
        only = await AuditRepository(session).events(team_id, target="faq-bot")
        assert [e.action for e in only] == ["deploy"]


async def test_housekeeping_forgets_old_notices_and_confirmations(any_db: Database) -> None:
    from adapters.mailbox import Mailbox
    from runtime.messages import OutgoingMessage
    from studio import confirmations
    from studio.address import studio_address
    from studio.confirmations import Confirmations

    team_id, _ = await _team_and_bot(any_db)
    mailbox = Mailbox(any_db)
    address = studio_address("studio", team_id, "api:owner")
    await mailbox.send(OutgoingMessage(address=address, text="report"))
    await Confirmations(any_db).ask(
        team_id=team_id, identity="api:owner", command={}, bot=None, revision=None
    )
    assert [m.text for _, m in await mailbox.fetch(team_id, "api:owner")] == ["report"]

    def expire(before: datetime) -> Callable[[Connection], None]:
        def job(conn: Connection) -> None:
            Mailbox.expire(conn, before=before)
            confirmations.expire(conn, before=before)

        return job

    await any_db.run_write(expire(utcnow() - timedelta(hours=1)))
    assert await _count(any_db, "studio_notice") == 1  # young rows stay
    assert await _count(any_db, "confirmation") == 1
    await any_db.run_write(expire(utcnow() + timedelta(seconds=1)))
    assert await _count(any_db, "studio_notice") == 0
    assert await _count(any_db, "confirmation") == 0
