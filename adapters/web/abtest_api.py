"""Live A/B tests over REST: the same operations as `/abtest` in chat (`studio.abtests`).
REST calls are explicit, so promote-winner needs no confirmation; `env` picks the environment
(chat's `--env`), else the running test is taken, production's first. A test is shown as
storage's `AbTestRow` (one definition of its fields, and the schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import API_ERRORS
from builders.spec import MAX_VERSION
from runtime.ab import Variant
from runtime.evaluation.significance import Comparison
from storage.abtests import AbTestRow, VariantStats
from studio.abtests import (
    AbTestReport,
    WinnerOutcome,
    comparison_line,
    latency_percentiles,
    verdict_lines,
)
from studio.roles import Caller

router = APIRouter(prefix="/api/v1", tags=["abtest"], responses=API_ERRORS)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
Env = Literal["staging", "production"]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION)]
InEnv = Annotated[Env | None, Query(description="default: the running test, production's first")]


class AbTestIn(BodyIn):
    a: Version  # what `env` runs now
    b: Version  # another existing version
    percent: Annotated[int, Field(ge=1, le=99)]  # of end users on b
    env: Env = "production"


class VariantOut(BaseModel):
    variant: Literal["A", "B"]
    version: int
    turns: int
    users: int
    errors: int
    blocked: int
    ratings_up: int
    ratings_down: int
    up_rate: float | None  # up / rated
    online_score: float | None  # mean 0..1
    scored: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    cost_per_turn_usd: float | None  # None: no turn was priced
    unknown_cost_turns: int


class ComparisonOut(BaseModel):
    metric: Literal["rating", "errors", "score", "latency"]
    a: float | None  # rate, mean score or median latency
    b: float | None
    p_value: float | None  # None: not tested (`missing` says why)
    better_version: int | None  # set when the difference is significant
    missing: str
    words: str


class AbTestReportOut(BaseModel):
    test: AbTestRow
    variants: list[VariantOut]
    enough_traffic: bool
    comparisons: list[ComparisonOut]
    winner_version: int | None  # the significantly better one on the deciding metric
    verdict: list[str]  # in plain words, as the chat says it


class AbTestStatusOut(BaseModel):
    bot: str
    tests: list[AbTestReportOut]  # the running ones, or else the last one; [] when none yet


class WinnerOut(BaseModel):
    test: AbTestRow  # as it ended: promoted (B won) or stopped (A won)
    winner_version: int
    env: str
    runs: int  # the version `env` runs now
    promoted: bool
    reason: str


def _variant(report: AbTestReport, stats: VariantStats) -> VariantOut:
    p50, p95 = latency_percentiles(stats)
    per_turn = stats.cost_per_turn_usd
    variant: Variant = "A" if stats.variant == "A" else "B"
    version = report.version(variant)
    assert version is not None
    return VariantOut(
        variant=variant,
        version=version,
        turns=stats.turns,
        users=stats.users,
        errors=stats.errors,
        blocked=stats.blocked,
        ratings_up=stats.ups,
        ratings_down=stats.downs,
        up_rate=stats.ups / stats.rated if stats.rated else None,
        online_score=sum(stats.scores) / len(stats.scores) if stats.scores else None,
        scored=len(stats.scores),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        cost_per_turn_usd=round(per_turn, 6) if per_turn is not None else None,
        unknown_cost_turns=stats.unknown_cost_turns,
    )


def _comparison(report: AbTestReport, comparison: Comparison) -> ComparisonOut:
    return ComparisonOut(
        metric=comparison.metric,
        a=comparison.a,
        b=comparison.b,
        p_value=comparison.p_value,
        better_version=report.version(comparison.better),
        missing=comparison.missing,
        words=comparison_line(report, comparison),
    )


def _report(report: AbTestReport) -> AbTestReportOut:
    return AbTestReportOut(
        test=report.test,
        variants=[_variant(report, report.a), _variant(report, report.b)],
        enough_traffic=report.verdict.enough_traffic,
        comparisons=[_comparison(report, c) for c in report.verdict.comparisons],
        winner_version=report.version(report.verdict.winner),
        verdict=verdict_lines(report),
    )


@router.get("/bots/{bot}/abtest", response_model=AbTestStatusOut)
async def abtest_status(bot: str, who: Who, svc: Services, env: InEnv = None) -> AbTestStatusOut:
    """Per variant: turns, users, 👍 rate, online score, latency, cost per turn and errors, and
    whether the differences are significant yet (viewers)."""
    name, reports = await svc.studio.abtests.status(who, bot, env)
    return AbTestStatusOut(bot=name, tests=[_report(r) for r in reports])


@router.post("/bots/{bot}/abtest", response_model=AbTestRow, status_code=201)
async def abtest_start(bot: str, body: AbTestIn, who: Who, svc: Services) -> AbTestRow:
    """Send `percent`% of `env`'s end users to version `b` (admins); `a` must be what `env`
    runs now. 409 when a test already runs there."""
    return await svc.studio.abtests.start(
        who, bot, a=body.a, b=body.b, percent=body.percent, env=body.env
    )


@router.post("/bots/{bot}/abtest/stop", response_model=AbTestRow)
async def abtest_stop(bot: str, who: Who, svc: Services, env: InEnv = None) -> AbTestRow:
    """End the running test (admins): everyone gets version a again."""
    return await svc.studio.abtests.stop(who, bot, env)


@router.post("/bots/{bot}/abtest/promote-winner", response_model=WinnerOut)
async def abtest_promote_winner(bot: str, who: Who, svc: Services, env: InEnv = None) -> WinnerOut:
    """End the running test with its winner (admins), only when the deciding metric (👍 rate,
    else the online score) differs significantly (409 otherwise): b's win promotes it through
    the promotion's checks (the evaluation gate too), a's stops the test."""
    outcome: WinnerOutcome = await svc.studio.abtests.promote_winner(who, bot, env)
    test = outcome.test
    winner = test.version_b if outcome.winner == "B" else test.version_a
    return WinnerOut(
        test=test,
        winner_version=winner,
        env=test.env,
        runs=outcome.promoted.version if outcome.promoted is not None else test.version_a,
        promoted=outcome.promoted is not None,
        reason=outcome.reason,
    )
