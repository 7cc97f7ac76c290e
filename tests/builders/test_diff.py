"""What changed between two specs: fields in order, text fields as unified diff lines."""

from __future__ import annotations

import pytest

from builders import flow
from builders.diff import FieldChange, diff_specs
from builders.edit import apply_changes
from builders.spec import BotSpec, source_id

PROMPT = "You help with refunds.\nBe brief.\nCite sources.\nNever guess.\nSign as Acme."


def test_equal_specs_have_no_changes() -> None:
    spec = BotSpec(name="faq-bot", prompt=PROMPT)
    assert diff_specs(spec, spec) == []
    assert diff_specs(spec, BotSpec(name="faq-bot", prompt=PROMPT)) == []


def test_scalar_changes_carry_before_and_after_without_lines() -> None:
    before = BotSpec(name="faq-bot", temperature=0.5)
    after = apply_changes(before, {"temperature": 0.9, "history": 3, "model": "openai/gpt-4o"})
    assert diff_specs(before, after) == [
        FieldChange(field="model", before="offline", after="openai/gpt-4o"),
        FieldChange(field="temperature", before=0.5, after=0.9),
        FieldChange(field="history", before=10, after=3),
    ]  # in the spec's field order, whatever the order of the edit


def test_a_changed_prompt_line_is_a_unified_diff_hunk() -> None:
    before = BotSpec(name="faq-bot", prompt=PROMPT)
    after = BotSpec(name="faq-bot", prompt=PROMPT.replace("Cite sources.", "Cite two sources."))
    [change] = diff_specs(before, after)
    assert change.field == "prompt"
    assert (change.before, change.after) == (before.prompt, after.prompt)
    assert change.lines == (
        "@@ -2,3 +2,3 @@",
        " Be brief.",
        "-Cite sources.",
        "+Cite two sources.",
        " Never guess.",
    )  # one line of context; no ---/+++ file headers


def test_added_and_removed_prompt_lines() -> None:
    before = BotSpec(name="faq-bot", prompt="Be brief.\nCite sources.")
    after = BotSpec(name="faq-bot", prompt="Be brief.\nBe polite.", history=3)
    changes = {c.field: c for c in diff_specs(before, after)}
    assert set(changes) == {"prompt", "history"}
    assert "-Cite sources." in changes["prompt"].lines
    assert "+Be polite." in changes["prompt"].lines
    assert changes["history"].lines == ()


def test_lines_that_look_like_diff_headers_are_kept() -> None:
    # Markdown rules and "--" notes in a prompt: removed they read "----" and "--- x".
    before = BotSpec(name="faq-bot", prompt="Intro\n---\nRules\n-- keep it short\nEnd")
    after = BotSpec(name="faq-bot", prompt="Intro\nRules\n++ be kind\nEnd")
    [change] = diff_specs(before, after)
    assert "----" in change.lines
    assert "--- keep it short" in change.lines
    assert "+++ be kind" in change.lines
    assert change.lines[0].startswith("@@ ")
    assert sum(line.startswith("@@") for line in change.lines) == 1


def test_a_prompt_from_empty() -> None:
    before = BotSpec(name="faq-bot", prompt="")
    after = BotSpec(name="faq-bot", prompt="Be brief.\nBe kind.")
    [change] = diff_specs(before, after)
    assert change.lines == ("@@ -0,0 +1,2 @@", "+Be brief.", "+Be kind.")


@pytest.mark.parametrize("field", ["greeting", "fallback", "description"])
def test_other_text_fields_get_lines_too(field: str) -> None:
    before = BotSpec.model_validate({"name": "faq-bot", field: "Hello there."})
    after = BotSpec.model_validate({"name": "faq-bot", field: "Hi there."})
    [change] = diff_specs(before, after)
    assert change.field == field
    assert change.lines == ("@@ -1 +1 @@", "-Hello there.", "+Hi there.")


