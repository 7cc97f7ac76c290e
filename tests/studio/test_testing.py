"""The test-case runner against the fake OpenAI-compatible server, over real HTTP through litellm.

Backoff sleeps are injected (not slept) and retry policies are tiny, so failures stay fast.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import pytest

from builders.spec import BotSpec, Expectation, TestCase
from runtime.llm import LlmAnswer, LlmGateway, RetryPolicy
from runtime.pipeline import CompileError
from runtime.turn.runner import BotRunner
from studio.test_report import CaseResult
from studio.testing import MAX_CONCURRENT_CASES, NO_JUDGE_MODEL, run_cases
from tests.fakes.llm import FakeLLM

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")

MODEL = "openai/fake-model"
JUDGE = "openai/fake-judge"


def gateway(llm: FakeLLM, *, attempts: int = 2) -> LlmGateway:
    async def no_sleep(_delay: float) -> None:
        return None

    policy = RetryPolicy(attempts=attempts, attempt_timeout_s=2.0, deadline_s=4.0, backoff_s=0.01)
    return LlmGateway(api_base=llm.base_url, policy=policy, sleep=no_sleep)


def case(
    *turns: str, kind: Literal["contains", "regex", "judge"] = "contains", value: str = "x"
) -> TestCase:
    return TestCase(turns=list(turns), expect=Expectation(kind=kind, value=value))


def bot(*cases: TestCase, model: str = MODEL, **fields: Any) -> BotSpec:
    return BotSpec(name="faq-bot", model=model, tests=list(cases), **fields)


async def run_one(spec: BotSpec, llm: FakeLLM, judge_model: str | None = None) -> CaseResult:
    report = await run_cases(spec, runner=BotRunner(llm=gateway(llm)), judge_model=judge_model)
    assert len(report.results) == 1
    return report.results[0]


# -- contains and regex -------------------------------------------------------------------


async def test_contains_is_case_insensitive(llm: FakeLLM) -> None:
    # No script: the fake echoes each case's input, whatever order the cases reach it in.
    spec = bot(
        case("How do REFUNDS work?", value="refunds"),
        case("and returns?", value="store credit"),
    )
    report = await run_cases(spec, runner=BotRunner(llm=gateway(llm)), judge_model=None)
    first, second = report.results
    assert first == CaseResult(
        number=1,
        input="How do REFUNDS work?",
        expect="contains 'refunds'",
        outcome="pass",
        answer="echo: How do REFUNDS work?",
    )
    assert second.outcome == "fail" and second.number == 2
    assert second.reason == "expected it to contain 'store credit'"
    assert (report.passed, report.failed, report.ok) == (1, 1, False)
    assert report.bot == "faq-bot" and report.spec_hash == spec.content_hash()


async def test_regex_searches_the_answer(llm: FakeLLM) -> None:
    spec = bot(
        case("order number?", kind="regex", value=r"#\d{4}\b"),
        case("again?", kind="regex", value=r"^\d+$"),
    )
    llm.reply("It is #1234.")
    llm.reply("It is #1234.")
    passed, failed = (
        await run_cases(spec, runner=BotRunner(llm=gateway(llm)), judge_model=None)
    ).results
    assert passed.outcome == "pass" and passed.expect == r"regex '#\d{4}\b'"
    assert failed.outcome == "fail" and failed.reason == r"expected a match for '^\d+$'"


async def test_offline_answers_with_the_fallback_and_needs_no_server(llm: FakeLLM) -> None:
    spec = bot(case("anything", value="can't answer"), model="offline")
    result = await run_one(spec, llm)
    assert result.outcome == "pass" and result.answer == "I can't answer that yet."
    assert llm.calls == []


async def test_long_values_and_answers_are_clipped(llm: FakeLLM) -> None:
    fallback = "a" * 3_000 + " the end"
    spec = bot(case("hi", value="the end " + "z" * 100), model="offline", fallback=fallback)
    result = await run_one(spec, llm)
    assert result.outcome == "fail"
    assert len(result.answer) == 2_000 and result.answer.endswith("…")
    assert result.expect == "contains '" + ("the end " + "z" * 51) + "…'"
    assert len(result.expect) == len("contains ''") + 60


async def test_the_whole_answer_is_checked_even_when_it_is_stored_clipped(llm: FakeLLM) -> None:
    spec = bot(case("hi", value="the end"), model="offline", fallback="a" * 3_000 + " the end")
    result = await run_one(spec, llm)
    assert result.outcome == "pass" and "the end" not in result.answer


# -- conversations --------------------------------------------------------------------------


async def test_a_multi_turn_case_sends_the_history_and_checks_the_last_answer(
    llm: FakeLLM,
) -> None:
    spec = bot(case("my name is Ada", "what is my name?", value="ada"), prompt="Be kind.")
    llm.reply("Nice to meet you, Bob.")  # would pass the check, but it is not the last answer
    llm.reply("Your name is Ada.")
    result = await run_one(spec, llm)
    assert result.outcome == "pass"
    assert result.input == "what is my name?" and result.answer == "Your name is Ada."
    first, second = llm.calls
    assert first.messages == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "my name is Ada"},
    ]
    assert second.messages == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "Nice to meet you, Bob."},
        {"role": "user", "content": "what is my name?"},
    ]


async def test_each_case_starts_a_fresh_conversation(llm: FakeLLM) -> None:
    spec = bot(case("one", value="one"), case("two", value="two"))
    report = await run_cases(spec, runner=BotRunner(llm=gateway(llm)), judge_model=None)
    assert [r.outcome for r in report.results] == ["pass", "pass"]  # the fake echoes the input
    assert sorted(len(call.messages) for call in llm.calls) == [2, 2]


async def test_the_history_window_of_the_spec_applies(llm: FakeLLM) -> None:
    spec = bot(case("a", "b", "c", value="c"), history=1)
    await run_one(spec, llm)
    sent = [m["content"] for m in llm.calls[-1].messages]
    assert sent == ["You are a helpful, concise assistant.", "b", "echo: b", "c"]


# -- provider failures ----------------------------------------------------------------------


async def test_a_provider_error_is_the_case_error_with_the_real_reason(llm: FakeLLM) -> None:
    spec = bot(case("first", "second", value="x"), fallback="Sorry, try later.")
    llm.fail(500, times=5, error="upstream down")
    result = await run_one(spec, llm)
    assert result.outcome == "error"
    assert result.reason.startswith("provider: ") and "upstream down" in result.reason
    assert result.answer == "Sorry, try later."
    assert result.input == "second"
    assert len(llm.calls) == 2  # the policy's two attempts, and the second turn never ran
    assert llm.pending == 3


# -- the judge ------------------------------------------------------------------------------


def judged(rubric: str = "is polite") -> BotSpec:
    """A bot whose answer is its fallback (offline): every call to the fake is the judge's."""
    return bot(
        case("where is my parcel?", kind="judge", value=rubric),
        model="offline",
        fallback="Thank you for asking! It ships tomorrow.",
    )


