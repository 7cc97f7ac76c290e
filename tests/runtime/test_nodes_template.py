"""The `template` node: what it renders, what is refused at save, and the sandbox's bounds (a
template that tries to escape or run away is the turn's error, quickly, never a crash)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from runtime.nodes.jinja_sandbox import MAX_OUTPUT_CHARS
from runtime.pipeline import TurnOutput, Usage
from tests.runtime.flows import compiled, refusal, says, step, turn


async def render(text: str, said: str = "hello world", **options: Any) -> TurnOutput:
    output, _ = await turn(compiled(says("note", text)), said, **options)
    return output


async def rendered(text: str, said: str = "hello world", **options: Any) -> str:
    output = await render(text, said, **options)
    assert output.error is None, output.error
    return output.reply


# -- what it renders -------------------------------------------------------------------------------


async def test_it_answers_with_participant_state_and_input() -> None:
    text = (
        "Hi {{ participant.name }}! You said: {{ input|upper }}."
        "{% if participant.vip %} (vip: {{ participant.vip }}){% endif %}"
    )
    output = await render(text, memory={"name": "Ann", "vip": True})
    assert output.reply == "Hi Ann! You said: HELLO WORLD. (vip: yes)"
    assert output.step == "note" and output.usage == Usage(0, 0, 0.0)


async def test_unknown_values_render_as_nothing() -> None:
    assert await rendered("[{{ participant.name }}|{{ participant.name.first }}]") == "[|]"
    assert await rendered("Hi {{ participant.name|default('there') }}!") == "Hi there!"
    assert await rendered("{{ participant.get('plan') }}.") == "."  # None shows as nothing


async def test_state_is_a_plain_copy_of_what_earlier_steps_left() -> None:
    triage = step("triage", "router", routes=[{"keyword": "refund", "to": "note"}], default="note")
    note = says("note", "{{ state.route.step }}/{{ state.route.branch }}/{{ state.keys()|list }}")
    bot = compiled(triage, note)
    output, ctx = await turn(bot, "refund please", state={"passages": [object()], "n": [1, None]})
    assert output.reply == "triage/0/['n', 'route']"  # passages are not JSON: left out
    assert list(ctx.state) == ["passages", "n", "route"]


async def test_loops_filters_and_methods() -> None:
    text = (
        "{% for word in input.split() %}{{ loop.index }}.{{ word|title }}"
        "{{ loop.cycle(',', ';') }}{% endfor %} {{ input|length }} {{ range(3)|list|sum }}"
        " {{ input|replace('o', '0') }} {{ 'a' ~ 1 }} {{ 2 ** 10 }}"
        " {{ (input ~ ' ' ~ input)|wordcount }}"
    )
    assert await rendered(text) == "1.Hello,2.World; 11 3 hell0 w0rld a1 1024 4"


async def test_the_reply_is_trimmed_and_an_empty_one_is_no_answer() -> None:
    assert await rendered("\n  Hi  \n") == "Hi"
    output = await render("{% if participant.name %}Hi{% endif %}")
    assert output.reply == "I can't answer that yet." and output.step is None


def test_only_templates_that_use_participant_load_memory() -> None:
    assert compiled(says("note", "Hi {{ participant.name }}")).uses_memory
    assert not compiled(says("note", "You said {{ input }}")).uses_memory


# -- refused at save -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Hi {{ partcipant.name }}",
            "the template uses 'partcipant': only participant, state and input are available",
        ),
        (
            "{{ loop.index }}",
            "the template uses 'loop': only participant, state and input are available",
        ),
        (
            "{{ cycler }}",
            "the template uses 'cycler': only participant, state and input are available",
        ),
        (
            "Hi\n{{ name",
            "the template does not parse (line 2: unexpected end of template, "
            "expected 'end of print statement'.)",
        ),
        (
            "{% if %}",
            "the template does not parse "
            "(line 1: Expected an expression, got 'end of statement block')",
        ),
        ("{{ input.__class__ }}", "'__class__' is not available in a template (line 1)"),
        ("{{ ''.__class__.__mro__ }}", "'__mro__' is not available in a template (line 1)"),
        ("\n{{ input['__class__'] }}", "'__class__' is not available in a template (line 2)"),
        ("{{ input.split.__self__ }}", "'__self__' is not available in a template (line 1)"),
        ("{{ self }}", "the name 'self' is not available in a template (line 1)"),
        ("{% set _x = 1 %}", "the name '_x' is not available in a template (line 1)"),
        (
            "{{ input.format(1) }}",
            "a template can call only range(), dict() and text methods such as lower() (line 1)",
        ),
        (
            "{{ input.center(10**9) }}",
            "a template can call only range(), dict() and text methods such as lower() (line 1)",
        ),
        (
            "{{ lipsum(1000) }}",
            "a template can call only range(), dict() and text methods such as lower() (line 1)",
        ),
        (
            "{{ state.route.update({}) }}",
            "a template can call only range(), dict() and text methods such as lower() (line 1)",
        ),
        (
            "{{ input|center(10**9) }}",
            "the filter 'center' is not available in a template (line 1)",
        ),
        ("{{ input|attr('upper') }}", "the filter 'attr' is not available in a template (line 1)"),
        ("{% if input is callable %}{% endif %}", None),
        ("{% macro f() %}{% endmacro %}", "macros are not available in a template (line 1)"),
        ("{% include 'x.txt' %}", "a template cannot include another (line 1)"),
        ("{% extends 'base' %}", "a template cannot extend another (line 1)"),
        ("{% import 'x' as x %}", "a template cannot import another (line 1)"),
        (
            "{% for x in input recursive %}{% endfor %}",
            "recursive loops are not available in a template (line 1)",
        ),
    ],
)
def test_templates_are_refused_at_save(text: str, message: str | None) -> None:
    if message is None:
        compiled(says("note", text))  # tests are fine
        return
    assert refusal(says("note", text)) == f"step 'note': {message}"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "step 'note': text: is required"),
        ({"text": ""}, "step 'note': text: must not be empty"),
        ({"text": 5}, "step 'note': text: Input should be a valid string"),
        ({"text": "hi", "style": "bold"}, "step 'note': style: unknown field"),
    ],
)
def test_bad_params_are_refused(params: dict[str, Any], message: str) -> None:
    assert refusal(step("note", "template", **params)) == message


# -- the sandbox at run time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "{% set name = '__cla' ~ 'ss__' %}{{ input[name] }}",
            "'__class__' of str is not available",
        ),
        ("{% set m = 'for' ~ 'mat' %}{{ input[m] }}", "'format' of str is not available"),
        ("{{ '%s' % input }}", "'%' formatting is not available in a template: use filters"),
        ("{{ 'x' * 1000000000 }}", "the template made a value over 20000 long"),
        ("{{ [1] * 1000000000 }}", "the template made a value over 20000 long"),
        ("{{ 2 ** 100000 }}", "the template made a number too large"),
        (
            "{{ (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) }}",
            "the template made a number too large",
        ),
        (
            "{% for i in range(10 ** 9) %}{% endfor %}",
            "range() gives at most 1000 numbers in a template",
        ),
        (
            "{% set a = input ~ input %}" + "{% set a = a ~ a %}" * 20,
            "the template made a value over 20000 long",
        ),
        (
            "{{ (input * 1000)|replace('', input * 1000) }}",
            "the template made a value over 20000 long",
        ),
        (
            "{{ (input * 1000)|list|join(input * 1000) }}",
            "the template made a value over 20000 long",
        ),
        (
            "{% for i in range(1000) %}{{ input }}{% endfor %}",
            f"the template's text is over {MAX_OUTPUT_CHARS} characters",
        ),
        ("{{ [[1] * 20000] * 2000 }}", "the template made a value over 20000 long"),
        ("{{ [[input] * 20000] * 20000 }}", "the template made a value over 20000 long"),
        ("{% set a = [[1] * 20000] %}{{ a + a }}", "the template made a value over 20000 long"),
        ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
    ],
)
async def test_what_breaks_the_sandbox_is_the_turns_error(text: str, error: str) -> None:
    started = time.monotonic()
    output = await render(text)
    assert time.monotonic() - started < 0.5
    assert output.error == f"template: step 'note': {error}"
    assert output.reply == "I can't answer that yet." and output.step is None


async def test_a_template_that_runs_away_is_stopped_by_the_time_limit() -> None:
    text = (
        "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    output = await render(text)
    assert time.monotonic() - started < 0.5
    assert output.error == "template: step 'note': the template took over 50 ms"


async def test_a_template_cannot_change_what_it_is_given() -> None:
    # The copies are plain values; the sandbox refuses methods that would change them anyway.
    bot = compiled(says("note", "{% set k = 'up' ~ 'date' %}{{ participant[k] }}"))
    output, ctx = await turn(bot, "hi", memory={"plan": "pro"})
    assert output.error == "template: step 'note': 'update' of dict is not available"
    assert ctx.participant.values == {"plan": "pro"} and not ctx.participant.changed
