"""The turn engine: one chain of steps for every kind of turn, with the `offline` model (no
network) and hand-made pipelines and guard steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from builders.spec import BotSpec
from runtime.llm import ChatMessage, LlmGateway
from runtime.participant import Scalar
from runtime.pipeline import (
    CompiledBot,
    Node,
    NodeResult,
    TurnContext,
    TurnOutput,
    Usage,
    compile_spec,
)
from runtime.turn.chain import Handler, build_chain
from runtime.turn.runner import MAX_BOT_DEPTH, BotRunner
from runtime.turn.session import EphemeralSession


@dataclass(frozen=True, slots=True)
class Remember:
    """A step that writes what the person said into memory and answers with what it knew."""

    kind: ClassVar[str] = "remember"
    id: str = "remember"
    next: str | None = None
    uses_memory: bool = True

    async def run(self, ctx: TurnContext) -> NodeResult:
        known = ctx.participant.get("said")
        ctx.participant.set("said", ctx.text)
        return NodeResult(reply=f"before: {known}")


@dataclass(frozen=True, slots=True)
class Broken:
    kind: ClassVar[str] = "broken"
    id: str = "broken"
    next: str | None = None
    uses_memory: bool = False

    async def run(self, ctx: TurnContext) -> NodeResult:
        raise KeyError("a bug")


def compiled(*nodes: Node, **fields: Any) -> CompiledBot:
    spec = BotSpec(name="some-bot", **fields)
    return CompiledBot(
        spec=spec,
        nodes={n.id: n for n in nodes},
        entry=nodes[0].id,
        uses_memory=any(n.uses_memory for n in nodes),
    )


@dataclass
class Recorded(EphemeralSession):
    """An in-memory session that also lists what it was asked to keep."""

    kept: list[tuple[str, TurnOutput]] = field(default_factory=list)
    memory_reads: int = 0

    async def memory(self) -> dict[str, Scalar]:
        self.memory_reads += 1
        return await EphemeralSession.memory(self)

    async def record(
        self, ctx: TurnContext, output: TurnOutput, *, text: str, latency_ms: float
    ) -> None:
        self.kept.append((text, output))
        await EphemeralSession.record(self, ctx, output, text=text, latency_ms=latency_ms)


def runner(**kwargs: Any) -> BotRunner:
    return BotRunner(llm=LlmGateway(), **kwargs)


async def test_a_plain_bot_answers_and_says_which_step_did() -> None:
    session = Recorded()
    bot = compile_spec(BotSpec(name="plain-bot", fallback="No idea."))
    output = await runner().run(bot, text="hi", session=session, mode="test")
    assert (output.reply, output.step, output.path, output.error) == (
        "No idea.",
        "llm",
        ("llm",),
        None,
    )
    assert session.kept == [("hi", output)]
    assert session.memory_reads == 0  # nothing in a plain bot reads memory: no load


async def test_history_and_memory_carry_from_turn_to_turn_of_a_session() -> None:
    session = Recorded()
    bot = compiled(Remember(), history=5)
    first = await runner().run(bot, text="one", session=session, mode="test")
    second = await runner().run(bot, text="two", session=session, mode="test")
    assert (first.reply, second.reply) == ("before: None", "before: one")
    assert session.values == {"said": "two"}
    assert session.turns == [
        ChatMessage("user", "one"),
        ChatMessage("assistant", "before: None"),
        ChatMessage("user", "two"),
        ChatMessage("assistant", "before: one"),
    ]


async def test_a_bug_in_a_step_answers_with_the_fallback_and_is_recorded_as_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = Recorded()
    bot = compiled(Broken(), fallback="Sorry.")
    output = await runner().run(bot, text="hi", session=session, mode="live")
    assert (output.reply, output.error) == ("Sorry.", "internal: KeyError")
    assert session.kept == [("hi", output)] and session.turns == []  # kept, but not history
    assert "a turn failed" in caplog.text


class Refuse:
    """A guard that answers instead of the pipeline, masking what it stores."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, ctx: TurnContext, call_next: Handler) -> TurnOutput:
        self.seen.append(ctx.text)
        if "secret" in ctx.text:
            ctx.stored_text = ctx.text.replace("secret", "[masked]")
            return TurnOutput(reply="Not that.", usage=Usage(0, 0, 0.0), error=None, blocked="test")
        return await call_next(ctx)