async def test_the_judge_passes(llm: FakeLLM) -> None:
    llm.reply("PASS warm and helpful")
    result = await run_one(judged(), llm, JUDGE)
    assert result.outcome == "pass" and result.reason == ""
    assert result.expect == "judge 'is polite'"
    (call,) = llm.calls
    assert call.model == "fake-judge" and call.body["temperature"] == 0
    system, user = call.messages
    assert system["role"] == "system" and "PASS or FAIL" in system["content"]
    assert user["role"] == "user"
    assert "<rubric>\nis polite\n</rubric>" in user["content"]
    assert "<user_message>\nwhere is my parcel?\n</user_message>" in user["content"]
    answer = "<bot_answer>\nThank you for asking! It ships tomorrow.\n</bot_answer>"
    assert answer in user["content"]


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [
        ("FAIL: it never apologises\nand more", "it never apologises"),
        ("**FAIL** - too curt", "too curt"),
        ("fail", "the judge said FAIL without a reason"),
    ],
)
async def test_the_judge_fails_with_its_reason(llm: FakeLLM, verdict: str, reason: str) -> None:
    llm.reply(verdict)
    result = await run_one(judged("apologises"), llm, JUDGE)
    assert result.outcome == "fail" and result.reason == reason


@pytest.mark.parametrize("text", ["I think it is fine", "PASSABLE", "", "x" * 300])
async def test_a_judge_without_a_verdict_is_an_error(llm: FakeLLM, text: str) -> None:
    llm.reply(text)
    result = await run_one(judged(), llm, JUDGE)
    assert result.outcome == "error"
    assert result.reason == f"the judge gave no verdict: {text[:100]}"


