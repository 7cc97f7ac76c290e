"""Compiling a spec into a pipeline of nodes, and running one turn through it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

from builders.spec import MAX_NODES, BotSpec, PipelineNode
from runtime.ab import Arm
from runtime.llm import ChatMessage, LlmGateway, TextSink
from runtime.participant import ParticipantMemory, uses_memory
from runtime.trace import StepTrace, clock, trace_record
from storage.conversations import TurnRecord

if TYPE_CHECKING:
    from runtime.handoff import Handover
    from runtime.knowledge.gateway import KnowledgeGateway
    from runtime.tools.base import ToolCallRecord
    from runtime.tools.gateway import ToolGateway
    from runtime.turn.session import TurnSession


# End users, a builder's sandbox, a test case, an evaluation run's row (only live turns count
# toward budgets and metrics, and only they can be handed to the team).
TurnMode = Literal["live", "try", "test", "eval"]


class BotAsker(Protocol):
    """Asks another bot of the same team (its production version) on behalf of a turn (the `bot`
    node); `depth` is how many bots deep the question already is."""

    async def __call__(self, *, bot: str, text: str, depth: int) -> TurnOutput: ...


@dataclass(slots=True)
class TurnContext:
    """What a node sees of a turn. `state` carries values between nodes (passages, extractions).
    `knowledge` and `bot_id` are what the `retrieve` node searches (None: no knowledge here).

    `text` is what the pipeline reads (a guardrail may mask it); `stored_text`, when set, is what
    the transcript keeps instead of the words as said. `participant` is the end user's memory
    (`user` names them); `ask_bot` reaches the team's other bots (None: not from here).
    `tools` calls the bot's tools (None: no tools here); each call is added to `tool_calls`.
    `handover` hands the live conversation to the team (None: not from here); `handed_over`
    names where a step handed it (`runtime.handoff`). `steps` is the turn's trace so far, timed
    from `started` (`runtime.trace`). `stream` takes the answer's text as it is written (the
    channel shows it as it comes; None: the channel waits for the whole answer)."""

    spec: BotSpec
    text: str
    history: list[ChatMessage]
    llm: LlmGateway
    state: dict[str, Any] = field(default_factory=dict)
    knowledge: KnowledgeGateway | None = None
    bot_id: int | None = None
    team_id: int | None = None
    user: str = ""
    participant: ParticipantMemory = field(default_factory=ParticipantMemory)
    mode: TurnMode = "live"
    stored_text: str | None = None
    ask_bot: BotAsker | None = None
    depth: int = 0
    # Set by the turn engine (`runtime.turn.runner`): what runs and where the turn is kept.
    compiled: CompiledBot | None = None
    session: TurnSession | None = None
    channel: str = ""
    version: int | None = None
    tools: ToolGateway | None = None
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    handover: Handover | None = None
    handed_over: str | None = None
    steps: list[StepTrace] = field(default_factory=list)
    started: float = field(default_factory=clock)
    stream: TextSink | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        """Unknown (None) on either side stays unknown: an unknown cost is never shown as 0."""
        return Usage(
            prompt_tokens=_sum(self.prompt_tokens, other.prompt_tokens),
            completion_tokens=_sum(self.completion_tokens, other.completion_tokens),
            cost_usd=_sum(self.cost_usd, other.cost_usd),
        )


_N = TypeVar("_N", int, float)


def _sum(a: _N | None, b: _N | None) -> _N | None:
    return None if a is None or b is None else a + b


@dataclass(frozen=True, slots=True)
class NodeResult:
    reply: str | None = None
    usage: Usage = Usage(0, 0, 0.0)
    error: str | None = None
    next: str | None = None  # overrides the node's static `next` (routers)
    trace: Mapping[str, Any] | None = None  # what the step tells its turn's trace


class Node(Protocol):
    """One step of a pipeline; `next` is the node that follows unless the result says otherwise.

    `answers`: the kind replies (a step with no way on must). `successors`: every step the node
    may go on to, as (where the spec names it, step id), e.g. ("routes[1].to", "refunds")."""

    kind: ClassVar[str]
    answers: ClassVar[bool]

    @property
    def id(self) -> str: ...

    @property
    def next(self) -> str | None: ...

    @property
    def successors(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def uses_memory(self) -> bool:
        """True when the node reads or writes participant memory (the turn loads it only then)."""
        ...

    async def run(self, ctx: TurnContext) -> NodeResult: ...


NodeFactory = Callable[[PipelineNode, BotSpec], Node]


class CompileError(ValueError):
    """A pipeline that cannot run; the message names the node."""


@dataclass(frozen=True, slots=True)
class TurnOutput:
    """A turn's answer. `step` is the step whose reply ended the turn (None: the fallback, or a
    turn step such as a guardrail answered: `blocked` names it); `path` the steps run, in order;
    `tool_calls` the tools called, in order. `handed_over`: the turn handed the conversation to
    the team's room of that name; `silent`: a person of the team has the conversation, so the
    bot said nothing (only the user's message is kept). `steps`: what each step did."""

    reply: str
    usage: Usage
    error: str | None
    step: str | None = None
    path: tuple[str, ...] = ()
    blocked: str | None = None
    tool_calls: tuple[ToolCallRecord, ...] = ()
    handed_over: str | None = None
    silent: bool = False
    steps: tuple[StepTrace, ...] = ()


MAX_TURN_STEPS = 32  # steps run in one turn, loops included


def turn_records(
    text: str,
    output: TurnOutput,
    *,
    version: int | None,
    latency_ms: float,
    arm: Arm | None = None,
    ctx: TurnContext,
    said_parts: list[dict[str, Any]] | None = None,
) -> list[TurnRecord]:
    """The two stored messages of a turn. A failed turn marks both, and so does a turn a guard
    answered (`blocked: NAME`): neither is history for the next turn. The answer keeps the
    turn's tool calls (time, outcome, size) as its parts, the A/B arm that answered and the
    turn's trace; the end user's message keeps `said_parts` (a voice note's length)."""
    error = output.error or (f"blocked: {output.blocked}" if output.blocked else None)
    said = TurnRecord(role="user", text=text, version=version, error=error, parts=said_parts)
    if output.silent:
        return [said]
    return [
        said,
        TurnRecord(
            role="assistant",
            text=output.reply,
            version=version,
            latency_ms=round(latency_ms, 2),
            prompt_tokens=output.usage.prompt_tokens,
            completion_tokens=output.usage.completion_tokens,
            cost_usd=output.usage.cost_usd,
            error=error,
            parts=[tool_call_part(record) for record in output.tool_calls] or None,
            ab_test_id=arm.test_id if arm else None,
            variant=arm.variant if arm else None,
            trace=trace_record(output, ctx),
        ),
    ]


def tool_call_part(record: ToolCallRecord) -> dict[str, Any]:
    """A tool call as the stored answer keeps it (a part of the assistant's message)."""
    return {
        "type": "tool_call",
        "function": record.function,
        "arguments": record.arguments,
        "status": record.status,
        "ms": record.ms,
        "size": record.size,
        "detail": record.detail,
    }


@dataclass(frozen=True, slots=True)
class CompiledBot:
    """A version ready to answer: built once per version, swapped when a pointer moves."""

    spec: BotSpec
    nodes: dict[str, Node]
    entry: str
    uses_memory: bool = False  # some step (or the prompt) reads or writes participant memory

    async def run(self, ctx: TurnContext) -> TurnOutput:
        usage = Usage(0, 0, 0.0)
        replies: list[str] = []
        error: str | None = None
        answered: str | None = None
        path: list[str] = []
        current = self.entry
        for _ in range(MAX_TURN_STEPS):
            node = self.nodes[current]
            path.append(current)
            called = len(ctx.tool_calls)
            began = clock()
            result = await node.run(ctx)
            ctx.steps.append(
                StepTrace(
                    id=current,
                    kind=node.kind,
                    at_ms=(began - ctx.started) * 1000,
                    ms=(clock() - began) * 1000,
                    prompt_tokens=result.usage.prompt_tokens,
                    completion_tokens=result.usage.completion_tokens,
                    cost_usd=result.usage.cost_usd,
                    error=result.error,
                    next=None if result.error else result.next or node.next,
                    detail=result.trace,
                    tools=tuple(ctx.tool_calls[called:]),
                )
            )
            usage = usage + result.usage
            if result.reply:
                replies.append(result.reply)
                answered = current
            if result.error:
                error = result.error
                break
            following = result.next or node.next
            if following is None:
                break
            current = following
        else:
            error = (
                f"pipeline: the turn ran {MAX_TURN_STEPS} steps without ending "
                f"(it goes round {_cycle(path)})"
            )
        reply = "\n\n".join(replies) if replies else self.spec.fallback
        return TurnOutput(
            reply=reply,
            usage=usage,
            error=error,
            step=answered if replies else None,
            path=tuple(path),
            tool_calls=tuple(ctx.tool_calls),
            handed_over=ctx.handed_over,
            steps=tuple(ctx.steps),
        )


def _cycle(path: list[str]) -> str:
    """The loop a turn ended in, from the last step back to its previous visit: "a -> b -> a"."""
    last = path[-1]
    start = max((n for n, step in enumerate(path[:-1]) if step == last), default=0)
    return " -> ".join(path[start:])


def compile_spec(spec: BotSpec) -> CompiledBot:
    """Build and check the node graph (`CompileError`: one line naming the step).

    Each kind checks its own params; then the graph rules: unique ids, every reference names a
    step, every step reachable from the first, no dead end (a step with no way on answers), no
    loop without a way out, at most `MAX_NODES` steps."""
    from runtime.nodes import NODE_KINDS

    definitions = spec.steps()
    if len(definitions) > MAX_NODES:
        raise CompileError(f"pipeline: at most {MAX_NODES} steps (this one has {len(definitions)})")
    nodes: dict[str, Node] = {}
    for definition in definitions:
        if definition.id in nodes:
            raise CompileError(f"step '{definition.id}': two steps have this id")
        nodes[definition.id] = NODE_KINDS[definition.kind](definition, spec)
    entry = definitions[0].id
    _check_graph(nodes, entry)
    memory = uses_memory(spec.prompt) or any(node.uses_memory for node in nodes.values())
    return CompiledBot(spec=spec, nodes=nodes, entry=entry, uses_memory=memory)


def _check_graph(nodes: dict[str, Node], entry: str) -> None:
    for node in nodes.values():
        for where, target in node.successors:
            if target not in nodes:
                raise CompileError(f"step '{node.id}': {where} names no step '{target}'")
    reached = _reachable([entry], lambda step: (t for _, t in nodes[step].successors))
    for step, node in nodes.items():
        if step not in reached:
            raise CompileError(
                f"step '{step}': no step leads to it (the pipeline starts at '{entry}')"
            )
        if not node.successors and not node.answers:
            raise CompileError(
                f"step '{step}': {node.kind} steps do not answer, so it needs a next step"
            )
    ends = [step for step, node in nodes.items() if not node.successors]
    before: dict[str, list[str]] = {step: [] for step in nodes}
    for step, node in nodes.items():
        for _, target in node.successors:
            before[target].append(step)
    way_out = _reachable(ends, lambda step: before[step])
    trapped = [step for step in nodes if step not in way_out]
    if trapped:
        loop = _trap(nodes, trapped[0])
        first = min(loop, key=list(nodes).index)  # named by its first step in the pipeline
        at = loop.index(first)
        shown = " -> ".join([*loop[at:], *loop[:at], first])
        raise CompileError(f"step '{first}': it goes round {shown} with no way out")


def _reachable(starts: Iterable[str], onward: Callable[[str], Iterable[str]]) -> set[str]:
    seen = set(starts)
    todo = list(seen)
    while todo:
        for step in onward(todo.pop()):
            if step not in seen:
                seen.add(step)
                todo.append(step)
    return seen


def _trap(nodes: dict[str, Node], step: str) -> list[str]:
    """The loop a step without a way out falls into, each step once. Every successor of such a
    step has no way out either, so following the first one always comes back round."""
    path = [step]
    while (following := nodes[path[-1]].successors[0][1]) not in path:
        path.append(following)
    return path[path.index(following) :]
