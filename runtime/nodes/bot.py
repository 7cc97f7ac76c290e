"""The `bot` node: answers with another bot of the same team (its production version's reply to
the person's text), through `ctx.ask_bot`. Bots asking bots stop `MAX_DEPTH` deep.

Whether the named bot exists in the team is checked where the team is known (when the spec is
saved), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydantic import field_validator

from builders.spec import NAME_PATTERN, BotSpec, PipelineNode
from runtime.nodes.base import NO_USAGE, NodeParams, onward, parse_params
from runtime.pipeline import NodeResult, TurnContext

MAX_DEPTH = 3


class Params(NodeParams):
    bot: str

    @field_validator("bot")
    @classmethod
    def _a_bot_name(cls, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"'{name[:40]}' is not a bot name")
        return name


@dataclass(frozen=True, slots=True)
class BotNode:
    kind: ClassVar[str] = "bot"
    answers: ClassVar[bool] = True
    uses_memory: ClassVar[bool] = False
    id: str
    bot: str
    next: str | None = None

    @classmethod
    def from_definition(cls, definition: PipelineNode, spec: BotSpec) -> BotNode:
        params = parse_params(Params, definition)
        return cls(id=definition.id, bot=params.bot, next=definition.next)

    @property
    def successors(self) -> tuple[tuple[str, str], ...]:
        return onward(self.next)

    async def run(self, ctx: TurnContext) -> NodeResult:
        if ctx.ask_bot is None:
            return NodeResult(usage=NO_USAGE, error="bot: asking another bot is not available here")
        depth = ctx.depth + 1
        if depth > MAX_DEPTH:
            return NodeResult(
                usage=NO_USAGE,
                error=f"bot: step '{self.id}': bots may ask each other at most {MAX_DEPTH} deep",
            )
        output = await ctx.ask_bot(bot=self.bot, text=ctx.text, depth=depth)
        trace = {"bot": self.bot, "path": list(output.path)}
        if output.error:
            return NodeResult(
                reply=ctx.spec.fallback, usage=output.usage, error=output.error, trace=trace
            )
        return NodeResult(reply=output.reply, usage=output.usage, trace=trace)
