"""`/trace BOT [last | CONVERSATION]`: why a bot answered as it did, step by step.

Every turn keeps what each step of its pipeline did (`runtime.trace`): the router's branch and
why, the passages retrieved with their scores, the prompt's size, the model calls, the tools
called with their outcome and time, tokens, cost and errors. `/trace BOT` (or `last`) shows the
bot's latest answer, in real conversations or in the caller's own `/try` sandbox; a conversation
id (from `GET /api/v1/bots/{bot}/conversations`) shows its last answers. Viewers may read, as
they may read conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from runtime.trace import StepView, TurnTrace
from storage import traces as trace_store
from storage.traces import TracedTurn
from studio.errors import NotFoundError
from studio.operations import Operations
from studio.presenters import one_line, plural, usd, when
from studio.replies import Answer
from studio.roles import Caller

SHOWN_IN_CHAT = 3  # answers of one conversation shown by `/trace BOT CONVERSATION`
_SAID_CHARS = 200
_REPLY_CHARS = 300
_PASSAGES_SHOWN = 4


@dataclass(frozen=True, slots=True)
class Traces:
    bot: str
    conversation: int | None  # None: the bot's latest answers, wherever they were
    turns: list[TracedTurn]  # newest first


class TraceFeature:
    def __init__(self, *, ops: Operations) -> None:
        self.ops = ops

    async def traces(
        self, caller: Caller, bot: str, *, conversation: int | None = None, limit: int = 20
    ) -> Traces:
        """The bot's latest answers with their traces, newest first (one conversation's when
        given: a real one of the bot's, or the caller's own sandbox)."""
        draft = await self.ops.draft(caller, bot)
        async with self.ops.db.read_conn() as conn:
            turns = await trace_store.traced_turns(
                conn,
                draft.bot_id,
                sandbox_user=caller.identity,
                conversation_id=conversation,
                limit=limit,
            )
        if conversation is not None and not turns:
            raise NotFoundError(
                f"{draft.name} has no answered conversation {conversation} that you may see. "
                f"`/trace {draft.name}` shows its latest answer."
            )
        return Traces(draft.name, conversation, turns)

    async def show(self, caller: Caller, bot: str, conversation: int | None) -> Answer:
        """`/trace BOT [last | CONVERSATION]` in chat."""
        limit = 1 if conversation is None else SHOWN_IN_CHAT
        found = await self.traces(caller, bot, conversation=conversation, limit=limit)
        if not found.turns:
            return Answer(
                f"*{found.bot}* has not answered anyone yet: try it with `/try {found.bot} hello`, "
                f"then `/trace {found.bot}`."
            )
        shown = [turn_text(turn) for turn in reversed(found.turns)]
        if conversation is not None and len(found.turns) == limit:
            shown.insert(0, f"_The last {limit} answers of conversation {conversation}:_")
        return Answer("\n\n".join(shown))


def parsed(turn: TracedTurn) -> TurnTrace | None:
    """The kept trace, read back (None: kept before traces were, or not readable)."""
    if turn.trace is None:
        return None
    try:
        return TurnTrace.model_validate(turn.trace)
    except ValidationError:
        return None


def turn_text(turn: TracedTurn) -> str:
    """One answer's trace, readably: where it was, what was said, each step, the answer."""
    where = "your /try sandbox" if turn.sandbox else f"{turn.channel}"
    head = [f"*Trace* · conversation {turn.conversation_id} ({where})"]
    if turn.version is not None:
        head.append(f"v{turn.version}")
    else:
        head.append("draft")
    if turn.variant:
        head.append(f"variant {turn.variant}")
    head.append(f"{when(turn.created_at)} UTC")
    lines = [" · ".join(head)]
    if turn.said is not None:
        lines.append(f"> {one_line(turn.said, _SAID_CHARS)}")
    trace = parsed(turn)
    blocked = (turn.error or "").startswith("blocked: ")
    if trace is None or not trace.steps:
        if blocked:
            guard = (turn.error or "").removeprefix("blocked: ")
            lines.append(f"No step ran: the `{guard}` guard answered first.")
        elif turn.error:
            lines.append("No step ran.")
        else:
            lines.append("No steps recorded for this answer (kept before turns were traced).")
    else:
        lines += [_step_text(n, step) for n, step in enumerate(trace.steps, start=1)]
    lines.append(f"*Answer* ({_totals(turn)}): {one_line(turn.reply, _REPLY_CHARS)}")
    if turn.error and not blocked:
        lines.append(f"✗ The turn failed: {one_line(turn.error, _REPLY_CHARS)}")
    return "\n".join(lines)


