"""`/abtest`: live A/B tests of a bot's environment (production by default).

A test sends PERCENT% of the environment's end users to version B; A is what the environment
runs when it starts, and each person sticks to one variant (`runtime.ab`). Turns see a start or
an end at once (`Runtime.ab_changed`). `status` compares the variants' answers
and says in plain words whether a difference is significant yet (`runtime.evaluation.
significance`); `promote-winner` acts only on a significant primary metric (👍 rate, else the
online score): B's win moves the pointer through `Operations.promote_version` (the promotion's
checks, its evaluation gate and audit), A's stops the test. Any promotion or rollback that moves
the environment's pointer ends its test (`Operations.env_moved`, set here).

Status, stop and promote-winner take an environment (`--env`, REST `?env=`); without one they act
on the bot's running test, production's first when both environments run one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from builders.spec import BotSpec
from runtime.ab import Variant
from runtime.evaluation.significance import MIN_TURNS, AbVerdict, Comparison, Sample, compare
from runtime.messages import Field
from runtime.pipeline import CompileError, compile_spec
from storage import abtests as ab_store
from storage.abtests import AbTestRow, VariantStats
from storage.bots import ENVIRONMENTS, BotRepository
from studio.commands import AbTestPromoteWinner, AbTestStart, AbTestStatus, AbTestStop, Command
from studio.errors import ConflictError, InvalidError, NotFoundError
from studio.operations import DraftRef, Expected, Operations, audit, percentile
from studio.presenters import usd
from studio.replies import Answer
from studio.roles import Caller, Role
from studio.views import PromoteResult

ABTEST_COMMANDS: tuple[type[Command], ...] = (
    AbTestStart,
    AbTestStatus,
    AbTestStop,
    AbTestPromoteWinner,
)

_METRIC = {
    "rating": "👍 rate",
    "errors": "error rate",
    "score": "online score",
    "latency": "latency",
}


@dataclass(frozen=True, slots=True)
class _Win:
    """A winner being promoted: the environment-moved hook ends this test as promoted."""

    test_id: int
    reason: str


# Set around the winner's promotion: the hook runs in the same task, after the pointer moved.
_winning: ContextVar[_Win | None] = ContextVar("abtest_winning", default=None)


@dataclass(frozen=True, slots=True)
class AbTestReport:
    """A test (running or the last one) with its variants' figures and what they support."""

    bot: str
    test: AbTestRow
    a: VariantStats
    b: VariantStats
    verdict: AbVerdict

    def version(self, variant: Variant | None) -> int | None:
        if variant is None:
            return None
        return self.test.version_a if variant == "A" else self.test.version_b


@dataclass(frozen=True, slots=True)
class WinnerOutcome:
    """What promote-winner did: the test as it ended, the winner and why; `promoted` is the
    promotion when B won (A's win leaves the environment as it is)."""

    bot: str
    test: AbTestRow
    winner: Variant
    reason: str
    promoted: PromoteResult | None


