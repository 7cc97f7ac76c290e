"""`BotRunner`: the one turn engine. Live traffic, `/try`, `/test` (and evaluations) all answer
through it; they differ only in the `TurnSession` they give (where history and memory come from
and where the turn is kept) and the `mode` (budgets count live turns only).

A turn is these steps, composed once (`chain.build_chain`), outermost first:
(OpenTelemetry spans, when exported) -> metrics (live) -> recording -> error boundary -> the
service's guard steps (guardrails, budget) -> history -> participant memory -> the pipeline.
Version resolution happens before, by the caller: the environment's version (live), the draft
(`/try`, tests), or another bot's production version (`ask_bot`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from runtime.llm import TextSink
from runtime.metrics import COST, LLM_ERRORS, TOKENS, TURN_SECONDS, TURNS, UNKNOWN_COST
from runtime.participant import ParticipantMemory
from runtime.pipeline import CompiledBot, TurnContext, TurnMode, TurnOutput, Usage
from runtime.turn.chain import Handler, Step, build_chain
from runtime.turn.session import EphemeralSession, TurnSession

if TYPE_CHECKING:
    from runtime.handoff import Handover
    from runtime.knowledge.gateway import KnowledgeGateway
    from runtime.llm import LlmGateway
    from runtime.otel import TurnSpans
    from runtime.tools.gateway import ToolGateway

logger = logging.getLogger(__name__)

MAX_BOT_DEPTH = 3  # a bot asking a bot asking a bot: no deeper


class BotVersions(Protocol):
    """Finds the version another bot of a team runs in production (for the `bot` step)."""

    async def production_of(self, *, team_id: int, bot: str) -> tuple[int, CompiledBot] | None:
        """(bot id, its compiled production version); None: no such bot, or nothing in
        production yet."""
        ...


class BotRunner:
    def __init__(
        self,
        *,
        llm: LlmGateway,
        knowledge: KnowledgeGateway | None = None,
        versions: BotVersions | None = None,
        steps: Sequence[Step] = (),
        tools: ToolGateway | None = None,
    ) -> None:
        self.llm = llm
        self.knowledge = knowledge
        self.tools = tools  # None: bots with tools answer that tools are not available here
        self.versions = versions
        self._steps = tuple(steps)
        self.spans: TurnSpans | None = None
        self._chain = self._compose()

    def add_steps(self, *steps: Step) -> None:
        """Add guard steps (composition root: the ones built after the runtime), in order."""
        self._steps += steps
        self._chain = self._compose()

    def export_spans(self, spans: TurnSpans) -> None:
        """Export every turn as OpenTelemetry spans from now on (`runtime.otel`)."""
        self.spans = spans
        self._chain = self._compose()

    def _compose(self) -> Handler:
        outermost = [self.spans.step] if self.spans is not None else []
        return build_chain(
            [*outermost, _metrics, _recording, _error_boundary, *self._steps, _history, _memory],
            _pipeline,
        )

    async def run(
        self,
        bot: CompiledBot,
        *,
        text: str,
        session: TurnSession,
        mode: TurnMode,
        bot_id: int | None = None,
        team_id: int | None = None,
        user: str = "",
        channel: str = "",
        version: int | None = None,
        depth: int = 0,
        handover: Handover | None = None,
        stream: TextSink | None = None,
    ) -> TurnOutput:
        """Answer `text` with `bot` in `session` and keep the turn there (`handover`: a live
        conversation's way to the team, `runtime.handoff`; `stream`: where the answer's text
        goes as it is written, `runtime.llm.TextSink`)."""
        asker = None
        if team_id is not None and self.versions is not None:
            asker = _Asker(self, team_id=team_id, mode=mode, user=user, channel=channel)
        ctx = TurnContext(
            spec=bot.spec,
            text=text,
            history=[],
            llm=self.llm,
            knowledge=self.knowledge,
            bot_id=bot_id,
            team_id=team_id,
            user=user,
            mode=mode,
            ask_bot=asker,
            depth=depth,
            compiled=bot,
            session=session,
            channel=channel,
            version=version,
            tools=self.tools,
            handover=handover,
            stream=stream,
        )
        return await self._chain(ctx)


@dataclass(frozen=True, slots=True)
class _Asker:
    """`ctx.ask_bot`: the team's other bot answers in a conversation of its own that is not
    kept (its production version, the same person and mode)."""

    runner: BotRunner
    team_id: int
    mode: TurnMode
    user: str
    channel: str

    async def __call__(self, *, bot: str, text: str, depth: int) -> TurnOutput:
        if depth > MAX_BOT_DEPTH:
            return _failed(f"bot: asking '{bot}' would go over {MAX_BOT_DEPTH} bots deep")
        assert self.runner.versions is not None
        found = await self.runner.versions.production_of(team_id=self.team_id, bot=bot)
        if found is None:
            return _failed(f"bot: '{bot}' has no production version to ask")
        bot_id, compiled = found
        return await self.runner.run(
            compiled,
            text=text,
            session=EphemeralSession(),
            mode=self.mode,
            bot_id=bot_id,
            team_id=self.team_id,
            user=self.user,
            channel=self.channel,
            depth=depth,
        )


def _failed(error: str) -> TurnOutput:
    return TurnOutput(reply="", usage=Usage(0, 0, 0.0), error=error)


# -- the steps every turn takes ----------------------------------------------------------------


async def _metrics(ctx: TurnContext, call_next: Handler) -> TurnOutput:
    """Live turns counted by channel and outcome, with their time; their tokens and cost by
    bot."""
    started = time.perf_counter()
    output = await call_next(ctx)
    if ctx.mode == "live" and ctx.depth == 0:
        outcome = "error" if output.error else "blocked" if output.blocked else "ok"
        TURNS.labels(ctx.channel, outcome).inc()
        TURN_SECONDS.labels(ctx.channel).observe(time.perf_counter() - started)
        if output.error:
            LLM_ERRORS.labels(output.error.split(":", 1)[0]).inc()
        usage, bot = output.usage, str(ctx.bot_id)
        if usage.prompt_tokens:
            TOKENS.labels(bot, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            TOKENS.labels(bot, "completion").inc(usage.completion_tokens)
        if usage.cost_usd is None:
            if output.error is None:  # a failed call's cost is unknown too, but it is an error
                UNKNOWN_COST.labels(bot).inc()
        elif usage.cost_usd:
            COST.labels(bot).inc(usage.cost_usd)
    return output


async def _recording(ctx: TurnContext, call_next: Handler) -> TurnOutput:
    """The turn is kept in its session: the words as said (or as a guard masked them), the
    answer, its cost and time, and the memory it changed."""
    said = ctx.text
    started = time.perf_counter()
    output = await call_next(ctx)
    latency_ms = (time.perf_counter() - started) * 1000
    stored = ctx.stored_text if ctx.stored_text is not None else said
    assert ctx.session is not None
    await ctx.session.record(ctx, output, text=stored, latency_ms=latency_ms)
    return output


async def _error_boundary(ctx: TurnContext, call_next: Handler) -> TurnOutput:
    """A bug in a step or a node answers with the bot's fallback and is recorded as the turn's
    error (and logged), instead of leaving the person without an answer."""
    try:
        return await call_next(ctx)
    except Exception as exc:
        logger.exception("a turn failed", extra={"bot": ctx.bot_id})
        return TurnOutput(
            reply=ctx.spec.fallback,
            usage=Usage(None, None, None),
            error=f"internal: {type(exc).__name__}",
            tool_calls=tuple(ctx.tool_calls),
            steps=tuple(ctx.steps),
        )


async def _history(ctx: TurnContext, call_next: Handler) -> TurnOutput:
    assert ctx.session is not None
    ctx.history = await ctx.session.history(ctx.spec.history)
    return await call_next(ctx)


async def _memory(ctx: TurnContext, call_next: Handler) -> TurnOutput:
    """The person's memory, loaded only for a bot whose steps (or prompt) use it."""
    assert ctx.compiled is not None and ctx.session is not None
    if ctx.compiled.uses_memory:
        ctx.participant = ParticipantMemory(await ctx.session.memory())
    return await call_next(ctx)


async def _pipeline(ctx: TurnContext) -> TurnOutput:
    assert ctx.compiled is not None
    return await ctx.compiled.run(ctx)