async def test_an_offline_judge_gives_no_verdict(llm: FakeLLM) -> None:
    result = await run_one(judged(), llm, "offline")
    assert result.outcome == "error" and result.reason == "the judge gave no verdict: "


async def test_a_failing_judge_is_an_error(llm: FakeLLM) -> None:
    llm.fail(401, error="bad key")
    result = await run_one(judged(), llm, JUDGE)
    assert result.outcome == "error"
    assert result.reason.startswith("judge: auth: ") and "bad key" in result.reason
    assert result.answer == "Thank you for asking! It ships tomorrow."


async def test_without_a_judge_model_a_judge_case_is_an_error(llm: FakeLLM) -> None:
    result = await run_one(judged(), llm, None)
    assert result.outcome == "error"
    assert result.reason == NO_JUDGE_MODEL
    assert NO_JUDGE_MODEL == "no judge model: set STUDIO_JUDGE_MODEL (or STUDIO_BUILDER_MODEL)"
    assert llm.calls == []


# -- progress, order and concurrency --------------------------------------------------------


async def test_progress_is_reported_after_each_case_in_order(llm: FakeLLM) -> None:
    spec = bot(*[case(f"case {i}", value=f"case {i}") for i in range(1, 6)], model="offline")
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    await run_cases(spec, runner=BotRunner(llm=gateway(llm)), judge_model=None, progress=progress)
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


