"""The turn step of a handed-over conversation: while a person of the team has it, the bot says
nothing; the end user's message is recorded as usual and relayed to the team's room.

The check is one dictionary lookup (`Handover.is_open`), so conversations that were never
handed over pay nothing for it.
"""

from __future__ import annotations

from runtime.pipeline import TurnContext, TurnOutput, Usage
from runtime.turn.chain import Handler


async def relay_to_people(ctx: TurnContext, call_next: Handler) -> TurnOutput:
    handover = ctx.handover
    if handover is None or not handover.is_open:
        return await call_next(ctx)
    await handover.relay(ctx)
    return TurnOutput(reply="", usage=Usage(0, 0, 0.0), error=None, silent=True)
