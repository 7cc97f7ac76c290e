"""Bot specs: validation with human messages, content hashes, and typed edits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from builders.edit import SETTABLE_FIELDS, apply_changes, coerce_field
from builders.spec import DEFAULT_PROMPT, OFFLINE_MODEL, BotSpec, Retrieval, source_id
from builders.validation import SpecError, not_storable, parse_spec
from tests.factories import spec_data

NAME_RULE = "name: use 2-40 characters: lowercase letters, digits and '-', not starting with '-'"


def problems(data: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.problems


def with_fields(**fields: Any) -> dict[str, Any]:
    return spec_data("ok-bot", **fields)


# -- validation -----------------------------------------------------------------------------


def test_defaults_make_a_valid_offline_bot() -> None:
    spec = parse_spec({"name": "faq-bot"})
    assert spec.model == OFFLINE_MODEL and spec.prompt == DEFAULT_PROMPT
    assert (spec.temperature, spec.history) == (0.7, 10)
    assert spec.knowledge == spec.pipeline == spec.tests == []


@pytest.mark.parametrize("name", ["a", "-bot", "Bot", "bot_1", "x" * 41, "faq bot", "bot!", ""])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    assert problems({"name": name}) == [NAME_RULE]


@pytest.mark.parametrize("name", ["ab", "faq-bot", "bot-2", "2nd-bot", "x" * 40])
def test_good_names(name: str) -> None:
    assert parse_spec({"name": name}).name == name


def test_a_name_is_required() -> None:
    assert problems({"prompt": "hi"}) == ["name: is required"]


def test_a_name_must_be_text() -> None:
    [problem] = problems({"name": 10})
    assert problem.startswith("name: ")


def test_unknown_fields_are_named() -> None:
    assert problems(with_fields(colour="red")) == ["colour: unknown field"]
    nested = with_fields(guardrails={"max_input_chars": 10, "shout": True})
    assert problems(nested) == ["guardrails.shout: unknown field"]


@pytest.mark.parametrize(
    ("temperature", "problem"),
    [
        (-0.1, "temperature: must be at least 0"),
        (2.01, "temperature: must be at most 2"),
        (100, "temperature: must be at most 2"),
        ("hot", "temperature: must be a number"),
    ],
)
def test_temperature_must_be_between_0_and_2(temperature: object, problem: str) -> None:
    [found] = problems(with_fields(temperature=temperature))
    assert found.startswith(problem)


@pytest.mark.parametrize("temperature", [0, 0.0, 1.3, 2, "1.5"])
def test_temperatures_in_range(temperature: object) -> None:
    assert parse_spec(with_fields(temperature=temperature)).temperature == float(temperature)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("history", "problem"),
    [
        (-1, "history: must be at least 0"),
        (101, "history: must be at most 100"),
        (2.5, "history: must be a whole number"),
        ("many", "history: must be a whole number"),
    ],
)
def test_history_bounds(history: object, problem: str) -> None:
    assert problems(with_fields(history=history)) == [problem]


@pytest.mark.parametrize("history", [0, 1, 100])
def test_history_in_bounds(history: int) -> None:
    assert parse_spec(with_fields(history=history)).history == history


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"name": "Bad", "history": -1, "colour": "red"})
    assert found == [NAME_RULE, "history: must be at least 0", "colour: unknown field"]
    with pytest.raises(SpecError) as caught:
        parse_spec({"name": "Bad", "history": -1, "colour": "red"})
    assert str(caught.value) == "; ".join(found)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("data", [[1, 2], "name: faq-bot", None, 42])
def test_a_spec_must_be_a_mapping(data: object) -> None:
    assert problems(data) == ["spec: expected a mapping of fields (name, prompt, model, ...)"]


def test_text_limits() -> None:
    assert problems(with_fields(fallback="")) == ["fallback: must not be empty"]
    assert problems(with_fields(description="x" * 501)) == [
        "description: is too long (at most 500 characters)"
    ]
    assert problems(with_fields(model="")) == ["model: must not be empty"]


def test_a_bad_regex_expectation_is_named() -> None:
    test = {"turns": ["hi"], "expect": {"kind": "regex", "value": "(unclosed"}}
    [found] = problems(with_fields(tests=[test]))
    assert found.startswith("tests[0].expect: not a valid regular expression (")


def test_expectations_and_turns() -> None:
    good = {"turns": ["hi", "refunds?"], "expect": {"kind": "regex", "value": r"\d+ days"}}
    assert parse_spec(with_fields(tests=[good])).tests[0].turns == ["hi", "refunds?"]
    no_turns = {"turns": [], "expect": {"kind": "contains", "value": "x"}}
    assert problems(with_fields(tests=[good, no_turns])) == ["tests[1].turns: must not be empty"]
    bad_kind = {"turns": ["hi"], "expect": {"kind": "vibes", "value": "x"}}
    [found] = problems(with_fields(tests=[bad_kind]))
    assert found.startswith("tests[0].expect.kind: ")


def test_knowledge_is_pinned_by_content_hash() -> None:
    good = {"id": source_id(b"refund policy"), "name": "refunds.pdf"}
    assert parse_spec(with_fields(knowledge=[good])).knowledge[0].name == "refunds.pdf"
    bad = {"id": "md5:abc", "name": "refunds.pdf"}
    assert problems(with_fields(knowledge=[good, bad])) == [
        "knowledge[1].id: has an invalid format"
    ]


def test_a_pipeline_node_must_point_at_a_known_node() -> None:
    dangling = [{"id": "a", "kind": "llm", "next": "b"}]
    assert problems(with_fields(pipeline=dangling)) == [
        "pipeline: node 'a' points to unknown node 'b'"
    ]
    wired = [{"id": "a", "kind": "retrieve", "next": "b"}, {"id": "b", "kind": "llm"}]
    assert [n.next for n in parse_spec(with_fields(pipeline=wired)).pipeline] == ["b", None]


def test_pipeline_node_ids_are_unique() -> None:
    twice = [{"id": "a", "kind": "llm"}, {"id": "a", "kind": "template"}]
    assert problems(with_fields(pipeline=twice)) == ["pipeline: node ids must be unique"]


def test_pipeline_nodes_have_a_known_kind_and_a_valid_id() -> None:
    [found] = problems(with_fields(pipeline=[{"id": "a", "kind": "magic"}]))
    assert found.startswith("pipeline[0].kind: ") and "'llm'" in found
    assert problems(with_fields(pipeline=[{"id": "Not ok", "kind": "llm"}])) == [
        "pipeline[0].id: has an invalid format"
    ]


def test_guardrails_bounds() -> None:
    assert problems(with_fields(guardrails={"max_input_chars": 0})) == [
        "guardrails.max_input_chars: must be at least 1"
    ]
    assert problems(with_fields(guardrails={"max_input_chars": 4001})) == [
        "guardrails.max_input_chars: must be at most 4000"
    ]


def test_budget_bounds() -> None:
    assert problems(with_fields(budget={"monthly_usd": 0})) == [
        "budget.monthly_usd: must be more than 0"
    ]
    assert problems(with_fields(budget={"monthly_usd": 2_000_000})) == [
        "budget.monthly_usd: must be at most 1000000.0"
    ]
    assert problems(with_fields(budget={"per_user_per_minute": 0})) == [
        "budget.per_user_per_minute: must be at least 1"
    ]
    assert problems(with_fields(budget={"per_user_per_minute": 2.5})) == [
        "budget.per_user_per_minute: must be a whole number"
    ]
    assert problems(with_fields(budget={"daily_usd": 3})) == ["budget.daily_usd: unknown field"]
    spec = parse_spec(with_fields(budget={"monthly_usd": 12.5, "per_user_per_minute": 10}))
    assert (spec.budget.monthly_usd, spec.budget.per_user_per_minute) == (12.5, 10)
    assert BotSpec(name="faq-bot").budget.monthly_usd is None


def test_specs_are_values() -> None:
    spec = BotSpec(name="faq-bot")
    with pytest.raises(ValidationError):
        spec.temperature = 1.0  # type: ignore[misc]


# -- content hash ---------------------------------------------------------------------------

RICH: dict[str, Any] = {
    "name": "faq-bot",
    "description": "Answers refund questions.",
    "prompt": "Be brief.\nCite sources.",
    "model": "openai/gpt-4o-mini",
    "temperature": 0.3,
    "greeting": "Hello!",
    "fallback": "Ask a human.",
    "history": 5,
    "knowledge": [{"id": source_id(b"refunds"), "name": "refunds.pdf"}],
    "tools": [
        {
            "name": "orders",
            "url": "https://orders.test/openapi.json",
            "operations": [{"function": "getOrder", "id": "getOrder", "method": "GET"}],
        }
    ],
    "pipeline": [
        {"id": "find", "kind": "retrieve", "params": {"k": 3, "min": 0.5}, "next": "say"},
        {"id": "say", "kind": "llm"},
    ],
    "tests": [{"turns": ["refund?"], "expect": {"kind": "contains", "value": "days"}}],
    "schedules": [{"id": "daily", "cron": "0 9 * * *", "message": "Good morning"}],
    "guardrails": {"max_input_chars": 500, "blocked_terms": ["password"]},
}


def test_content_hash_is_a_sha256() -> None:
    digest = parse_spec(RICH).content_hash()
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    int(digest.removeprefix("sha256:"), 16)


def test_equal_specs_have_equal_hashes() -> None:
    spec = parse_spec(RICH)
    assert spec.content_hash() == spec.content_hash()
    reordered = dict(reversed(list(RICH.items())))
    reordered["pipeline"] = [
        {"next": "say", "params": {"min": 0.5, "k": 3}, "kind": "retrieve", "id": "find"},
        {"kind": "llm", "id": "say"},
    ]
    assert parse_spec(reordered) == spec
    assert parse_spec(reordered).content_hash() == spec.content_hash()
    assert BotSpec.model_validate(spec.model_dump()).content_hash() == spec.content_hash()
    explicit_defaults = BotSpec(name="faq-bot", temperature=0.7, history=10)
    assert explicit_defaults.content_hash() == BotSpec(name="faq-bot").content_hash()


CHANGES: list[tuple[str, Any]] = [
    ("name", "faq-bot-2"),
    ("description", "Answers refund questions!"),
    ("prompt", "Be brief.\nCite sources. "),
    ("model", "openai/gpt-4o"),
    ("temperature", 0.31),
    ("greeting", "Hello"),
    ("fallback", "Ask a person."),
    ("history", 6),
    ("knowledge", [{"id": source_id(b"refunds2"), "name": "refunds.pdf"}]),
    ("knowledge", []),
    ("tools", []),
    ("pipeline", [{"id": "say", "kind": "llm"}]),
    (
        "pipeline",
        [
            {"id": "find", "kind": "retrieve", "params": {"k": 4, "min": 0.5}, "next": "say"},
            {"id": "say", "kind": "llm"},
        ],
    ),
    ("tests", [{"turns": ["refund?"], "expect": {"kind": "regex", "value": "days"}}]),
    ("schedules", [{"id": "daily", "cron": "0 10 * * *", "message": "Good morning"}]),
    ("guardrails", {"max_input_chars": 500, "blocked_terms": []}),
    ("guardrails", {"max_input_chars": 500, "blocked_terms": ["password"], "pii": True}),
    ("budget", {"monthly_usd": 5}),
    ("budget", {"per_user_per_minute": 3}),
]


@pytest.mark.parametrize(
    ("field", "value"), CHANGES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CHANGES)]
)
def test_any_change_changes_the_hash(field: str, value: Any) -> None:
    changed = parse_spec({**RICH, field: value})
    assert changed != parse_spec(RICH)
    assert changed.content_hash() != parse_spec(RICH).content_hash()


def test_the_order_of_list_items_counts() -> None:
    swapped = {**RICH, "pipeline": list(reversed(RICH["pipeline"]))}
    assert parse_spec(swapped).content_hash() != parse_spec(RICH).content_hash()


def test_source_ids_hash_the_bytes() -> None:
    assert source_id(b"abc") == source_id(b"abc") != source_id(b"abd")
    assert source_id(b"abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


# -- edits ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        ("temperature", "0.3", 0.3),
        ("temperature", " 1 ", 1.0),
        ("history", "4", 4),
        ("prompt", "Be nice", "Be nice"),
        ("model", "openai/gpt-4o-mini", "openai/gpt-4o-mini"),
        ("greeting", "  spaced  ", "  spaced  "),
    ],
)
def test_coerce_field_types_what_was_typed(field: str, raw: str, value: object) -> None:
    coerced = coerce_field(field, raw)
    assert coerced == value and type(coerced) is type(value)


@pytest.mark.parametrize(
    ("field", "raw", "message"),
    [
        ("temperature", "warm", "temperature: must be a number, got 'warm'"),
        ("temperature", "", "temperature: must be a number, got ''"),
        ("history", "4.5", "history: must be a whole number, got '4.5'"),
        ("history", "ten", "history: must be a whole number, got 'ten'"),
    ],
)
def test_coerce_field_bad_numbers(field: str, raw: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        coerce_field(field, raw)
    assert caught.value.problems == [message]


@pytest.mark.parametrize("field", ["colour", "name", "knowledge", "pipeline"])
def test_coerce_field_only_settable_fields(field: str) -> None:
    with pytest.raises(SpecError) as caught:
        coerce_field(field, "x")
    assert caught.value.problems == [
        f"{field}: unknown field; you can set {', '.join(SETTABLE_FIELDS)}"
    ]


def test_apply_changes_returns_a_new_valid_spec() -> None:
    spec = BotSpec(name="faq-bot")
    changed = apply_changes(spec, {"temperature": 1.5, "prompt": "Be kind."})
    assert (changed.temperature, changed.prompt) == (1.5, "Be kind.")
    assert (spec.temperature, spec.prompt) == (0.7, DEFAULT_PROMPT)  # specs are values
    assert apply_changes(spec, {}) == spec


def test_apply_changes_refuses_a_rename() -> None:
    spec = BotSpec(name="faq-bot")
    with pytest.raises(SpecError) as caught:
        apply_changes(spec, {"name": "other-bot"})
    assert caught.value.problems == [
        "name: a bot cannot be renamed; export it and import it under a new name"
    ]
    assert apply_changes(spec, {"name": "faq-bot", "history": 2}).history == 2  # same name: fine


def test_apply_changes_validates_the_whole_spec() -> None:
    spec = BotSpec(name="faq-bot")
    with pytest.raises(SpecError) as caught:
        apply_changes(spec, {"temperature": 9, "history": -2})
    assert caught.value.problems == [
        "temperature: must be at most 2.0",
        "history: must be at least 0",
    ]
    with pytest.raises(SpecError, match="colour: unknown field"):
        apply_changes(spec, {"colour": "red"})


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "2.5"])
def test_typed_numbers_out_of_range_are_refused(raw: str) -> None:
    with pytest.raises(SpecError, match=r"^temperature: "):
        apply_changes(BotSpec(name="faq-bot"), {"temperature": coerce_field("temperature", raw)})


def test_an_edit_then_back_restores_the_hash() -> None:
    spec = parse_spec(RICH)
    there = apply_changes(spec, {"prompt": "Different."})
    back = apply_changes(there, {"prompt": RICH["prompt"]})
    assert there.content_hash() != spec.content_hash()
    assert back == spec and back.content_hash() == spec.content_hash()


# -- what may be stored ---------------------------------------------------------------------


def test_a_spec_with_every_feature_is_storable() -> None:
    assert not_storable(parse_spec(with_fields())) == []
    assert not_storable(parse_spec(RICH)) == []


def test_unused_guardrails_and_budget_leave_the_spec_and_its_hash_as_they_were() -> None:
    data = BotSpec(name="faq-bot").model_dump(mode="json")
    assert "budget" not in data
    assert data["guardrails"] == {"max_input_chars": 4000, "blocked_terms": []}
    used = parse_spec(with_fields(guardrails={"pii": True}, budget={"monthly_usd": 5}))
    dumped = used.model_dump(mode="json")
    assert dumped["guardrails"]["pii"] is True and "moderation" not in dumped["guardrails"]
    assert dumped["budget"] == {"monthly_usd": 5.0}
    assert parse_spec(dumped) == used


def test_guardrails_and_budgets_are_storable_but_moderation_needs_a_provider_model() -> None:
    guarded = {"blocked_terms": ["password"], "pii": True, "max_input_chars": 500}
    budget = {"monthly_usd": 20, "per_user_per_minute": 5}
    assert not_storable(parse_spec(with_fields(guardrails=guarded, budget=budget))) == []
    moderated = with_fields(guardrails={"moderation": True})
    assert not_storable(parse_spec({**moderated, "model": OFFLINE_MODEL})) == [
        "guardrails.moderation: moderation needs a provider model (this bot's model is offline)"
    ]
    assert not_storable(parse_spec({**moderated, "model": "openai/gpt-4o-mini"})) == []


@pytest.mark.parametrize(
    "token",
    [
        "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
        "xoxp-1234567890-0987654321-AbCdEfGhIjKl",
        "xapp-1-A0123ABC-4567-abcdef0123",
        "xoxe-1-My0xLTEyMzQ1Njc4OTAtMTIz",
    ],
)
def test_a_bot_token_anywhere_in_a_specs_text_is_not_storable(token: str) -> None:
    case = {"turns": ["hi", f"use {token}"], "expect": {"kind": "contains", "value": "ok"}}
    spec = parse_spec(with_fields(greeting=f"Hi ({token})", tests=[case]))
    refusal = "that looks like a bot token: secrets are never stored in a bot's text"
    assert not_storable(spec) == [f"greeting: {refusal}", f"tests: {refusal}"]


def test_text_that_only_resembles_a_token_is_storable() -> None:
    spec = parse_spec(with_fields(prompt="Open 9:30 to 17:00; ask for xoxo-hugs; ticket 12:34"))
    assert not_storable(spec) == []


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"tests": [{"turns": ["hi"], "expect": {"kind": "contains", "value": "x"}}] * 501},
            "tests: has too many items (at most 500)",
        ),
        (
            {"tests": [{"turns": ["x" * 4001], "expect": {"kind": "contains", "value": "x"}}]},
            "tests[0].turns[0]: is too long (at most 4000 characters)",
        ),
        (
            {"tests": [{"turns": ["x"] * 21, "expect": {"kind": "contains", "value": "x"}}]},
            "tests[0].turns: has too many items (at most 20)",
        ),
        (
            {"guardrails": {"blocked_terms": ["x" * 10_000_000]}},
            "guardrails.blocked_terms[0]: is too long (at most 200 characters)",
        ),
        (
            {"pipeline": [{"id": "t", "kind": "template", "params": {"text": "x" * 20_001}}]},
            "pipeline[0].params: too long: 20012 characters (at most 20000 in all)",
        ),
    ],
)
def test_spec_limits(fields: dict[str, Any], problem: str) -> None:
    assert problem in problems(with_fields(**fields))


# -- pipeline step params ---------------------------------------------------------------------


def one_step(**fields: Any) -> dict[str, Any]:
    return with_fields(pipeline=[{"id": "s", "kind": "template", **fields}])


def test_step_params_hold_json_values() -> None:
    params = {
        "text": "hi",
        "n": 3,
        "score": 0.5,
        "on": True,
        "none": None,
        "routes": [{"keyword": "refund", "to": "s"}, {"intent": "billing", "to": "s"}],
        "fields": {"properties": {"plan": {"type": "string", "enum": ["basic", "pro"]}}},
    }
    spec = parse_spec(one_step(params=params))
    assert spec.pipeline[0].params == params
    assert BotSpec.model_validate(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        (
            {"text": "x" * 19_990},
            "pipeline[0].params: too long: 20001 characters (at most 20000 in all)",
        ),
        (
            {"routes": [{"keyword": "x" * 100, "to": "s"}] * 200},
            "pipeline[0].params: too long: 24812 characters (at most 20000 in all)",
        ),
        (
            {"a": [[[[[[[["too deep"]]]]]]]]},
            "pipeline[0].params: nested too deeply (at most 8 levels)",
        ),
        ({"score": float("nan")}, "pipeline[0].params: numbers must be finite"),
        ({"score": float("inf")}, "pipeline[0].params: numbers must be finite"),
        (
            {"when": {1, 2}},
            "pipeline[0].params: 'set' is not allowed: use text, numbers, true/false, null, "
            "lists and mappings",
        ),
        ({"map": {1: "one"}}, "pipeline[0].params: keys must be text, not 1"),
        ({f"k{i}": i for i in range(51)}, "pipeline[0].params: has too many items (at most 50)"),
    ],
)
def test_step_params_are_bounded_json(params: dict[str, Any], problem: str) -> None:
    assert problems(one_step(params=params)) == [problem]


def test_a_very_deep_value_is_one_short_refusal() -> None:
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(10_000):
        inner["a"] = {}
        inner = inner["a"]
    assert problems(one_step(params=deep)) == [
        "pipeline[0].params: nested too deeply (at most 8 levels)"
    ]


def test_params_that_are_not_a_mapping_are_refused() -> None:
    [found] = problems(one_step(params=["text"]))
    assert found.startswith("pipeline[0].params: ")


@pytest.mark.parametrize("kind", ["llm", "retrieve", "router", "template", "extract", "bot"])
def test_every_node_kind_is_a_kind(kind: str) -> None:
    assert parse_spec(one_step(kind=kind)).pipeline[0].kind == kind


def test_knowledge_settings_are_set_by_name_and_checked() -> None:
    spec = BotSpec(name="ab")
    assert coerce_field("knowledge.k", "6") == 6
    assert apply_changes(spec, {"knowledge.k": 6}).retrieval == Retrieval(k=6)
    # The section given whole and one of its keys: both apply, whatever their order.
    both = apply_changes(spec, {"knowledge.k": 6, "retrieval": {"min_score": 0.5}})
    assert both.retrieval == Retrieval(k=6, min_score=0.5)
    assert apply_changes(spec, {"retrieval": None, "knowledge.k": 2}).retrieval.k == 2
    with pytest.raises(SpecError, match="retrieval: must be a mapping"):
        apply_changes(spec, {"retrieval": "x", "knowledge.k": 6})
    for field, raw, said in (
        ("knowledge.k", "50", "knowledge.k: input should be less than or equal to 20"),
        ("knowledge.k", "six", "knowledge.k: must be a whole number, got 'six'"),
        ("knowledge.min_score", "2", "knowledge.min_score: input should be less than or equal"),
    ):
        with pytest.raises(SpecError, match=said):
            coerce_field(field, raw)
    # Left out of the spec when default, so specs written before it keep their hash.
    assert "retrieval" not in spec.model_dump(mode="json")
