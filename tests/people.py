"""End users for tests: conversations and participant memory stored as the runtime stores them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func, select

from storage import conversations as conv_store
from storage import participants as memory_store
from storage.tables import Conversation, Message, Participant
from tests.factories import Service


async def bot_id(service: Service, name: str, key: str | None = None) -> int:
    ops = service.app.state.core.ops
    caller = await ops.authenticate(key or service.key)
    return int((await ops.draft(caller, name)).bot_id)


async def talked(
    service: Service,
    bot: str,
    user: str,
    *,
    channel: str | None = None,
    texts: tuple[str, ...] = ("hello", "hi there"),
    key: str | None = None,
) -> int:
    """A stored conversation of `user` with `bot` (on the channel its prefix names, or
    `channel`; `sandbox` makes it a member's /try conversation); its id."""
    where = channel or user.partition(":")[0]
    new = conv_store.NewConversation(
        bot_id=await bot_id(service, bot, key),
        deployment_id=None,
        channel=where,
        key=f"{where}:{user}:{len(texts)}",
        user=user,
        sandbox=where == "sandbox",
    )
    roles = ("user", "assistant")
    records = [conv_store.TurnRecord(roles[n % 2], text) for n, text in enumerate(texts)]

    def store(conn: Connection) -> int:
        conversation_id = conv_store.start_conversation(conn, new)
        conv_store.add_messages(
            conn, conversation_id=conversation_id, bot_id=new.bot_id, records=records
        )
        return conversation_id

    return int(await service.app.state.core.db.run_write(store))


async def remembered(
    service: Service,
    bot: str,
    user: str,
    data: dict[str, Any],
    *,
    channel: str | None = None,
    key: str | None = None,
) -> None:
    """`bot` remembers `data` about `user` (on the channel its prefix names, or `channel`)."""
    found = await bot_id(service, bot, key)
    where = channel or user.partition(":")[0]
    await service.app.state.core.db.run_write(
        lambda conn: memory_store.save(conn, bot_id=found, channel=where, user=user, data=data)
    )


async def rows(service: Service) -> dict[str, list[tuple[Any, ...]]]:
    """Every conversation (id, bot id, channel, user), message count per conversation and memory
    row (bot id, channel, user, data), in id order: to compare before and after."""
    conv: Table = Conversation.__table__  # type: ignore[attr-defined]
    msg: Table = Message.__table__  # type: ignore[attr-defined]
    part: Table = Participant.__table__  # type: ignore[attr-defined]
    queries = {
        "conversations": select(conv.c.id, conv.c.bot_id, conv.c.channel, conv.c.user).order_by(
            conv.c.id
        ),
        "messages": select(msg.c.conversation_id, func.count())
        .group_by(msg.c.conversation_id)
        .order_by(msg.c.conversation_id),
        "memory": select(part.c.bot_id, part.c.channel, part.c.user, part.c.data).order_by(
            part.c.id
        ),
    }
    async with service.app.state.core.db.read_conn() as conn:
        return {
            name: [tuple(row) for row in (await conn.execute(query)).all()]
            for name, query in queries.items()
        }
