"""What the turn-step tests share: a hand-made context and an endpoint that records its calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from builders.spec import BotSpec
from runtime.llm import LlmGateway
from runtime.pipeline import TurnContext, TurnMode, TurnOutput, Usage


def spec(**fields: Any) -> BotSpec:
    return BotSpec.model_validate({"name": "faq-bot", **fields})


def context(
    text: str,
    bot: BotSpec | None = None,
    *,
    llm: LlmGateway | None = None,
    mode: TurnMode = "live",
    bot_id: int | None = 1,
    user: str = "web:alice",
) -> TurnContext:
    return TurnContext(
        spec=bot or spec(),
        text=text,
        history=[],
        llm=llm or LlmGateway(),
        bot_id=bot_id,
        user=user,
        mode=mode,
    )


@dataclass
class Endpoint:
    """Stands for the pipeline: answers "ok" at `cost_usd` and keeps the text it was given."""

    cost_usd: float | None = 0.0
    seen: list[str] = field(default_factory=list)

    async def __call__(self, ctx: TurnContext) -> TurnOutput:
        self.seen.append(ctx.text)
        return TurnOutput(reply="ok", usage=Usage(10, 2, self.cost_usd), error=None, step="llm")
