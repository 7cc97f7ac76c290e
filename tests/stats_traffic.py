"""Traffic for `/stats` tests: a bot live on the web (real turns through the web chat, and a
`/try` that must count nowhere), with answers stored as the runtime stores them on a second
channel and in an A/B test of two versions; and what the stored answers add up to, read
straight from the database, to compare `/stats`'s numbers with."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, text

from storage import conversations as conv_store
from tests.factories import Service
from tests.people import bot_id

TEST_ID = 7  # the A/B test's id the stored answers carry


async def mixed_traffic(service: Service, bot: str = "faq-bot") -> None:
    """`bot` (v1 in production, on the web) answers two web chats and a `/try`; then v2 and v3
    answer on telegram, in an A/B test (A: v2, B: v3), one of B's answers at an unknown
    price."""
    deployment = await service.live_web_bot(bot)
    for question in ("Hello?", "Still there?"):
        assert (await service.chat(deployment, question)).status_code == 200
    await service.reply(f"/try {bot} hello")
    found = await bot_id(service, bot)
    answers = [
        (2, "A", 0.002, 400.0),
        (2, "A", 0.003, 300.0),
        (3, "B", 0.001, 200.0),
        (3, "B", None, 100.0),
    ]

    def store(conn: Connection) -> None:
        for n, (version, variant, cost, latency) in enumerate(answers):
            new = conv_store.NewConversation(
                bot_id=found, deployment_id=None, channel="telegram", key=f"t{n}", user=f"u{n}"
            )
            conversation = conv_store.start_conversation(conn, new)
            records = [
                conv_store.TurnRecord("user", "hello"),
                conv_store.TurnRecord(
                    "assistant",
                    "hi",
                    version=version,
                    latency_ms=latency,
                    prompt_tokens=100 + n,
                    completion_tokens=10 + n,
                    cost_usd=cost,
                    ab_test_id=TEST_ID,
                    variant=variant,
                ),
            ]
            conv_store.add_messages(
                conn, conversation_id=conversation, bot_id=found, records=records
            )

    await service.app.state.core.db.run_write(store)


async def stored_usage(service: Service, bot: str = "faq-bot") -> dict[str, dict[Any, Any]]:
    """The bot's stored answers (not `/try`'s) summed per version and per channel: turns,
    prompt and completion tokens, and the sum of the known costs (None: none known)."""
    query = text(
        "select m.version, c.channel, m.prompt_tokens, m.completion_tokens, m.cost_usd "
        "from message m join conversation c on c.id = m.conversation_id "
        "where m.bot_id = :bot and m.role = 'assistant' and not c.sandbox"
    )
    sums: dict[str, dict[Any, Any]] = {"version": defaultdict(_zero), "channel": defaultdict(_zero)}
    async with service.app.state.core.db.read_conn() as conn:
        for version, channel, prompt, completion, cost in await conn.execute(
            query, {"bot": await bot_id(service, bot)}
        ):
            for part, key in (("version", version), ("channel", channel)):
                total = sums[part][key]
                total["turns"] += 1
                total["prompt_tokens"] += prompt or 0
                total["completion_tokens"] += completion or 0
                if cost is not None:
                    total["cost_usd"] = (total["cost_usd"] or 0.0) + cost
    return {part: dict(by) for part, by in sums.items()}


def _zero() -> dict[str, Any]:
    return {"turns": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