async def test_a_guard_step_answers_instead_of_the_pipeline_and_its_turn_is_not_history() -> None:
    guard = Refuse()
    session = Recorded()
    bot = compiled(Remember())
    output = await runner(steps=[guard]).run(bot, text="my secret", session=session, mode="live")
    assert (output.reply, output.blocked, output.step, output.path) == (
        "Not that.",
        "test",
        None,
        (),
    )
    assert session.kept == [("my [masked]", output)]
    assert session.turns == [] and session.memory_reads == 0
    ok = await runner(steps=[guard]).run(bot, text="hello", session=session, mode="live")
    assert ok.reply == "before: None" and guard.seen == ["my secret", "hello"]


async def test_steps_compose_once_outermost_first() -> None:
    order: list[str] = []

    def step(name: str) -> Any:
        async def run(ctx: TurnContext, call_next: Handler) -> TurnOutput:
            order.append(f"{name} in")
            output = await call_next(ctx)
            order.append(f"{name} out")
            return output

        return run

    async def endpoint(ctx: TurnContext) -> TurnOutput:
        order.append("pipeline")
        return TurnOutput(reply="", usage=Usage(0, 0, 0.0), error=None)

    chain = build_chain([step("a"), step("b")], endpoint)
    ctx = TurnContext(spec=BotSpec(name="x-bot"), text="", history=[], llm=LlmGateway())
    await chain(ctx)
    await chain(ctx)
    assert order == ["a in", "b in", "pipeline", "b out", "a out"] * 2


@dataclass
class Versions:
    """The team's other bots, by name."""

    bots: dict[str, CompiledBot]
    asked: list[str] = field(default_factory=list)

    async def production_of(self, *, team_id: int, bot: str) -> tuple[int, CompiledBot] | None:
        self.asked.append(bot)
        found = self.bots.get(bot)
        return None if found is None else (len(self.asked), found)


@dataclass(frozen=True, slots=True)
class Ask:
    """Asks another bot, as the `bot` step does."""

    bot: str
    kind: ClassVar[str] = "ask"
    id: str = "ask"
    next: str | None = None
    uses_memory: bool = False

    async def run(self, ctx: TurnContext) -> NodeResult:
        assert ctx.ask_bot is not None
        output = await ctx.ask_bot(bot=self.bot, text=ctx.text, depth=ctx.depth + 1)
        return NodeResult(reply=output.reply, usage=output.usage, error=output.error)


async def test_a_bot_asks_another_bot_of_its_team_and_the_depth_is_limited() -> None:
    billing = compiled(PipelineNodeEcho())
    versions = Versions({"billing-bot": billing, "loop-bot": compiled(Ask("loop-bot"))})
    run = runner(versions=versions).run
    asked = await run(
        compiled(Ask("billing-bot")), text="invoice?", session=Recorded(), mode="live", team_id=1
    )
    assert asked.reply == "echo: invoice?"
    missing = await run(
        compiled(Ask("nobody")), text="x", session=Recorded(), mode="live", team_id=1
    )
    assert missing.error == "bot: 'nobody' has no production version to ask"
    looped = await run(
        compiled(Ask("loop-bot")), text="x", session=Recorded(), mode="live", team_id=1
    )
    assert looped.error == f"bot: asking 'loop-bot' would go over {MAX_BOT_DEPTH} bots deep"
    assert versions.asked.count("loop-bot") == MAX_BOT_DEPTH


async def test_without_a_team_there_is_no_one_to_ask() -> None:
    ctx_seen: list[object] = []

    @dataclass(frozen=True, slots=True)
    class Look:
        kind: ClassVar[str] = "look"
        id: str = "look"
        next: str | None = None
        uses_memory: bool = False

        async def run(self, ctx: TurnContext) -> NodeResult:
            ctx_seen.append(ctx.ask_bot)
            return NodeResult(reply="ok")

    await runner(versions=Versions({})).run(
        compiled(Look()), text="x", session=Recorded(), mode="test"
    )
    assert ctx_seen == [None]


@dataclass(frozen=True, slots=True)
class PipelineNodeEcho:
    kind: ClassVar[str] = "echo"
    id: str = "echo"
    next: str | None = None
    uses_memory: bool = False

    async def run(self, ctx: TurnContext) -> NodeResult:
        return NodeResult(reply=f"echo: {ctx.text}")