def test_list_and_nested_fields_are_compared_as_data() -> None:
    doc = {"id": source_id(b"refunds"), "name": "refunds.pdf"}
    before = BotSpec.model_validate({"name": "faq-bot", "knowledge": [doc]})
    after = BotSpec.model_validate(
        {"name": "faq-bot", "knowledge": [], "guardrails": {"blocked_terms": ["password"]}}
    )
    changes = diff_specs(before, after)
    assert [c.field for c in changes] == ["knowledge", "guardrails"]
    assert (changes[0].before, changes[0].after) == ([doc], [])
    assert changes[1].before == {"max_input_chars": 4000, "blocked_terms": []}
    assert changes[1].after == {"max_input_chars": 4000, "blocked_terms": ["password"]}
    assert all(c.lines == () for c in changes)


def test_diff_is_directional() -> None:
    a = BotSpec(name="faq-bot", prompt="one", temperature=0.1)
    b = BotSpec(name="faq-bot", prompt="two", temperature=0.2)
    forward = {c.field: c for c in diff_specs(a, b)}
    backward = {c.field: c for c in diff_specs(b, a)}
    assert (forward["temperature"].before, backward["temperature"].before) == (0.1, 0.2)
    assert forward["prompt"].lines[1:] == ("-one", "+two")
    assert backward["prompt"].lines[1:] == ("-two", "+one")


def _pipeline_lines(before: BotSpec, after: BotSpec) -> tuple[str, ...]:
    [change] = [c for c in diff_specs(before, after) if c.field == "pipeline"]
    return change.lines


def test_a_flow_change_is_listed_step_by_step() -> None:
    plain = BotSpec(name="faq-bot")
    routed = flow.add_step(plain, "template", "refunds", {"text": "5 days."}).spec
    routed = flow.add_route(routed, {"keyword": "refund"}, "refunds").spec
    assert _pipeline_lines(plain, routed) == (
        "~ starts at `router` (was `llm`)",
        '+ `router` router "refund" → `refunds`, default → `llm`',
        '+ `refunds` template "5 days."',
    )  # `llm` was there already (implicitly): not listed
    changed = flow.add_step(routed, "retrieve", "kb", {"top_k": 3}).spec
    changed = flow.set_params(changed, "kb", {"top_k": 5}).spec
    changed = flow.add_route(changed, {"regex": "order"}, "kb").spec
    assert _pipeline_lines(routed, changed) == (
        "~ `router` route /order/ → `kb` added",
        "~ `router` default: `llm` → `kb`",
        "+ `kb` retrieve top_k=5 → `llm`",
    )
    removed = flow.remove_step(routed, "refunds").spec
    assert _pipeline_lines(routed, removed) == (
        "~ starts at `llm` (was `router`)",
        "- `router` router",
        "- `refunds` template",
    )


def test_links_and_routes_moved() -> None:
    spec = flow.add_step(BotSpec(name="faq-bot"), "template", "a", {"text": "A"}, after="llm").spec
    spec = flow.add_route(spec, {"keyword": "x"}, "a").spec
    spec = flow.add_route(spec, {"keyword": "y"}, "a").spec
    unlinked = flow.link(spec, "llm", "end").spec
    assert _pipeline_lines(spec, unlinked) == ("~ `llm` next: `a` → —",)
    data = unlinked.model_dump(mode="json")
    data["pipeline"][0]["params"]["routes"].reverse()
    reordered = BotSpec.model_validate(data)
    assert _pipeline_lines(unlinked, reordered) == ('~ `router` routes reordered: "y", "x"',)


def test_writing_out_the_implicit_flow_says_so() -> None:
    plain = BotSpec(name="faq-bot")
    written = plain.model_copy(update={"pipeline": plain.steps()})
    assert _pipeline_lines(plain, written) == ("~ the same steps, now written out",)
    assert _pipeline_lines(written, plain) == ("~ back to plain",)
