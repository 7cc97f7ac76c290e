"""Datasets in storage (`storage.datasets`), on SQLite and (when available) PostgreSQL: the
answered turns datasets are made of, with the conversation before each, and the dataset
repository's content, snapshots and locked reads."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from builders.dataset import DatasetContent, DatasetRow
from builders.spec import BotSpec
from storage import conversations as conv
from storage.bots import BotRepository
from storage.database import Database
from storage.datasets import (
    AnsweredTurn,
    DatasetRepository,
    answered,
    content_of,
    last_answered,
    review_source,
    reviewed_ids,
)
from storage.deployments import DeploymentRepository
from storage.teams import TeamRepository

User, Bot, Human = "user", "assistant", "human"


@dataclass(frozen=True, slots=True)
class World:
    team_id: int
    bot_id: int
    other_bot_id: int
    production: str  # deployment ids
    staging: str
    other: str  # the other bot's production deployment


async def _world(db: Database) -> World:
    async with db.write() as session:
        team = await TeamRepository(session).create("acme")
        assert team.id is not None
        bots = BotRepository(session)
        bot = await bots.create(team.id, BotSpec(name="faq-bot"))
        other = await bots.create(team.id, BotSpec(name="other-bot"))
        assert bot.id is not None and other.id is not None
        deployments = DeploymentRepository(session)
        made = [
            await deployments.create(
                team_id=team.id, bot_id=bot_id, channel="web", env=env, target=target
            )
            for bot_id, env, target in (
                (bot.id, "production", "a"),
                (bot.id, "staging", "b"),
                (other.id, "production", "c"),
            )
        ]
    return World(team.id, bot.id, other.id, made[0].id, made[1].id, made[2].id)


async def _conversation(
    db: Database,
    bot_id: int,
    deployment_id: str | None,
    writes: list[list[tuple[str, str] | tuple[str, str, str]]],
    *,
    sandbox: bool = False,
) -> tuple[int, list[int]]:
    """A conversation kept write by write (a turn keeps its two messages in one write); its id
    and the ids of its messages."""
    new = conv.NewConversation(
        bot_id=bot_id,
        deployment_id=deployment_id,
        channel="sandbox" if sandbox else "web",
        key=f"k{len(writes)}{deployment_id}{sandbox}",
        user="u1",
        sandbox=sandbox,
    )
    conversation_id = int(await db.run_write(lambda c: conv.start_conversation(c, new)))
    ids: list[int] = []
    for write in writes:
        records = [conv.TurnRecord(m[0], m[1], error=m[2] if len(m) > 2 else None) for m in write]

        def keep(c: Connection, records: list[conv.TurnRecord] = records) -> list[int]:
            return conv.add_messages(
                c, conversation_id=conversation_id, bot_id=bot_id, records=records
            )

        ids += await db.run_write(keep)
    return conversation_id, ids


def _said(turn: AnsweredTurn) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return turn.question, turn.answer, turn.history


async def test_the_last_answered_turns_of_an_environment_with_their_history(
    any_db: Database,
) -> None:
    world = await _world(any_db)
    first, ids = await _conversation(
        any_db,
        world.bot_id,
        world.production,
        [
            [(User, "hi"), (Bot, "hello")],
            [(User, "what is 2+2?", "llm: timeout"), (Bot, "sorry", "llm: timeout")],  # failed
            [(User, "my password", "blocked: blocked_term"), (Bot, "no", "blocked: x")],
            [(User, "   "), (Bot, "you sent a file")],  # no text to replay
            [(User, "refunds?"), (Bot, "30 days")],
            [(User, "a person please")],  # silent: the team has the conversation
            [(Human, "I am Ann from the team")],
            [(Bot, "Good morning! (a schedule)")],  # said outside a turn
            [(User, "thanks"), (Bot, "welcome")],
        ],
    )
    await _conversation(  # staging, a /try conversation and another bot: not production's
        any_db, world.bot_id, world.staging, [[(User, "staging q"), (Bot, "staging a")]]
    )
    await _conversation(
        any_db, world.bot_id, None, [[(User, "try q"), (Bot, "try a")]], sandbox=True
    )
    await _conversation(any_db, world.other_bot_id, world.other, [[(User, "o"), (Bot, "oa")]])
    second, _ = await _conversation(
        any_db, world.bot_id, world.production, [[(User, "later"), (Bot, "much later")]]
    )

    async with any_db.read_conn() as conn:
        turns = await last_answered(conn, world.bot_id, env="production", count=10, history=4)
        newest = await last_answered(conn, world.bot_id, env="production", count=2, history=0)
        staging = await last_answered(conn, world.bot_id, env="staging", count=10, history=40)
    assert [_said(turn) for turn in turns] == [
        ("hi", "hello", ()),
        (
            "refunds?",
            "30 days",
            ((User, "hi"), (Bot, "hello"), (User, "   "), (Bot, "you sent a file")),
        ),
        (
            "thanks",
            "welcome",
            (  # the last 4 kept messages: the team's answer is the bot's side
                (Bot, "30 days"),
                (User, "a person please"),
                (Bot, "I am Ann from the team"),
                (Bot, "Good morning! (a schedule)"),
            ),
        ),
        ("later", "much later", ()),
    ]
    assert [turn.conversation_id for turn in turns] == [first, first, first, second]
    assert turns[1].answer_id == ids[9]  # the answer's id: what end users rate
    assert [_said(turn) for turn in newest] == [
        ("thanks", "welcome", ()),
        ("later", "much later", ()),
    ]
    assert [_said(turn) for turn in staging] == [("staging q", "staging a", ())]


async def test_answered_turns_by_their_answers_ids(any_db: Database) -> None:
    world = await _world(any_db)
    _, ids = await _conversation(
        any_db,
        world.bot_id,
        world.staging,
        [
            [(User, "hi"), (Bot, "hello")],
            [(User, "boom", "llm: error"), (Bot, "sorry", "llm: error")],
            [(User, "refunds?"), (Bot, "30 days")],
        ],
    )
    _, other = await _conversation(
        any_db, world.other_bot_id, world.other, [[(User, "o"), (Bot, "oa")]]
    )
    _, tried = await _conversation(
        any_db, world.bot_id, None, [[(User, "try"), (Bot, "tried")]], sandbox=True
    )
    wanted = [ids[5], ids[1], ids[0], ids[3], other[1], tried[1], 10**9]
    async with any_db.read_conn() as conn:
        found = await answered(conn, world.bot_id, wanted, history=2)
        assert await answered(conn, world.bot_id, [], history=2) == {}
    assert sorted(found) == [ids[1], ids[5]]  # a question, a failed answer, others' are not
    assert _said(found[ids[5]]) == ("refunds?", "30 days", ((User, "hi"), (Bot, "hello")))
    assert _said(found[ids[1]]) == ("hi", "hello", ())


async def test_a_dataset_keeps_each_content_it_held_by_its_hash(any_db: Database) -> None:
    world = await _world(any_db)
    first = DatasetContent(rows=[DatasetRow(id=1, turns=["hi"], expected="hello")])
    second = DatasetContent(rows=[*first.rows, DatasetRow(id=2, turns=["bye"])])
    async with any_db.write() as session:
        repo = DatasetRepository(session)
        assert await repo.locked(world.bot_id, "golden") is None
        made = await repo.save(
            team_id=world.team_id,
            bot_id=world.bot_id,
            name="golden",
            content=first,
            actor="t",
            source="by hand",
        )
    async with any_db.write() as session:
        repo = DatasetRepository(session)
        locked = await repo.locked(world.bot_id, "golden")
        assert locked is not None and locked.id == made.id
        assert content_of(locked) == first
        await repo.save(
            team_id=world.team_id, bot_id=world.bot_id, name="golden", content=second, actor="u"
        )
        await repo.save(  # back to the first content: its snapshot is there already
            team_id=world.team_id, bot_id=world.bot_id, name="golden", content=first, actor="u"
        )
    async with any_db.read() as session:
        repo = DatasetRepository(session)
        [found] = await repo.for_bot(world.bot_id)
        assert (found.source, found.updated_by, found.content_hash) == (
            "by hand",
            "u",
            first.content_hash(),
        )
        assert found.id is not None
        assert await repo.snapshot(found.id, second.content_hash()) == second
    async with any_db.read_conn() as conn:
        count = (await conn.execute(text("select count(*) from dataset_snapshot"))).scalar()
    assert count == 2


async def test_reviewed_ids_are_read_from_the_rows_sources_of_the_bot_s_datasets(
    any_db: Database,
) -> None:
    world = await _world(any_db)

    def rows(*sources: str) -> DatasetContent:
        return DatasetContent(
            rows=[DatasetRow(id=n, turns=["hi"], source=s) for n, s in enumerate(sources, 1)]
        )

    async with any_db.read_conn() as conn:
        assert await reviewed_ids(conn, world.bot_id) == set()
    async with any_db.write() as session:
        repo = DatasetRepository(session)
        for bot_id, name, content in (
            (world.bot_id, "golden", rows(review_source(12), "conversation 3", review_source(7))),
            (world.bot_id, "more", rows("review 12", "review 40 and more", "reviewed 41", "")),
            (world.other_bot_id, "golden", rows(review_source(99))),
        ):
            await repo.save(
                team_id=world.team_id, bot_id=bot_id, name=name, content=content, actor="t"
            )
    async with any_db.read_conn() as conn:
        assert await reviewed_ids(conn, world.bot_id) == {7, 12}
        assert await reviewed_ids(conn, world.other_bot_id) == {99}
