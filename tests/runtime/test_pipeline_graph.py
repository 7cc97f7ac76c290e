"""compile_spec's graph rules (each refused in one line naming the step), the 32-steps-a-turn
cap, and a five-step flow run end to end with a context built by hand."""

from __future__ import annotations

import pytest

from builders.spec import BotSpec, source_id
from runtime.llm import ChatMessage
from runtime.participant import MEMORY_RULE
from runtime.pipeline import MAX_TURN_STEPS, compile_spec
from tests.fakes.llm import FakeLLM
from tests.runtime.flows import MODEL, compiled, gateway, refusal, router, says, step, turn

SAY = step("say", "llm")


def test_the_plain_bot_is_llm_or_retrieve_then_llm() -> None:
    assert list(compile_spec(BotSpec(name="plain-bot")).nodes) == ["llm"]
    knowing = BotSpec(name="plain-bot", knowledge=[{"id": source_id(b"x"), "name": "x.md"}])
    bot = compile_spec(knowing)
    assert list(bot.nodes) == ["retrieve", "llm"] and bot.entry == "retrieve"


def test_every_reference_names_a_step() -> None:
    triage = router({"keyword": "a", "to": "say"}, {"keyword": "b", "to": "sya"}, default="say")
    assert refusal(triage, SAY) == "step 'triage': routes[1].to names no step 'sya'"
    assert refusal(router({"keyword": "a", "to": "say"}, default="x"), SAY) == (
        "step 'triage': default names no step 'x'"
    )


def test_every_step_is_reachable_from_the_first() -> None:
    assert refusal(step("find", "retrieve", "say"), SAY, says("lost", "hi")) == (
        "step 'lost': no step leads to it (the pipeline starts at 'find')"
    )


@pytest.mark.parametrize("kind", ["retrieve", "extract"])
def test_a_step_with_no_way_on_must_answer(kind: str) -> None:
    params = {"fields": {"properties": {"age": {"type": "integer"}}}} if kind == "extract" else {}
    assert refusal(step("last", kind, **params)) == (
        f"step 'last': {kind} steps do not answer, so it needs a next step"
    )


def test_answering_steps_may_end_a_turn_or_go_on() -> None:
    bot = compiled(says("hello", "Hi!", "say"), SAY)
    assert bot.entry == "hello" and bot.nodes["say"].successors == ()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [says("a", "hi", "b"), step("b", "retrieve", "a")],
            "step 'a': it goes round a -> b -> a with no way out",
        ),
        ([says("a", "hi", "a")], "step 'a': it goes round a -> a with no way out"),
        (
            [
                router({"keyword": "x", "to": "b"}, default="c"),
                step("b", "retrieve", "c"),
                step("c", "retrieve", "b"),
            ],
            "step 'b': it goes round b -> c -> b with no way out",
        ),
    ],
)
def test_a_loop_needs_a_way_out(steps: list[dict[str, object]], message: str) -> None:
    assert refusal(*steps) == message


def test_a_loop_with_a_way_out_is_accepted() -> None:
    again = router({"keyword": "done", "to": "say"}, default="note", step_id="again")
    bot = compiled(says("note", "noted", "again"), again, SAY)
    assert bot.entry == "note"


def test_a_handoff_step_needs_a_target() -> None:
    assert refusal(step("human", "handoff")).startswith(  # built, but needs a target first
        "step 'human': a handoff step needs somewhere to hand over"
    )


async def test_a_turn_that_keeps_looping_ends_with_an_error_naming_the_loop() -> None:
    again = router({"keyword": "done", "to": "say"}, default="note", step_id="again")
    bot = compiled(says("note", "noted", "again"), again, SAY)
    output, _ = await turn(bot, "hello")
    assert len(output.path) == MAX_TURN_STEPS
    assert output.path[:4] == ("note", "again", "note", "again")
    assert output.error == (
        "pipeline: the turn ran 32 steps without ending (it goes round again -> note -> again)"
    )
    output, _ = await turn(bot, "done")
    assert output.error is None and output.path == ("note", "again", "say")


# -- a five-step flow, end to end ------------------------------------------------------------------

FLOW = [
    router(
        {"keyword": "refund", "to": "ask"},
        {"intent": "questions about money back", "to": "ask"},
        default="other",
    ),
    step(
        "ask",
        "extract",
        "note",
        fields={
            "properties": {
                "email": {"type": "string", "format": "email"},
                "order": {"type": "string", "pattern": "#(\\d{4,})"},
            },
            "required": ["email", "order"],
        },
    ),
    says(
        "note",
        "{% if state.missing %}Please send your {{ state.missing|join(' and ') }}."
        "{% else %}Order {{ participant.order }} for {{ participant.email }}: noted.{% endif %}",
        "say",
    ),
    step("say", "llm", prompt="Answer about refunds. The customer: {participant.email}"),
    says("other", "I only handle refunds."),
]


@pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
async def test_a_five_step_flow_runs_end_to_end(llm: FakeLLM) -> None:
    bot = compiled(*FLOW, model=MODEL)
    assert bot.uses_memory
    llm.reply("1", prompt_tokens=20, completion_tokens=1)  # the router's intent
    llm.reply(
        '{"email": "ann@example.com", "order": "#4567"}', prompt_tokens=50, completion_tokens=9
    )
    llm.reply("Refunds take 5 days.", prompt_tokens=40, completion_tokens=6)
    history = [ChatMessage("user", "hi"), ChatMessage("assistant", "Hello!")]
    output, ctx = await turn(
        bot, "Can I get my money back? ann@example.com", llm=gateway(llm), history=history
    )
    assert output.error is None
    assert output.path == ("triage", "ask", "note", "say") and output.step == "say"
    # The pattern's first group is the value, whether the model or the offline rules found it.
    assert ctx.participant.values == {"email": "ann@example.com", "order": "4567"}
    assert output.reply == "Order 4567 for ann@example.com: noted.\n\nRefunds take 5 days."
    assert (output.usage.prompt_tokens, output.usage.completion_tokens) == (110, 16)
    assert ctx.state["route"] == {"step": "triage", "branch": 1, "to": "ask"}
    system = llm.calls[2].messages[0]
    assert system == {
        "role": "system",
        "content": f"Answer about refunds. The customer: «ann@example.com»\n\n{MEMORY_RULE}",
    }
    assert [m["content"] for m in llm.calls[2].messages[1:]] == [
        "hi",
        "Hello!",
        "Can I get my money back? ann@example.com",
    ]


async def test_the_five_step_flow_offline() -> None:
    offline = [
        FLOW[0] | {"params": {**FLOW[0]["params"], "routes": FLOW[0]["params"]["routes"][:1]}},
        *FLOW[1:],
    ]
    bot = compiled(*offline)
    output, ctx = await turn(bot, "refund for order #4567 please, ann@example.com")
    assert output.error is None and output.path == ("triage", "ask", "note", "say")
    assert ctx.participant.values == {"email": "ann@example.com", "order": "4567"}
    assert output.reply == (
        "Order 4567 for ann@example.com: noted.\n\nI can't answer that yet."  # offline's fallback
    )
    output, _ = await turn(bot, "hello")
    assert output.path == ("triage", "other") and output.reply == "I only handle refunds."