async def test_a_broken_progress_reporter_does_not_stop_the_run(
    llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:

    spec = bot(case("a", value="can't"), case("b", value="can't"), model="offline")

    async def progress(done: int, total: int) -> None:
        raise RuntimeError("chat gone")

    with caplog.at_level(logging.ERROR, logger="studio.testing"):
        report = await run_cases(
            spec, runner=BotRunner(llm=gateway(llm)), judge_model=None, progress=progress
        )
    assert report.passed == 2
    assert [r.message for r in caplog.records] == ["test progress reporter failed"] * 2


async def test_no_cases_is_an_empty_report(llm: FakeLLM) -> None:
    calls: list[int] = []

    async def progress(done: int, total: int) -> None:
        calls.append(done)

    report = await run_cases(
        bot(), runner=BotRunner(llm=gateway(llm)), judge_model=None, progress=progress
    )
    assert report.results == () and report.ok and calls == []


async def test_cases_run_concurrently_but_bounded_and_keep_their_order(llm: FakeLLM) -> None:
    count = MAX_CONCURRENT_CASES + 2
    # The first case has three turns, so it finishes after cases that started later.
    cases = [case("hold on", "still there?", "first", value="echo: first")]
    cases += [case(f"case {i}", value=f"echo: case {i}") for i in range(2, count + 1)]
    spec = bot(*cases)
    run = asyncio.create_task(run_cases(spec, runner=BotRunner(llm=gateway(llm)), judge_model=None))
    llm.stall(0.4, times=MAX_CONCURRENT_CASES, text="slow")  # the first wave holds its slots
    calls = await llm.wait_for_calls(MAX_CONCURRENT_CASES)
    await asyncio.sleep(0.15)
    assert len(llm.calls) == MAX_CONCURRENT_CASES == len(calls)  # the others wait for a slot
    report = await run
    assert [r.number for r in report.results] == list(range(1, count + 1))
    expected = ["first"] + [f"case {i}" for i in range(2, count + 1)]
    assert [r.input for r in report.results] == expected
    # Each result is its own case's: the echo answers repeat the input of their case.
    late = [r for r in report.results if r.answer != "slow"]
    assert late and all(r.answer == f"echo: {r.input}" for r in late)


# -- what is not a case's outcome -----------------------------------------------------------


async def test_a_pipeline_that_cannot_compile_raises_before_any_case(llm: FakeLLM) -> None:
    spec = bot(case("hi"), pipeline=[{"id": "find", "kind": "router"}])
    with pytest.raises(CompileError, match="find"):
        await run_cases(spec, runner=BotRunner(llm=gateway(llm)), judge_model=None)
    assert llm.calls == []


class BrokenGateway(LlmGateway):
    """A gateway with a bug (not a provider failure): it raises something other than LlmError."""

    async def complete(self, **_: Any) -> LlmAnswer:
        raise RuntimeError("a bug")


async def test_a_bug_in_a_step_is_each_case_s_error_as_it_would_be_live() -> None:
    spec = bot(case("a"), case("b"), case("c"))
    report = await run_cases(spec, runner=BotRunner(llm=BrokenGateway()), judge_model=None)
    assert [r.outcome for r in report.results] == ["error"] * 3
    assert {r.reason for r in report.results} == {"internal: RuntimeError"}


async def test_a_catastrophic_regex_times_out_as_an_error() -> None:
    spec = BotSpec(
        name="slow-bot",
        fallback="a" * 40 + "!",
        tests=[TestCase(turns=["hi"], expect=Expectation(kind="regex", value="(a|aa)+$"))],
    )
    report = await run_cases(spec, runner=BotRunner(llm=LlmGateway()), judge_model=None)
    (result,) = report.results
    assert result.outcome == "error" and "took over" in result.reason


async def test_a_regex_only_re_accepts_is_an_error_not_a_crash() -> None:
    with pytest.warns(FutureWarning):  # `re` reads it as a nested set, and says so
        odd = Expectation(kind="regex", value="[[:foo:]]")
    spec = BotSpec(
        name="odd-bot",
        tests=[
            TestCase(turns=["hi"], expect=odd),
            TestCase(turns=["hi"], expect=Expectation(kind="contains", value="answer")),
        ],
    )
    report = await run_cases(spec, runner=BotRunner(llm=LlmGateway()), judge_model=None)
    assert [r.outcome for r in report.results] == ["error", "pass"]
    assert "does not compile" in report.results[0].reason


# -- which step answered ----------------------------------------------------------------------


async def test_a_case_can_require_the_step_that_answers() -> None:
    spec = BotSpec(
        name="plain-bot",
        fallback="No idea.",
        tests=[
            TestCase(turns=["hi"], expect=Expectation(kind="step", value="llm")),
            TestCase(turns=["hi"], expect=Expectation(kind="contains", value="idea"), step="llm"),
        ],
    )
    report = await run_cases(spec, runner=BotRunner(llm=LlmGateway()), judge_model=None)
    assert [r.outcome for r in report.results] == ["pass", "pass"]
    assert report.results[0].expect == "step 'llm'"
    assert report.results[1].expect == "contains 'idea' from step 'llm'"


async def test_a_case_fails_when_another_step_answers() -> None:
    pipeline = [
        {"id": "retrieve", "kind": "retrieve", "next": "llm"},
        {"id": "llm", "kind": "llm"},
    ]
    spec = BotSpec.model_validate(
        {
            "name": "plain-bot",
            "pipeline": pipeline,
            "tests": [{"turns": ["hi"], "expect": {"kind": "step", "value": "retrieve"}}],
        }
    )
    (result,) = (
        await run_cases(spec, runner=BotRunner(llm=LlmGateway()), judge_model=None)
    ).results
    assert result.outcome == "fail"
    assert (
        result.reason == "expected step 'retrieve' to answer; step 'llm' did (path: retrieve → llm)"
    )


def test_a_case_may_only_name_a_step_of_the_pipeline() -> None:
    with pytest.raises(ValueError, match="test 1 expects step 'refunds', which is not a step"):
        BotSpec(
            name="plain-bot",
            tests=[TestCase(turns=["hi"], expect=Expectation(kind="step", value="refunds"))],
        )
