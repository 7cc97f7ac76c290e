"""YAML export and import of specs: round trips, and errors that say where."""

from __future__ import annotations

import pytest
import yaml

from builders.spec import BotSpec, source_id
from builders.validation import SpecError, parse_spec
from builders.yaml_io import YamlError, spec_from_yaml, spec_to_yaml
from tests.factories import spec_yaml

FULL = BotSpec.model_validate(
    {
        "name": "faq-bot",
        "description": "Answers: refunds, orders & more",
        "prompt": "line one\nline two: with colon\n  indented # not a comment\n\ttab\n",
        "model": "openai/gpt-4o-mini",
        "temperature": 0.25,
        "greeting": "¡Hola! 👋 «quotes» 'single' \"double\"",
        "fallback": "- starts like a list item",
        "history": 0,
        "knowledge": [{"id": source_id(b"doc"), "name": "refunds.pdf"}],
        "retrieval": {"k": 6, "min_score": 0.4},
        "tools": [
            {
                "name": "orders",
                "description": "Order status",
                "url": "https://orders.test/openapi.json",
                "base_url": "https://orders.test",
                "auth": "orders-key",
                "operations": [
                    {
                        "function": "getOrder",
                        "id": "getOrder",
                        "method": "GET",
                        "path": "/orders/{id}",
                        "parameters": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}},
                            "required": ["id"],
                        },
                        "places": {"id": "path"},
                    },
                    {
                        "function": "createTicket",
                        "id": "createTicket",
                        "method": "POST",
                        "path": "/tickets",
                        "changes": True,
                        "allowed": True,
                    },
                ],
            }
        ],
        "pipeline": [
            {
                "id": "find",
                "kind": "retrieve",
                "params": {"k": 3, "min_score": 0.5, "rerank": True, "tags": ["a", "b"]},
                "next": "say",
            },
            {"id": "say", "kind": "llm", "params": {"style": "null"}},
        ],
        "tests": [{"turns": ["hi", "refunds?"], "expect": {"kind": "regex", "value": r"\d+ days"}}],
        "schedules": [
            {"id": "daily", "cron": "0 9 * * 1-5", "message": "Good morning"},
            {
                "id": "digest",
                "cron": "30 17 * * FRI",
                "tz": "Europe/Lisbon",
                "message": "prompt: sum up the week",
                "to": "slack:C0001",
                "to_name": "#general",
                "grace_minutes": 0,
            },
        ],
        "followups": [{"id": "nudge", "after_minutes": 30, "message": "Still there?", "times": 2}],
        "voice": True,
        "guardrails": {
            "max_input_chars": 500,
            "blocked_terms": ["password", "yes", "no"],
            "pii": True,
            "moderation": True,
        },
        "budget": {"monthly_usd": 12.5, "per_user_per_minute": 10},
        "handoff": {"channel": "slack", "target": "C0001", "name": "#support", "tool": False},
    }
)


def test_a_full_spec_round_trips() -> None:
    text = spec_to_yaml(FULL)
    back = spec_from_yaml(text)
    assert back == FULL
    assert back.content_hash() == FULL.content_hash()
    assert spec_to_yaml(back) == text  # a stable export


def test_the_default_spec_round_trips() -> None:
    spec = BotSpec(name="ab")
    assert spec_from_yaml(spec_to_yaml(spec)) == spec


@pytest.mark.parametrize(
    "text", ["no", "yes", "on", "null", "~", "0x10", "1e3", "12", "2024-01-01", "true", ": x", "#"]
)
def test_strings_yaml_would_mistype_stay_strings(text: str) -> None:
    spec = BotSpec(name="faq-bot", prompt=text, greeting=text)
    back = spec_from_yaml(spec_to_yaml(spec))
    assert (back.prompt, back.greeting) == (text, text)


@pytest.mark.parametrize("name", ["12", "no", "on", "2024-01-01"])
def test_names_yaml_would_mistype_round_trip(name: str) -> None:
    assert spec_from_yaml(spec_to_yaml(BotSpec(name=name))).name == name


def test_the_export_is_readable() -> None:
    text = spec_to_yaml(FULL)
    assert text.startswith("name: faq-bot\n")  # fields in the spec's order, name first
    assert list(yaml.safe_load(text)) == list(BotSpec.model_fields)  # every field, defaults too
    assert "👋" in text and "¡Hola!" in text  # unicode as is, not escaped


def test_a_hand_written_spec_is_read() -> None:
    spec = spec_from_yaml(spec_yaml("faq-bot", temperature=0.2))
    assert (spec.name, spec.temperature) == ("faq-bot", 0.2)
    assert spec == parse_spec({"name": "faq-bot", "prompt": spec.prompt, "temperature": 0.2})


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("name: faq-bot\nprompt: ok\n  bad: [\n", 3),
        ("name: faq-bot\n\tprompt: x\n", 2),
        ("name: [faq-bot\n", 2),
        ("name: faq-bot\nprompt: x\n  history: 3\n", 3),
        ("name: faq-bot\nhistory: 3\n- item\n", 3),
        ("name: 'faq-bot\n", 2),
        ("{name: faq-bot\n", 2),
        ("name: faq-bot\nprompt: *nowhere\n", 2),
    ],
)
def test_malformed_yaml_names_the_line(text: str, line: int) -> None:
    with pytest.raises(YamlError) as caught:
        spec_from_yaml(text)
    message = str(caught.value)
    assert message.startswith(f"malformed YAML at line {line}: "), message
    assert isinstance(caught.value, ValueError)
    assert not isinstance(caught.value, SpecError)


@pytest.mark.parametrize("text", ["", "\n\n", "---\n", "# only a comment\n", "~\n", "null\n"])
def test_an_empty_document_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_yaml(text)
    assert caught.value.problems == ["spec: the document is empty"]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n", "[name, faq-bot]\n"])
def test_a_document_that_is_not_a_mapping_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_yaml(text)
    assert caught.value.problems == [
        "spec: expected a mapping of fields (name, prompt, model, ...)"
    ]


def test_valid_yaml_with_a_bad_spec_names_the_fields() -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_yaml("name: faq-bot\ntemperature: 3\ncolour: red\n")
    assert caught.value.problems == ["temperature: must be at most 2.0", "colour: unknown field"]


def test_a_non_text_name_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"^name: "):
        spec_from_yaml("name: 10\n")


def test_the_export_leaves_out_an_unset_budget_handoff_and_follow_ups() -> None:
    text = spec_to_yaml(BotSpec(name="faq-bot"))
    left_out = (
        "budget",
        "handoff",
        "followups",
        "voice",
        "retrieval",
    )  # so older specs keep their hash
    assert list(yaml.safe_load(text)) == [
        name for name in BotSpec.model_fields if name not in left_out
    ]
    assert spec_from_yaml(text) == BotSpec(name="faq-bot")


def test_yaml_nested_too_deeply_is_a_yaml_error() -> None:
    with pytest.raises(YamlError, match="nested too deeply"):
        spec_from_yaml("name: faq-bot\nprompt: " + "[" * 5000 + "]" * 5000 + "\n")


def test_a_flow_with_every_step_kind_and_path_tests_round_trips() -> None:
    from tests.scenarios.test_pipeline_flow import SUPPORT

    spec = parse_spec(SUPPORT)
    text = spec_to_yaml(spec)
    assert spec_from_yaml(text) == spec
    assert spec_from_yaml(text).content_hash() == spec.content_hash()
    assert "step: ask" in text and "kind: step" in text and "step: null" not in text
