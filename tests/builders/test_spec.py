"""Bot specs: validation with human messages, hashing, YAML, edits and diffs."""

from __future__ import annotations

import pytest

from builders.diff import diff_specs
from builders.edit import apply_changes, coerce_field
from builders.spec import BotSpec, source_id
from builders.validation import SpecError, parse_spec
from builders.yaml_io import YamlError, spec_from_yaml, spec_to_yaml


def problems(data: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return caught.value.problems


@pytest.mark.parametrize("name", ["a", "-bot", "Bot", "bot_1", "x" * 41, "faq bot"])
def test_bad_names_are_refused(name: str) -> None:
    assert problems({"name": name})[0].startswith("name: use 2-40 characters")


@pytest.mark.parametrize("name", ["ab", "faq-bot", "bot-2", "x" * 40])
def test_good_names(name: str) -> None:
    assert parse_spec({"name": name}).name == name


def test_messages_name_the_field() -> None:
    found = problems({"name": "ok-bot", "temperature": 2.5, "history": -1, "colour": "red"})
    assert "temperature: must be at most 2" in " ".join(found)
    assert "history: must be at least 0" in found
    assert "colour: unknown field" in found
    assert problems([1, 2]) == ["spec: expected a mapping of fields (name, prompt, model, ...)"]
    assert problems({"name": "ok-bot", "temperature": "hot"}) == ["temperature: must be a number"]


def test_nested_problems_name_their_path() -> None:
    bad_regex = {"turns": ["hi"], "expect": {"kind": "regex", "value": "(unclosed"}}
    found = problems({"name": "ok-bot", "tests": [bad_regex]})
    assert found[0].startswith("tests[0]") and "regular expression" in found[0]
    found = problems({"name": "ok-bot", "knowledge": [{"id": "md5:x", "name": "a"}]})
    assert found[0].startswith("knowledge[0].id")


def test_pipelines_must_be_wired() -> None:
    dangling = [{"id": "a", "kind": "llm", "next": "b"}]
    assert "unknown node 'b'" in problems({"name": "ok-bot", "pipeline": dangling})[0]
    twice = [{"id": "a", "kind": "llm"}, {"id": "a", "kind": "llm"}]
    assert "unique" in problems({"name": "ok-bot", "pipeline": twice})[0]


def test_content_hash_is_stable_and_sensitive() -> None:
    spec = BotSpec(name="faq-bot", prompt="p")
    assert spec.content_hash() == BotSpec(prompt="p", name="faq-bot").content_hash()
    assert spec.content_hash() != BotSpec(name="faq-bot", prompt="q").content_hash()
    assert source_id(b"abc") == source_id(b"abc") != source_id(b"abd")
    assert source_id(b"abc").startswith("sha256:")


def test_yaml_round_trip_and_errors() -> None:
    spec = BotSpec(
        name="faq-bot",
        prompt="line one\nline two: with colon",
        knowledge=[{"id": source_id(b"doc"), "name": "refunds.pdf"}],  # type: ignore[list-item]
        tests=[{"turns": ["hi"], "expect": {"kind": "contains", "value": "hello"}}],  # type: ignore[list-item]
    )
    assert spec_from_yaml(spec_to_yaml(spec)) == spec
    with pytest.raises(YamlError, match="line 3"):
        spec_from_yaml("name: faq-bot\nprompt: ok\n  bad: [\n")
    with pytest.raises(SpecError, match="empty"):
        spec_from_yaml("")
    with pytest.raises(SpecError, match="mapping"):
        spec_from_yaml("- a\n- b\n")


def test_edits_coerce_and_validate() -> None:
    assert coerce_field("temperature", "0.3") == 0.3
    assert coerce_field("history", "4") == 4
    assert coerce_field("prompt", "Be nice") == "Be nice"
    with pytest.raises(SpecError, match="must be a number, got 'warm'"):
        coerce_field("temperature", "warm")
    with pytest.raises(SpecError, match="you can set prompt, model"):
        coerce_field("colour", "red")
    spec = BotSpec(name="faq-bot")
    assert apply_changes(spec, {"temperature": 1.5}).temperature == 1.5
    assert spec.temperature == 0.7  # specs are values
    with pytest.raises(SpecError, match="cannot be renamed"):
        apply_changes(spec, {"name": "other"})
    with pytest.raises(SpecError, match="temperature"):
        apply_changes(spec, {"temperature": 9})


def test_diff_lists_changed_fields_with_prompt_lines() -> None:
    before = BotSpec(name="faq-bot", prompt="Be brief.\nCite sources.", temperature=0.5)
    after = BotSpec(name="faq-bot", prompt="Be brief.\nBe polite.", temperature=0.5, history=3)
    changes = {c.field: c for c in diff_specs(before, after)}
    assert set(changes) == {"prompt", "history"}
    assert "-Cite sources." in changes["prompt"].lines
    assert "+Be polite." in changes["prompt"].lines
    assert (changes["history"].before, changes["history"].after) == (10, 3)
    assert diff_specs(before, before) == []
