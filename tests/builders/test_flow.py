"""Typed edits of a flow: where each puts a step, what a removal re-links, what is refused, and
that every edit leaves a graph that runs (checked here by the contract's rules, independently of
the module's own check)."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest

from builders import flow
from builders.flow import FlowError
from builders.spec import BotSpec, KnowledgeRef, PipelineNode
from builders.yaml_io import spec_from_yaml, spec_to_yaml

ANSWERS = {"llm", "template", "bot"}


def graph(spec: BotSpec) -> dict[str, Any]:
    """The pipeline as plain data: id -> {kind, next, params}."""
    return {s.id: {"kind": s.kind, "next": s.next, "params": s.params} for s in spec.pipeline}


def targets(step: PipelineNode) -> list[str]:
    params: Any = step.params
    if step.kind == "router":
        return [r["to"] for r in params["routes"]] + [params["default"]]
    return [step.next] if step.next else []


def assert_runs(spec: BotSpec) -> None:
    """The contract's graph rules: references exist, every step is reachable from the first, a
    step with no way on answers, routers have a route and a default."""
    steps = {s.id: s for s in spec.pipeline}
    assert steps, "an edited flow is written out"
    for step in spec.pipeline:
        assert all(t in steps for t in targets(step)), step
        if step.kind == "router":
            assert step.params["routes"] and step.params["default"], step
        elif not step.next:
            assert step.kind in ANSWERS, f"{step.id} is a dead end"
    seen = {spec.pipeline[0].id}
    queue = deque(seen)
    while queue:
        for target in targets(steps[queue.popleft()]):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(steps), f"unreachable: {set(steps) - seen}"


def plain(**fields: Any) -> BotSpec:
    return BotSpec(name="shop-bot", **fields)


KNOWLEDGE = [KnowledgeRef(id="sha256:" + "0" * 64, name="policy.md")]
REFUND = {"text": "Refunds take 5 days."}


def with_refunds() -> BotSpec:
    """router: "refund" -> refunds (template), default -> llm."""
    spec = flow.add_step(plain(), "template", "refunds", REFUND).spec
    return flow.add_route(spec, {"keyword": "refund"}, "refunds").spec


# -- the implicit flow --------------------------------------------------------------------------


def test_a_plain_bot_gets_its_implicit_flow_written_out_first() -> None:
    edited = flow.add_step(plain(), "extract", "contact", {"fields": "email"})
    assert [(s.id, s.kind, s.next) for s in edited.spec.pipeline] == [
        ("contact", "extract", "llm"),
        ("llm", "llm", None),
    ]
    assert (
        edited.said
        == "Added extract `contact` just before `llm`, the step that answers at the end."
    )
    assert_runs(edited.spec)


def test_with_knowledge_the_implicit_flow_is_retrieve_then_llm() -> None:
    spec = plain(knowledge=KNOWLEDGE)
    assert [s.id for s in spec.steps()] == ["retrieve", "llm"]
    edited = flow.add_step(spec, "extract", "contact", {"fields": ["email", "phone"]}).spec
    assert [(s.id, s.next) for s in edited.pipeline] == [
        ("retrieve", "contact"),
        ("llm", None),
        ("contact", "llm"),
    ]
    fields = graph(edited)["contact"]["params"]["fields"]
    assert fields["properties"]["email"]["format"] == "email"
    assert fields["properties"]["phone"]["format"] == "phone"
    assert_runs(edited)


# -- add ----------------------------------------------------------------------------------------


def test_a_router_goes_first_and_sends_the_rest_to_the_old_entry() -> None:
    routes = [{"keyword": "hello", "to": "llm"}]
    edited = flow.add_step(plain(), "router", "triage", {"routes": routes})
    first = edited.spec.pipeline[0]
    assert (first.id, first.params["default"]) == ("triage", "llm")
    assert "at the start" in edited.said and "`llm`" in edited.said
    assert_runs(edited.spec)


def test_a_router_without_routes_is_refused_with_the_way_to_add_one() -> None:
    with pytest.raises(FlowError, match="/route"):
        flow.add_step(plain(), "router", "triage")


def test_after_puts_a_step_between_a_step_and_what_followed_it() -> None:
    spec = flow.add_step(plain(), "extract", "contact", {"fields": "email"}).spec
    edited = flow.add_step(spec, "retrieve", "kb", {"top_k": 3}, after="contact")
    assert graph(edited.spec)["contact"]["next"] == "kb"
    assert graph(edited.spec)["kb"]["next"] == "llm"
    assert edited.said == "Added retrieve `kb` between `contact` and `llm`."
    assert_runs(edited.spec)


def test_an_answering_step_after_the_end_answers_too() -> None:
    edited = flow.add_step(plain(), "template", "thanks", {"text": "Thanks!"}, after="llm")
    assert graph(edited.spec)["llm"]["next"] == "thanks"
    assert_runs(edited.spec)


def test_an_answering_step_goes_before_the_end_and_says_how_to_route_to_it() -> None:
    edited = flow.add_step(plain(), "template", "refunds", REFUND)
    assert [s.id for s in edited.spec.pipeline] == ["refunds", "llm"]
    assert "Both answer" in edited.said and '/route "WORD" to refunds' in edited.said
    assert_runs(edited.spec)


@pytest.mark.parametrize(
    ("kind", "step_id", "params", "after", "says"),
    [
        ("template", "llm", REFUND, None, "already is a step `llm`"),
        ("template", "Bad Id", REFUND, None, "not a step id"),
        ("template", "x", REFUND, "nope", "no step `nope`; the steps are `llm`"),
        ("extract", "contact", {"fields": "email"}, "llm", "answers nothing"),
        ("router", "triage", {"routes": [{"keyword": "a", "to": "llm"}]}, "llm", "default"),
        ("template", "x", {"text": 1, "deep": [[[[[[[[[1]]]]]]]]]}, None, "deep"),
    ],
)
def test_add_refusals(
    kind: str, step_id: str, params: dict[str, Any], after: str | None, says: str
) -> None:
    with pytest.raises(FlowError, match=says):
        flow.add_step(plain(), kind, step_id, params, after=after)


def test_nothing_goes_after_a_router() -> None:
    with pytest.raises(FlowError, match="is a router"):
        flow.add_step(with_refunds(), "template", "x", REFUND, after="router")


# -- set, link ----------------------------------------------------------------------------------


def test_set_merges_params_and_none_removes_one() -> None:
    spec = flow.add_step(plain(), "retrieve", "kb", {"top_k": 3, "min_score": 0.2}).spec
    edited = flow.set_params(spec, "kb", {"top_k": 5, "min_score": None})
    assert graph(edited.spec)["kb"]["params"] == {"top_k": 5}
    assert edited.said == "Changed top_k, min_score of `kb`."


def test_set_cannot_break_the_graph() -> None:
    with pytest.raises(FlowError, match="`router` would lead to `nowhere`, which is no step"):
        flow.set_params(with_refunds(), "router", {"default": "nowhere"})
    with pytest.raises(FlowError, match="needs a default"):
        flow.set_params(with_refunds(), "router", {"default": None})
    with pytest.raises(FlowError, match="no step `nope`"):
        flow.set_params(plain(), "nope", {"x": 1})


def test_link_end_makes_a_step_answer_last_while_the_rest_stays_reachable() -> None:
    spec = flow.add_step(plain(), "template", "thanks", {"text": "Thanks!"}, after="llm").spec
    with pytest.raises(FlowError, match="nothing would lead to `thanks` any more"):
        flow.link(spec, "llm", "end")
    spec = flow.add_route(spec, {"keyword": "bye"}, "thanks").spec
    unlinked = flow.link(spec, "llm", "end")
    assert unlinked.said == "`llm` now ends."
    assert graph(unlinked.spec)["llm"]["next"] is None
    assert_runs(unlinked.spec)


def test_link_refusals() -> None:
    spec = flow.add_step(plain(), "extract", "contact", {"fields": "email"}).spec
    with pytest.raises(FlowError, match="would answer nothing and lead nowhere"):
        flow.link(spec, "contact", "end")
    with pytest.raises(FlowError, match="itself"):
        flow.link(spec, "contact", "contact")
    with pytest.raises(FlowError, match="is a router"):
        flow.link(with_refunds(), "router", "llm")
    linked = flow.link(spec, "llm", "contact")  # a loop with a way out is the compiler's to judge
    assert graph(linked.spec)["llm"]["next"] == "contact"


# -- remove -------------------------------------------------------------------------------------


def test_remove_relinks_what_led_to_the_step() -> None:
    spec = flow.add_step(plain(), "extract", "contact", {"fields": "email"}).spec
    spec = flow.add_step(spec, "retrieve", "kb", after="contact").spec
    edited = flow.remove_step(spec, "kb")
    assert graph(edited.spec)["contact"]["next"] == "llm"
    assert_runs(edited.spec)


def test_removing_the_entry_makes_where_it_went_the_entry() -> None:
    spec = flow.add_step(plain(), "extract", "contact", {"fields": "email"}).spec
    edited = flow.remove_step(spec, "contact").spec
    assert [s.id for s in edited.pipeline] == ["llm"]


def test_removing_a_route_target_drops_the_route_and_a_router_left_without_routes() -> None:
    edited = flow.remove_step(with_refunds(), "refunds")
    assert [s.id for s in edited.spec.pipeline] == ["llm"]
    assert "Router `router` had no other route" in edited.said


def test_removing_an_inner_route_target_sends_the_route_on() -> None:
    spec = flow.add_step(plain(), "retrieve", "kb").spec
    spec = flow.add_route(spec, {"keyword": "docs"}, "kb").spec
    spec = flow.add_route(spec, {"keyword": "hi"}, "llm").spec
    edited = flow.remove_step(spec, "kb").spec
    assert graph(edited)["router"]["params"]["routes"] == [
        {"keyword": "docs", "to": "llm"},
        {"keyword": "hi", "to": "llm"},
    ]
    assert_runs(edited)


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ("llm", "where router `router` sends what no route matches"),
        ("router", "nothing would lead to `refunds` any more"),
    ],
)
def test_remove_refusals(step: str, says: str) -> None:
    with pytest.raises(FlowError, match=says):
        flow.remove_step(with_refunds(), step)


def test_the_last_answering_step_stays() -> None:
    with pytest.raises(FlowError, match="last step that answers"):
        flow.remove_step(plain(), "llm")


# -- routes -------------------------------------------------------------------------------------


def test_a_route_adds_a_router_at_the_start_and_takes_its_target_off_the_main_line() -> None:
    spec = flow.add_step(plain(), "template", "refunds", REFUND).spec  # refunds -> llm
    edited = flow.add_route(spec, {"keyword": "refund"}, "refunds")
    assert graph(edited.spec) == {
        "router": {
            "kind": "router",
            "next": None,
            "params": {"routes": [{"keyword": "refund", "to": "refunds"}], "default": "llm"},
        },
        "refunds": {"kind": "template", "next": None, "params": REFUND},
        "llm": {"kind": "llm", "next": None, "params": {}},
    }
    assert edited.said == (
        'Added router `router` at the start. Messages matching "refund" now go to `refunds`; '
        "the rest go on to `llm`. `refunds` now answers only what is routed to it."
    )
    assert_runs(edited.spec)


def test_more_routes_go_into_the_router_at_the_start_and_a_same_condition_is_replaced() -> None:
    spec = with_refunds()
    spec = flow.add_route(spec, {"regex": r"order\s+\d+"}, "llm").spec
    spec = flow.add_route(spec, {"regex": r"order\s+\d+"}, "refunds").spec
    assert graph(spec)["router"]["params"]["routes"] == [
        {"keyword": "refund", "to": "refunds"},
        {"regex": r"order\s+\d+", "to": "refunds"},
    ]


def test_a_route_to_another_bot_adds_one_bot_step_for_it() -> None:
    spec = flow.add_route(plain(), {"intent": "billing questions"}, ask_bot="billing-bot")
    assert graph(spec.spec)["billing-bot"] == {
        "kind": "bot",
        "next": None,
        "params": {"bot": "billing-bot"},
    }
    assert spec.said.startswith("Added bot step `billing-bot` (it asks billing-bot).")
    again = flow.add_route(spec.spec, {"keyword": "invoice"}, ask_bot="billing-bot").spec
    assert [s.id for s in again.pipeline].count("billing-bot") == 1
    assert_runs(again)


def test_a_bot_named_with_a_leading_digit_gets_a_valid_step_id() -> None:
    spec = flow.add_route(plain(), {"keyword": "x"}, ask_bot="7-eleven").spec
    assert graph(spec)["ask-7-eleven"]["params"] == {"bot": "7-eleven"}


@pytest.mark.parametrize(
    ("match", "to", "kwargs", "says"),
    [
        ({"keyword": "x"}, "nope", {}, "no step `nope`"),
        ({"regex": "(unclosed"}, "llm", {}, "not a regular expression"),
        ({"keyword": "x"}, None, {"ask_bot": "shop-bot"}, "cannot route messages to itself"),
        ({"keyword": "x"}, "llm", {"router": "llm"}, "not a router"),
        ({"keyword": "x"}, None, {}, "say where"),
    ],
)
def test_route_refusals(
    match: dict[str, Any], to: str | None, kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(FlowError, match=says):
        flow.add_route(plain(), match, to, **kwargs)


def test_a_router_does_not_route_to_itself() -> None:
    with pytest.raises(FlowError, match="cannot route to itself"):
        flow.add_route(with_refunds(), {"keyword": "x"}, "router")


# -- asking for a value -------------------------------------------------------------------------


def test_ask_for_an_email_remembers_it_and_asks_while_unknown() -> None:
    edited = flow.ask_for(with_refunds(), "email")
    steps = graph(edited.spec)
    assert [s.id for s in edited.spec.pipeline][:2] == ["remember-email", "check-email"]
    assert steps["remember-email"] == {
        "kind": "extract",
        "next": "check-email",
        "params": {
            "fields": {
                "type": "object",
                "properties": {
                    "email": {
                        "type": "string",
                        "format": "email",
                        "description": "the person's email address",
                    }
                },
            }
        },
    }
    assert steps["check-email"]["params"] == {
        "routes": [{"participant": "email", "is": "unset", "to": "ask-email"}],
        "default": "router",
    }
    assert steps["ask-email"]["params"] == {"text": "Before we go on: what's your email address?"}
    assert_runs(edited.spec)
    with pytest.raises(FlowError, match="already remembers email"):
        flow.ask_for(edited.spec, "email")
    with pytest.raises(FlowError, match="not a field name"):
        flow.ask_for(plain(), "E-Mail!")


# -- reading ------------------------------------------------------------------------------------


def test_the_outline_text_lists_steps_by_depth_with_branches_under_routers() -> None:
    spec = flow.add_step(with_refunds(), "extract", "contact", {"fields": "email"}).spec
    spec = flow.add_route(spec, {"intent": "billing"}, ask_bot="billing-bot").spec
    assert flow.outline_text(spec) == "\n".join(
        [
            "*shop-bot* flow (5 steps, starting at `router`):",
            "`router` router",
            '    "refund" → `refunds`',
            '    intent "billing" → `billing-bot`',
            "    default → `contact`",
            '`refunds` template "Refunds take 5 days." (answers)',
            "`contact` extract email → `llm`",
            "`billing-bot` bot asks billing-bot (answers)",
            "`llm` llm (answers)",
        ]
    )


def test_a_plain_bot_outline_says_it_runs_the_plain_flow() -> None:
    assert flow.outline_text(plain()) == (
        "*shop-bot* runs the plain flow (1 step; no flow of its own yet):\n`llm` llm (answers)"
    )


def test_the_outline_has_edges_and_depths() -> None:
    view = flow.outline(with_refunds())
    assert view.entry == "router"
    assert [(e.source, e.target, e.label) for e in view.edges] == [
        ("router", "refunds", '"refund"'),
        ("router", "llm", "default"),
    ]
    assert dict(view.depth) == {"router": 0, "refunds": 1, "llm": 1}


def test_a_flow_built_by_edits_survives_a_yaml_round_trip() -> None:
    spec = flow.ask_for(with_refunds(), "email").spec
    spec = flow.add_route(spec, {"regex": r"order\s+\d+"}, ask_bot="orders-bot").spec
    assert spec_from_yaml(spec_to_yaml(spec)) == spec


def test_routes_go_into_the_first_router_on_the_main_line_that_reads_the_message() -> None:
    spec = flow.ask_for(with_refunds(), "email").spec  # the email check comes first now
    spec = flow.add_route(spec, {"keyword": "invoice"}, "llm").spec
    assert [s.id for s in spec.pipeline if s.kind == "router"] == ["check-email", "router"]
    assert graph(spec)["router"]["params"]["routes"] == [
        {"keyword": "refund", "to": "refunds"},
        {"keyword": "invoice", "to": "llm"},
    ]
    gated = flow.ask_for(plain(), "email").spec  # only a check of memory: a new router goes first
    routed = flow.add_route(gated, {"keyword": "refund"}, "llm").spec
    assert routed.pipeline[0].id == "router"
    assert graph(routed)["router"]["params"]["default"] == "remember-email"
    assert_runs(routed)
