"""Datasets of a bot (`dataset`) and every content one held (`dataset_snapshot`).

A dataset's content changes as a whole: `save` writes the new content and its hash and keeps a
snapshot of it, so an evaluation run names exactly what it scored by the hash.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, and_, cast, desc, func, or_
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from builders.dataset import DatasetContent
from storage.conversations import answered_by, api_in
from storage.tables import Conversation, Dataset, DatasetSnapshot, Deployment, Message, utcnow

_dataset = Dataset.__table__  # type: ignore[attr-defined]
_snapshot = DatasetSnapshot.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_conv = Conversation.__table__  # type: ignore[attr-defined]
_deployment = Deployment.__table__  # type: ignore[attr-defined]


class DatasetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, bot_id: int, name: str) -> Dataset | None:
        query = select(Dataset).where(Dataset.bot_id == bot_id, Dataset.name == name)
        return (await self.session.exec(query)).first()

    async def locked(self, bot_id: int, name: str) -> Dataset | None:
        """The dataset, locked until the transaction ends (PostgreSQL; SQLite's writes are one at
        a time anyway), so a change made of its content loses no concurrent change."""
        query = (
            select(Dataset)
            .where(Dataset.bot_id == bot_id, Dataset.name == name)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.exec(query)).first()

    async def for_bot(self, bot_id: int) -> list[Dataset]:
        query = select(Dataset).where(Dataset.bot_id == bot_id).order_by(col(Dataset.name))
        return list((await self.session.exec(query)).all())

    async def save(
        self,
        *,
        team_id: int,
        bot_id: int,
        name: str,
        content: DatasetContent,
        actor: str,
        source: str | None = None,
    ) -> Dataset:
        """Create the dataset, or replace its content (`source` kept unless given); the
        content is kept as a snapshot under its hash either way."""
        data = content.model_dump(mode="json")
        digest = content.content_hash()
        row = await self.get(bot_id, name)
        now = utcnow()
        if row is None:
            row = Dataset(
                team_id=team_id,
                bot_id=bot_id,
                name=name,
                content=data,
                content_hash=digest,
                source=source or "",
                created_by=actor,
                updated_by=actor,
            )
        else:
            row.content, row.content_hash = data, digest
            row.updated_by, row.updated_at = actor, now
            if source is not None:
                row.source = source
        self.session.add(row)
        await self.session.flush()
        assert row.id is not None
        insert = (postgresql if self._dialect() == "postgresql" else sqlite).insert(_snapshot)
        await self.session.exec(
            insert.values(
                dataset_id=row.id, content_hash=digest, content=data, created_at=now
            ).on_conflict_do_nothing(index_elements=["dataset_id", "content_hash"])
        )
        return row

    async def delete(self, dataset: Dataset) -> None:
        await self.session.delete(dataset)
        await self.session.flush()

    async def snapshot(self, dataset_id: int, content_hash: str) -> DatasetContent | None:
        """The content the dataset held under `content_hash`, if it ever did."""
        found = await self.session.get(DatasetSnapshot, (dataset_id, content_hash))
        return DatasetContent.model_validate(found.content) if found is not None else None

    def _dialect(self) -> str:
        return self.session.bind.dialect.name  # type: ignore[union-attr]


def content_of(dataset: Dataset) -> DatasetContent:
    return DatasetContent.model_validate(dataset.content)


_REVIEWED = re.compile(r"review (\d+)")


def review_source(answer_id: int) -> str:
    """The source of a row made of a reviewed answer (`/review BOT add`)."""
    return f"review {answer_id}"


async def reviewed_ids(conn: AsyncConnection, bot_id: int) -> set[int]:
    """The ids of the answers that rows of the bot's datasets were made of (`review_source`),
    read from the rows' sources in the stored JSON alone, parsed off the event loop (a bot's
    datasets may hold many thousand rows)."""
    query = core_select(cast(_dataset.c.content, Text)).where(_dataset.c.bot_id == bot_id)
    stored = list((await conn.execute(query)).scalars())
    return await asyncio.to_thread(_reviewed_in, stored)


def _reviewed_in(stored: list[str]) -> set[int]:
    found: set[int] = set()
    for text in stored:
        rows = json.loads(text).get("rows")
        for row in rows if isinstance(rows, list) else []:
            source = row.get("source") if isinstance(row, dict) else None
            if isinstance(source, str) and (reviewed := _REVIEWED.fullmatch(source)):
                found.add(int(reviewed[1]))
    return found


# -- the turns datasets are made of ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnsweredTurn:
    """An end user's message and the bot's answer to it (kept together by one live turn, neither
    failed nor blocked), with the messages before it in its conversation."""

    answer_id: int
    conversation_id: int
    question: str
    answer: str
    history: tuple[tuple[str, str], ...]  # (user or assistant, text), oldest first


_HISTORY_ROLES = ("user", "assistant", "human")  # a person of the team answers for the bot
_answer, _question = _msg.alias("answer"), _msg.alias("question")


def _answered(bot_id: int) -> Select[tuple[int, int, str, int, str]]:
    """Answers of `bot_id` in live conversations, each with the user's message it answered
    (`answered_by`: a message said outside a turn has none)."""
    answer, question = _answer.c, _question.c
    return (
        core_select(answer.id, answer.conversation_id, answer.text, question.id, question.text)
        .select_from(
            _answer.join(_question, answered_by(_answer, _question)).join(
                _conv, _conv.c.id == answer.conversation_id
            )
        )
        .where(
            answer.bot_id == bot_id,
            answer.role == "assistant",
            answer.error.is_(None),
            question.error.is_(None),
            func.trim(question.text) != "",  # a file alone is no input to replay
            _conv.c.sandbox.is_(False),
        )
    )


async def last_answered(
    conn: AsyncConnection, bot_id: int, *, env: str, count: int, history: int
) -> list[AnsweredTurn]:
    """The last `count` turns `bot_id` answered on deployments of `env` and by its
    OpenAI-compatible API, oldest first, each with up to `history` messages before it."""
    query = (
        _answered(bot_id)
        .outerjoin(_deployment, _deployment.c.id == _conv.c.deployment_id)
        .where(or_(_deployment.c.env == env, api_in(bot_id, env)))
    )
    query = query.order_by(desc(_answer.c.id)).limit(count)
    found = (await conn.execute(query)).all()
    return [await _with_history(conn, row, history) for row in reversed(found)]


async def answered(
    conn: AsyncConnection, bot_id: int, answer_ids: Sequence[int], *, history: int
) -> dict[int, AnsweredTurn]:
    """The turns of `bot_id` whose answers have these ids, by answer id (ids that name no such
    answer are missing), each with up to `history` messages before it."""
    if not answer_ids:
        return {}
    query = _answered(bot_id).where(_answer.c.id.in_(list(answer_ids)))
    found = (await conn.execute(query)).all()
    turns = [await _with_history(conn, row, history) for row in found]
    return {turn.answer_id: turn for turn in turns}


async def _with_history(conn: AsyncConnection, row: Sequence[Any], history: int) -> AnsweredTurn:
    answer_id, conversation_id, answer, question_id, question = row
    earlier: list[tuple[str, str]] = []
    if history > 0:  # as the runtime reads history: failed and blocked turns left out
        query = (
            core_select(_msg.c.role, _msg.c.text)
            .where(
                and_(
                    _msg.c.conversation_id == conversation_id,
                    _msg.c.id < question_id,
                    _msg.c.error.is_(None),
                    _msg.c.role.in_(_HISTORY_ROLES),
                )
            )
            .order_by(desc(_msg.c.id))
            .limit(history)
        )
        said = (await conn.execute(query)).all()
        earlier = [("user" if role == "user" else "assistant", text) for role, text in said]
        earlier.reverse()
    return AnsweredTurn(
        answer_id=int(answer_id),
        conversation_id=int(conversation_id),
        question=question,
        answer=answer,
        history=tuple(earlier),
    )
