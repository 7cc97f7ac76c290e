"""The guardrails step: what an end user sends is checked before the bot answers, in every mode
(live, `/try`, tests), as the spec's `guardrails` say.

In order: personal data is masked first (so even a refused message is stored masked), then the
length limit and the blocked terms are checked on the words as said, then moderation is asked
about the masked text (personal data never reaches the moderation provider either). A refusal
answers politely in place of the bot and never echoes what was refused.

Moderation fails closed: when the provider cannot be asked, the message is refused with "can't
check that message right now" and the turn carries the error, so /stats counts it.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from runtime.llm import MODERATION_MODEL, LlmError
from runtime.pipeline import TurnContext, TurnOutput, Usage
from runtime.turn.chain import Handler
from runtime.turn.pii import mask_turn

logger = logging.getLogger(__name__)

BLOCKED_REPLY = "Sorry, I can't help with that message. Could you rephrase it?"
FLAGGED_REPLY = "Sorry, I can't respond to that message."
UNCHECKED_REPLY = "Sorry, I can't check that message right now; please try again in a moment."


def too_long_reply(limit: int) -> str:
    return f"Your message is too long: please keep it to {limit:,} characters or fewer."


def refusal(reply: str, guard: str, *, error: str | None = None) -> TurnOutput:
    """The answer of a turn step that refuses the message: nothing was spent."""
    return TurnOutput(reply=reply, usage=Usage(0, 0, 0.0), error=error, blocked=guard)


@lru_cache(maxsize=512)
def blocked_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for a bot's blocked terms: whole words or phrases, any case. Compiled once
    per set of terms (the spec is frozen, so a version's terms never change)."""
    words = sorted({" ".join(term.split()) for term in terms} - {""}, key=len, reverse=True)
    if not words:
        return re.compile(r"(?!)")  # matches nothing
    alternatives = "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class GuardrailStep:
    """Masks personal data and refuses too long, blocked or flagged messages. Moderation goes
    through the turn's gateway (`ctx.llm.moderate`) to the provider's `MODERATION_MODEL`. A bot
    without guardrails costs a few attribute reads."""

    async def __call__(self, ctx: TurnContext, call_next: Handler) -> TurnOutput:
        guard = ctx.spec.guardrails
        said = ctx.text
        mask_turn(ctx)
        if len(said) > guard.max_input_chars:
            return refusal(too_long_reply(guard.max_input_chars), "too_long")
        if guard.blocked_terms and blocked_pattern(tuple(guard.blocked_terms)).search(said):
            return refusal(BLOCKED_REPLY, "blocked_term")
        if guard.moderation:
            try:
                verdict = await ctx.llm.moderate(ctx.text, model=MODERATION_MODEL)
            except LlmError as exc:
                logger.warning("moderation failed: %s", exc, extra={"bot": ctx.bot_id})
                return refusal(UNCHECKED_REPLY, "moderation", error=f"moderation {exc}")
            if verdict.flagged:
                return refusal(FLAGGED_REPLY, "moderation")
        return await call_next(ctx)
