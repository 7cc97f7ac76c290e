"""A bot in a live A/B test, and traffic for it: answers of each variant stored as the runtime
stores them (with the test and variant), rated and scored, in volume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert

from storage import conversations as conv_store
from storage import feedback as feedback_store
from storage.tables import TurnScore
from tests.factories import Service
from tests.people import bot_id

_score = TurnScore.__table__  # type: ignore[attr-defined]


async def two_versions(service: Service, name: str = "faq-bot") -> str:
    """`name` live on the web: production runs v1 ("v1 says hi"), staging v2 ("v2 says hi");
    the web deployment's id."""
    deployment = await service.live_web_bot(name, fallback="v1 says hi")
    await service.call("PATCH", f"/api/v1/bots/{name}", json={"fallback": "v2 says hi"})
    await service.call("POST", f"/api/v1/bots/{name}/promote", json={"to": "staging"})
    return deployment


async def traffic(
    service: Service,
    bot: str,
    test_id: int,
    variant: str,
    *,
    turns: int,
    ups: int = 0,
    downs: int = 0,
    scores: Sequence[float] = (),
    errors: int = 0,
    latency_ms: float = 200.0,
) -> None:
    """`turns` answers of `variant`, one end user each: the first `errors` failed, the next
    `ups` rated 👍 and `downs` 👎 by their user, the first ones scored `scores`."""
    found = await bot_id(service, bot)

    def store(conn: Connection) -> None:
        for n in range(turns):
            user = f"{variant.lower()}-{test_id}-{n}"
            conversation = conv_store.start_conversation(
                conn,
                conv_store.NewConversation(
                    bot_id=found, deployment_id=None, channel="web", key=user, user=user
                ),
            )
            error = "the model failed" if n < errors else None
            records = [
                conv_store.TurnRecord("user", "hello", error=error),
                conv_store.TurnRecord(
                    "assistant",
                    "hi",
                    latency_ms=latency_ms + n % 7,
                    cost_usd=0.001,
                    error=error,
                    ab_test_id=test_id,
                    variant=variant,
                ),
            ]
            (_, answer) = conv_store.add_messages(
                conn, conversation_id=conversation, bot_id=found, records=records
            )
            rated = n - errors
            if 0 <= rated < ups + downs:
                rating = 1 if rated < ups else -1
                feedback_store.rate(
                    conn, message_id=answer, bot_id=found, user=user, channel="web", rating=rating
                )
            if n < len(scores):
                values: dict[str, Any] = {"message_id": answer, "bot_id": found, "score": scores[n]}
                conn.execute(insert(_score), values)

    await service.app.state.core.db.run_write(store)
