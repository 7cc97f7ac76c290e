"""The turn step of a handed-over conversation: while a person of the team has it, the bot says
nothing; the end user's message is recorded as usual and relayed to the team's room.

It comes before the guardrails: people read what the end user wrote, even what a guard would
refuse the bot (personal data still masked when the guardrails say `pii`). The check is one
dictionary lookup (`Handover.is_open`), so conversations that were never handed over pay
nothing for it.
"""

from __future__ import annotations

from runtime.participant import ParticipantMemory
from runtime.pipeline import TurnContext, TurnOutput, Usage
from runtime.turn.chain import Handler
from runtime.turn.pii import mask_turn


async def relay_to_people(ctx: TurnContext, call_next: Handler) -> TurnOutput:
    handover = ctx.handover
    if handover is None or not handover.is_open:
        return await call_next(ctx)
    mask_turn(ctx)
    if ctx.session is not None:  # the end user's remembered name for the team (a cache read)
        ctx.participant = ParticipantMemory(await ctx.session.memory())
    await handover.relay(ctx)
    return TurnOutput(reply="", usage=Usage(0, 0, 0.0), error=None, silent=True)