class AbTestFeature:
    """What `/abtest` does, for the engine (which resolves the bot) and REST."""

    def __init__(self, *, ops: Operations) -> None:
        self.ops = ops
        ops.env_moved = self._env_moved

    async def run(
        self, caller: Caller, bot: str, command: Command, *, expect: Expected | None
    ) -> Answer:
        if isinstance(command, AbTestStart):
            test = await self.start(
                caller, bot, a=command.a, b=command.b, percent=command.percent, env=command.env
            )
            return started(bot, test)
        if isinstance(command, AbTestStatus):
            name, reports = await self.status(caller, bot, command.env)
            return status_answer(name, reports, command.env)
        if isinstance(command, AbTestStop):
            return stopped(bot, await self.stop(caller, bot, command.env))
        assert isinstance(command, AbTestPromoteWinner)
        return winner_answer(await self.promote_winner(caller, bot, command.env, expect=expect))

    # -- operations (chat and REST) ----------------------------------------------------------

    async def start(
        self, caller: Caller, bot: str, *, a: int, b: int, percent: int, env: str = "production"
    ) -> AbTestRow:
        """Start sending `percent`% of `env`'s end users to vB; vA must be what `env` runs."""
        caller.require(Role.ADMIN, "Starting an A/B test")
        if env not in ENVIRONMENTS:
            raise InvalidError(f"environment must be staging or production, not '{env}'")
        if not 1 <= percent <= 99:
            raise InvalidError(f"PERCENT goes from 1 to 99 (of end users on vB), not {percent}")
        draft = await self.ops.draft(caller, bot)
        name = draft.name
        try:
            async with self.ops.db.write() as session:
                conn = await session.connection()
                # Read locked, in the transaction that inserts the test: a promotion cannot
                # move the pointer in between and leave a test whose A is not what env runs.
                runs = await ab_store.locked_version(conn, draft.bot_id, env)
                if runs is None:
                    raise ConflictError(
                        f"{name} has no {env} version yet: an A/B test compares what {env} "
                        "runs with another version"
                    )
                if a != runs:
                    raise InvalidError(
                        f"vA must be what {env} runs now: {name} {env} runs v{runs}, not v{a} "
                        f"(/abtest {name} v{runs} vB {percent}{_on(env)})"
                    )
                if b == a:
                    raise InvalidError(f"vB must be another version than v{a}, which {env} runs")
                repo = BotRepository(session)
                version = await repo.version(draft.bot_id, b)
                if version is None:
                    latest = await repo.latest_version(draft.bot_id)
                    known = f" (it has v1 to v{latest.number})" if latest else ""
                    raise NotFoundError(f"{name} has no version v{b}{known}")
                _runnable(name, b, version.spec)
                test = await ab_store.start(
                    conn,
                    bot_id=draft.bot_id,
                    env=env,
                    version_a=a,
                    version_b=b,
                    percent=percent,
                    by=caller.identity,
                )
                await audit(session, caller, action="abtest.start", target=name, after=_facts(test))
        except IntegrityError:  # the partial unique index: one running test per environment
            raise ConflictError(await self._already_running(draft, env)) from None
        self.ops.runtime.ab_changed(draft.bot_id)
        return test

    async def status(
        self, caller: Caller, bot: str, env: str | None = None
    ) -> tuple[str, list[AbTestReport]]:
        """The bot's running tests (on `env` when given) with their figures; when none runs,
        the last one; none at all: an empty list."""
        caller.require(Role.VIEWER, "Reading A/B tests")
        draft = await self.ops.draft(caller, bot)
        async with self.ops.db.read_conn() as conn:
            tests = await _running_tests(conn, draft.bot_id, env)
            if not tests:
                last = await ab_store.last(conn, draft.bot_id, env)
                tests = [last] if last is not None else []
        return draft.name, [await self._report(draft, test) for test in tests]

    async def stop(self, caller: Caller, bot: str, env: str | None = None) -> AbTestRow:
        """End the running test: everyone gets vA (what the environment runs) again."""
        caller.require(Role.ADMIN, "Stopping an A/B test")
        draft = await self.ops.draft(caller, bot)
        test = await self._running(draft, env)
        return await self._end(caller, draft, test, "stopped", "stopped", "abtest.stop")

    async def confirmation(
        self, caller: Caller, bot: str, env: str | None = None
    ) -> tuple[AbTestRow, Variant, str]:
        """For the engine's confirmation of promote-winner: the running test and its winner
        (what the confirmation is bound to) and the question; refuses when there is no
        significant winner."""
        draft = await self.ops.draft(caller, bot)
        report = await self._report(draft, await self._running(draft, env))
        winner, reason = _winner(report)
        test = report.test
        if winner == "B":
            question = (
                f"End the A/B test of *{draft.name}* and run v{test.version_b} in {test.env}? "
                f"{reason}."
            )
        else:
            question = (
                f"End the A/B test of *{draft.name}* and keep {test.env} on v{test.version_a}? "
                f"{reason}."
            )
        return test, winner, question

    async def promote_winner(
        self,
        caller: Caller,
        bot: str,
        env: str | None = None,
        *,
        expect: Expected | None = None,
    ) -> WinnerOutcome:
        """End the running test with its significant winner: B's through a gated promotion
        (the test ends promoted), A's by stopping the test. `expect` (a confirmation) names
        the test and the winner the caller was asked about: anything else is refused."""
        caller.require(Role.ADMIN, "Promoting an A/B test's winner")
        draft = await self.ops.draft(caller, bot)
        test = await self._running(draft, env)
        if expect is not None and expect.bot_id != draft.bot_id:
            raise ConflictError(
                f"*{draft.name}* changed since you were asked; nothing was done. Ask again."
            )
        asked = expect.ab_winner if expect is not None else None
        if expect is not None and (asked is None or asked[0] != test.id):
            raise ConflictError(_CHANGED)
        winner, reason = _winner(await self._report(draft, test))
        if asked is not None and asked[1] != winner:
            raise ConflictError(_CHANGED)
        if winner == "A":
            ended = await self._end(caller, draft, test, "stopped", reason, "abtest.winner")
            return WinnerOutcome(draft.name, ended, winner, reason, None)
        token = _winning.set(_Win(test.id, reason))
        try:
            result = await self.ops.promote_version(
                caller, draft.name, env=test.env, version=test.version_b, expect=expect
            )
        finally:
            _winning.reset(token)
        async with self.ops.db.read_conn() as conn:
            ended_test = await ab_store.get(conn, test.id)
        assert ended_test is not None
        return WinnerOutcome(draft.name, ended_test, winner, reason, result)

    # -- helpers ----------------------------------------------------------------------------

    async def _env_moved(
        self, caller: Caller, bot_id: int, name: str, env: str, version: int
    ) -> str | None:
        """A promotion or rollback moved `env`'s pointer: its running test ends (promoted when
        it is the winner being promoted), unless `env` still runs A; the note says so."""
        win = _winning.get()
        async with self.ops.db.read_conn() as conn:  # most moves have no test to end
            running = await ab_store.running(conn, bot_id, env)
        if running is None or version == running.version_a:  # A still is what env runs
            return None
        async with self.ops.db.write() as session:
            conn = await session.connection()
            if win is not None and win.test_id == running.id:
                status, reason, action = "promoted", win.reason, "abtest.winner"
            else:
                status, reason, action = "ended", f"{env} moved to v{version}", "abtest.end"
            ended = await ab_store.end(
                conn, running.id, status=status, by=caller.identity, reason=reason
            )
            if ended is None:
                return None
            await audit(session, caller, action=action, target=name, after=_facts(ended))
        self.ops.runtime.invalidate_bot(bot_id)
        return (
            f"The A/B test v{ended.version_a} vs v{ended.version_b} on {env} ended: {env} now "
            f"runs v{version}."
        )

    async def _end(
        self,
        caller: Caller,
        draft: DraftRef,
        test: AbTestRow,
        status: str,
        reason: str,
        action: str,
    ) -> AbTestRow:
        async with self.ops.db.write() as session:
            ended = await ab_store.end(
                await session.connection(),
                test.id,
                status=status,
                by=caller.identity,
                reason=reason,
            )
            if ended is None:
                raise ConflictError(
                    f"The A/B test of {draft.name} on {test.env} has just ended; nothing was done."
                )
            await audit(session, caller, action=action, target=draft.name, after=_facts(ended))
        self.ops.runtime.ab_changed(draft.bot_id)
        return ended

    async def _running(self, draft: DraftRef, env: str | None) -> AbTestRow:
        """The test running on `env`, or (no env) production's, else staging's."""
        async with self.ops.db.read_conn() as conn:
            tests = await _running_tests(conn, draft.bot_id, env)
        if not tests:
            where = f" on {env}" if env else ""
            raise ConflictError(
                f"{draft.name} runs no A/B test{where}: start one with "
                f"/abtest {draft.name} vA vB PERCENT{_on(env)}"
            )
        return tests[0]

    async def _report(self, draft: DraftRef, test: AbTestRow) -> AbTestReport:
        async with self.ops.db.read_conn() as conn:
            stats = await ab_store.variant_stats(conn, test)
        verdict = await asyncio.to_thread(compare, _sample(stats["A"]), _sample(stats["B"]))
        return AbTestReport(draft.name, test, stats["A"], stats["B"], verdict)

    async def _already_running(self, draft: DraftRef, env: str) -> str:
        async with self.ops.db.read_conn() as conn:
            running = await ab_store.running(conn, draft.bot_id, env)
        what = (
            f" (v{running.version_a} vs v{running.version_b}, {running.percent}% on "
            f"v{running.version_b})"
            if running is not None
            else ""
        )
        return (
            f"{draft.name} already runs an A/B test on {env}{what}: one at a time. Stop it first: "
            f"/abtest {draft.name} stop{_on(env)}"
        )


