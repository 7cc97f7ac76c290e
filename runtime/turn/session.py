"""`TurnSession`: where one turn's conversation lives. Live traffic, a builder's `/try` sandbox
and a test case differ only here: where history and the participant's memory come from, and
where the finished turn is recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from runtime.llm import ChatMessage
from runtime.participant import Scalar

if TYPE_CHECKING:
    from runtime.pipeline import TurnContext, TurnOutput


class TurnSession(Protocol):
    """One conversation, seen from one turn of it."""

    async def history(self, turns: int) -> list[ChatMessage]:
        """The last `turns` exchanges (user and assistant messages), oldest first."""
        ...

    async def memory(self) -> dict[str, Scalar]:
        """What the bot remembers about the person talking."""
        ...

    async def record(
        self, ctx: TurnContext, output: TurnOutput, *, text: str, latency_ms: float
    ) -> None:
        """Keep the finished turn (and the memory it changed), wherever this conversation is
        kept; `text` is the user's message as it is to be stored (masked, when a guard says)."""
        ...


@dataclass(slots=True)
class EphemeralSession:
    """A conversation kept in memory only: a test case, or a question one bot asks another.
    Its turns become its own history, as a live conversation's would."""

    turns: list[ChatMessage] = field(default_factory=list)
    values: dict[str, Scalar] = field(default_factory=dict)

    async def history(self, turns: int) -> list[ChatMessage]:
        return self.turns[-2 * turns :] if turns > 0 else []

    async def memory(self) -> dict[str, Scalar]:
        return dict(self.values)

    async def record(
        self, ctx: TurnContext, output: TurnOutput, *, text: str, latency_ms: float
    ) -> None:
        if ctx.participant.changed:
            self.values = dict(ctx.participant.values)
        if output.error is None and output.blocked is None:
            self.turns += [ChatMessage("user", text), ChatMessage("assistant", output.reply)]