def _totals(turn: TracedTurn) -> str:
    parts = []
    if turn.latency_ms is not None:
        parts.append(f"{turn.latency_ms:,.0f} ms")
    if turn.prompt_tokens is not None and turn.completion_tokens is not None:
        parts.append(f"{turn.prompt_tokens + turn.completion_tokens:,} tokens")
    parts.append("cost unknown" if turn.cost_usd is None else usd(turn.cost_usd))
    return " · ".join(parts)


def _step_text(number: int, step: StepView) -> str:
    said = f"{number}. `{step.id}` {step.kind}, {step.ms:,.1f} ms"
    told = _told(step.kind, step.detail)
    if told:
        said += f": {told}"
    if step.prompt_tokens or step.completion_tokens:
        said += f" · {step.prompt_tokens or 0:,} + {step.completion_tokens or 0:,} tokens"
    if step.cost_usd is None:
        said += " · cost unknown"
    elif step.cost_usd:
        said += f" · {usd(step.cost_usd)}"
    if step.error:
        said += f"\n   ✗ {one_line(step.error, _REPLY_CHARS)}"
    elif step.next and step.kind != "router":
        said += f" → `{step.next}`"
    for call in step.tools:
        outcome = f"{call.status}, {call.ms:,.0f} ms, {call.size:,} bytes"
        detail = f" ({one_line(call.detail, 80)})" if call.detail else ""
        said += f"\n   tool `{call.function}`: {outcome}{detail}"
    return said


def _told(kind: str, detail: dict[str, Any]) -> str:
    """What a step kind tells of itself, in words (what `runtime/nodes/*` put in the trace)."""
    if kind == "router" and "to" in detail:
        return f"→ `{detail['to']}` ({detail.get('why', '')})"
    if kind == "retrieve":
        passages = detail.get("passages") or []
        searched = f"; searched {detail['search']}" if detail.get("search") else ""
        if not passages:
            return str(detail.get("why") or "no passage scored high enough") + searched
        shown = ", ".join(
            f"{p.get('cited', '?')} ({p.get('score', 0):.2f})" for p in passages[:_PASSAGES_SHOWN]
        )
        more = len(passages) - _PASSAGES_SHOWN
        listed = f"{plural(len(passages), 'passage')}: {shown}"
        return listed + (f" +{more}" if more > 0 else "") + searched
    if kind == "llm" and "model" in detail:
        if "answer" in detail:
            return f"{detail['model']} answered with {detail['answer']}"
        return (
            f"{detail['model']}, prompt of {plural(detail.get('messages', 0), 'message')} "
            f"({detail.get('prompt_chars', 0):,} characters, "
            f"{plural(detail.get('passages', 0), 'passage')}), "
            f"{plural(detail.get('calls', 0), 'model call')}"
        )
    if kind == "extract" and "kept" in detail:
        kept = ", ".join(detail["kept"]) or "nothing"
        missing = ", ".join(detail.get("missing") or [])
        return f"remembered {kept}" + (f"; still missing {missing}" if missing else "")
    if kind == "bot" and "bot" in detail:
        return f"asked {detail['bot']} ({' → '.join(detail.get('path') or [])})"
    return ""