_CHANGED = "The A/B test changed since you were asked; nothing was done. Ask again."


def _on(env: str | None) -> str:
    """The `--env` a command needs to act on `env`'s test (production's is the default)."""
    return f" --env {env}" if env not in (None, "production") else ""


async def _running_tests(conn: AsyncConnection, bot_id: int, env: str | None) -> list[AbTestRow]:
    """The bot's running tests (production's first), or only `env`'s."""
    return [test for test in await ab_store.current(conn, bot_id) if env in (None, test.env)]


def _runnable(name: str, number: int, spec: dict[str, object]) -> None:
    """Refuse a version that cannot compile now: its end users would get errors."""
    try:
        compile_spec(BotSpec.model_validate(spec))
    except (CompileError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidError(f"{name} v{number} cannot run: {first}") from None


def _sample(stats: VariantStats) -> Sample:
    return Sample(
        turns=stats.turns,
        ups=stats.ups,
        rated=stats.rated,
        errors=stats.errors,
        scores=stats.scores,
        latencies_ms=stats.latencies_ms,
    )


def _facts(test: AbTestRow) -> dict[str, object]:
    """What the audit trail keeps of a test."""
    return {
        "test": test.id,
        "env": test.env,
        "version_a": test.version_a,
        "version_b": test.version_b,
        "percent": test.percent,
        "status": test.status,
        **({"reason": test.end_reason} if test.end_reason else {}),
    }


# -- words -----------------------------------------------------------------------------------


def _p(p_value: float) -> str:
    if p_value < 0.001:
        return "p < 0.001"
    return f"p = {p_value:.3f}" if p_value < 0.1 else f"p = {p_value:.2f}"


def _value(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric == "latency":
        return f"{value:,.0f} ms"
    if metric == "score":
        return f"{value:.0%}"
    return f"{value:.1%}" if metric == "errors" else f"{value:.0%}"


def _by_how_much(comparison: Comparison) -> str:
    a, b = comparison.a, comparison.b
    if a is None or b is None:
        return ""
    better, worse = (b, a) if comparison.better == "B" else (a, b)
    if comparison.metric == "latency":
        return f", {1 - better / worse:.0%} faster" if worse else ""
    points = abs(better - worse) * 100
    return f", {points:.1f} points {'fewer' if comparison.metric == 'errors' else 'higher'}"


def comparison_line(report: AbTestReport, comparison: Comparison) -> str:
    """One metric in plain words: which is better and by how much, that the difference may be
    chance, or what the test still lacks."""
    metric = _METRIC[comparison.metric]
    metric = metric[0].upper() + metric[1:]
    a = f"v{report.test.version_a}"
    b = f"v{report.test.version_b}"
    values = (
        f"{a} {_value(comparison.metric, comparison.a)}, "
        f"{b} {_value(comparison.metric, comparison.b)}"
    )
    if comparison.metric == "latency":
        values = "median " + values
    if comparison.p_value is None:
        return f"{metric}: {values}; not tested yet ({comparison.missing})."
    if comparison.better is None:
        return f"{metric}: {values}; no significant difference yet ({_p(comparison.p_value)})."
    winner = b if comparison.better == "B" else a
    how = {"rating": "is rated better", "errors": "fails less", "score": "scores better"}
    does = how.get(comparison.metric, "answers faster")
    return (
        f"{metric}: {winner} {does} ({values}{_by_how_much(comparison)}), significant "
        f"({_p(comparison.p_value)})."
    )


def verdict_lines(report: AbTestReport) -> list[str]:
    """The verdict in plain words."""
    verdict, test = report.verdict, report.test
    if not verdict.enough_traffic:
        return [
            f"Not enough traffic yet: v{test.version_a} has {report.a.turns:,} turns, "
            f"v{test.version_b} {report.b.turns:,}; each needs {MIN_TURNS} before the variants "
            "are compared."
        ]
    lines = [comparison_line(report, c) for c in verdict.comparisons]
    primary = verdict.primary
    yet = " yet" if test.running else ""
    if primary is None:
        lines.append(
            f"No winner{yet}: it is decided on the 👍 rate (or, without ratings, the online "
            "score), and neither has enough data."
        )
    elif primary.better is None:
        lines.append(f"No winner{yet} on the {_METRIC[primary.metric]} (the deciding metric).")
    else:
        so_far = " so far" if test.running else ""
        winner = f"v{report.version(primary.better)}"
        lines.append(f"Winner{so_far}: {winner} on the {_METRIC[primary.metric]}.")
    return lines


def _winner(report: AbTestReport) -> tuple[Variant, str]:
    """The significant winner and why, in words; a one-line refusal when there is none."""
    verdict, test = report.verdict, report.test
    primary = verdict.primary
    if not verdict.enough_traffic:
        raise ConflictError(f"No winner to promote yet. {verdict_lines(report)[0]}")
    if primary is None:
        raise ConflictError(
            "No winner to promote yet: the winner is decided on the 👍 rate (or, without "
            "ratings, the online score), and neither has enough data yet."
        )
    if primary.better is None:
        raise ConflictError(
            f"No winner to promote yet. {comparison_line(report, primary)} Keep the test "
            f"running, or stop it: /abtest {report.bot} stop{_on(test.env)}"
        )
    assert primary.p_value is not None
    metric = _METRIC[primary.metric]
    shown = (
        f"{_value(primary.metric, primary.a)} for v{test.version_a}, "
        f"{_value(primary.metric, primary.b)} for v{test.version_b}"
    )
    version = report.version(primary.better)
    return primary.better, f"v{version} won on the {metric} ({shown}, {_p(primary.p_value)})"


def _per_variant(report: AbTestReport, show: Callable[[VariantStats], str]) -> str:
    return (
        f"v{report.test.version_a}: {show(report.a)} · v{report.test.version_b}: {show(report.b)}"
    )


def _rating(stats: VariantStats) -> str:
    if not stats.rated:
        return "none rated"
    return f"{stats.ups / stats.rated:.0%} of {stats.rated:,} rated"


def _score(stats: VariantStats) -> str:
    if not stats.scores:
        return "none scored"
    return f"{sum(stats.scores) / len(stats.scores):.0%} ({len(stats.scores):,} scored)"


def latency_percentiles(stats: VariantStats) -> tuple[float | None, float | None]:
    """p50 and p95 of the variant's answered turns, as `/stats` computes them."""
    latencies = list(stats.latencies_ms)
    return percentile(latencies, 0.5), percentile(latencies, 0.95)


def _latency(stats: VariantStats) -> str:
    p50, p95 = latency_percentiles(stats)
    if p50 is None or p95 is None:
        return "—"
    return f"{p50:,.0f} / {p95:,.0f} ms"


def _cost(stats: VariantStats) -> str:
    per_turn = stats.cost_per_turn_usd
    cost = "unknown" if per_turn is None else usd(per_turn)
    if stats.unknown_cost_turns:
        cost += f" ({stats.unknown_cost_turns:,} at unknown price)"
    return cost


def _errors(stats: VariantStats) -> str:
    share = f" ({stats.errors / stats.turns:.1%})" if stats.turns else ""
    return f"{stats.errors:,}{share}"


def report_fields(report: AbTestReport) -> tuple[Field, ...]:
    return (
        Field(label="Turns", value=_per_variant(report, lambda s: f"{s.turns:,}")),
        Field(label="Users", value=_per_variant(report, lambda s: f"{s.users:,}")),
        Field(label="👍 rate", value=_per_variant(report, _rating)),
        Field(label="Online score", value=_per_variant(report, _score)),
        Field(label="Latency p50/p95", value=_per_variant(report, _latency)),
        Field(label="Cost per turn", value=_per_variant(report, _cost)),
        Field(label="Errors", value=_per_variant(report, _errors)),
    )


def _at(moment: datetime) -> str:
    at = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _header(report: AbTestReport) -> str:
    test = report.test
    arms = (
        f"v{test.version_a} (A, {100 - test.percent}% of end users) vs v{test.version_b} "
        f"(B, {test.percent}%)"
    )
    if test.running:
        return f"*{report.bot}* A/B test on {test.env} since {_at(test.started_at)}: {arms}."
    how = {"stopped": "was stopped", "ended": "ended", "promoted": "ended with its winner promoted"}
    when = f" {_at(test.ended_at)}" if test.ended_at else ""
    why = f": {test.end_reason}" if test.end_reason and test.end_reason != test.status else ""
    return (
        f"*{report.bot}* runs no A/B test. The last one, on {test.env}: {arms}, "
        f"{how.get(test.status, test.status)}{when} by {test.ended_by}{why}."
    )


def status_answer(bot: str, reports: list[AbTestReport], env: str | None = None) -> Answer:
    """`/abtest BOT status [--env ENV]`: per variant figures and the verdict, or that there is
    none."""
    if not reports:
        where, on = (f" on {env}", _on(env)) if env else ("", "")
        env = env or "production"
        return Answer(
            f"*{bot}* has no A/B test{where} yet. `/abtest {bot} vA vB PERCENT{on}` sends "
            f"PERCENT% of {env}'s end users to vB (vA: what {env} runs)."
        )
    if len(reports) == 1:
        (report,) = reports
        text = "\n".join([_header(report), *verdict_lines(report), *_next(report)])
        return Answer(text=text, fields=report_fields(report))
    blocks = []
    for report in reports:
        rows = [f"{f.label}: {f.value}" for f in report_fields(report)]
        blocks.append("\n".join([_header(report), *rows, *verdict_lines(report)]))
    return Answer(text="\n\n".join(blocks))


def _next(report: AbTestReport) -> list[str]:
    if not report.test.running:
        return []
    on = _on(report.test.env)
    if report.verdict.winner is not None:
        return [f"`/abtest {report.bot} promote-winner{on}` ends the test with its winner."]
    return [f"Let it run; `/abtest {report.bot} stop{on}` ends it."]


def started(bot: str, test: AbTestRow) -> Answer:
    return Answer(
        f"Started an A/B test of *{bot}* on {test.env}: {test.percent}% of its end users now "
        f"get v{test.version_b}, the others v{test.version_a}; each person keeps their variant. "
        f"`/abtest {bot} status{_on(test.env)}` compares them. A promotion or rollback of "
        f"{test.env} ends the test."
    )


def stopped(bot: str, test: AbTestRow) -> Answer:
    return Answer(
        f"Stopped the A/B test of *{bot}* on {test.env} (v{test.version_a} vs "
        f"v{test.version_b}): everyone gets v{test.version_a} again. "
        f"`/abtest {bot} status{_on(test.env)}` still shows its results."
    )


def winner_answer(outcome: WinnerOutcome) -> Answer:
    test = outcome.test
    if outcome.promoted is not None:
        return Answer(
            f"{outcome.reason}: *{outcome.bot}* {test.env} now runs v{test.version_b}, and the "
            "A/B test ended."
        )
    return Answer(
        f"{outcome.reason}: the A/B test stopped and *{outcome.bot}* {test.env} stays on "
        f"v{test.version_a}."
    )
