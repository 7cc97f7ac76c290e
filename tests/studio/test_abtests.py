"""`/abtest` through the Studio (transcripts over `POST /api/v1/studio/messages`): starting (and
every refusal), status with per-variant figures and a verdict that claims significance only
when the data supports it, stop, promote-winner (confirmed, gated like a promotion), and
promotions or rollbacks that end a running test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.bots import BotRepository
from studio.abtests import AbTestReport
from studio.engine import Studio
from studio.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from studio.operations import Expected
from studio.roles import Caller, Role
from tests.ab_traffic import traffic, two_versions
from tests.conftest import (
    drop_postgres_database,
    migrated_postgres_database,
    running_service,
    service_settings,
)
from tests.factories import Service
from tests.people import bot_id


def _studio(service: Service) -> Studio:
    studio: Studio = service.app.state.core.studio
    return studio


async def _caller(service: Service) -> Caller:
    caller: Caller = await service.app.state.core.ops.authenticate(service.key)
    return caller


async def member(service: Service, name: str, role: str) -> str:
    """A member `http:NAME` of the team with `role`; their name to speak as."""
    await service.reply("/bots", user=name)  # seen for the first time: a viewer
    if role != "viewer":
        assert "is now" in await service.reply(f"/role http:{name} {role}")
    return name


async def _reports(service: Service, bot: str = "faq-bot") -> list[AbTestReport]:
    _, reports = await _studio(service).abtests.status(await _caller(service), bot)
    return reports


async def _test_id(service: Service) -> int:
    (report,) = await _reports(service)
    return report.test.id


async def _production(service: Service, bot: str = "faq-bot") -> int | None:
    view = await service.call("GET", f"/api/v1/bots/{bot}")
    found: int | None = view["environments"].get("production")
    return found


async def _actions(service: Service, bot: str = "faq-bot") -> list[str]:
    events = await service.call("GET", f"/api/v1/bots/{bot}/history")
    return [event["action"] for event in events]


async def _chat_versions(service: Service, deployment: str, sessions: int) -> set[str]:
    """The answers of `sessions` new web end users: which versions they got."""
    said = set()
    for _ in range(sessions):
        said.add((await service.chat(deployment, "hello")).json()["reply"])
    return said


START = "/abtest faq-bot v1 v2 50"
STATUS = "/abtest faq-bot status"


async def test_a_test_starts_only_as_the_contract_says(service: Service) -> None:
    deployment = await two_versions(service)
    editor = await member(service, "ed", "editor")
    refusals: list[tuple[str, str | None, str]] = [
        (
            START,
            editor,
            "Starting an A/B test needs the admin role; you are an editor. An owner or admin "
            "can change that with `/role http:ed admin`.",
        ),
        (
            "/abtest faq-bot v2 v1 20",
            None,
            "vA must be what production runs now: faq-bot production runs v1, not v2 "
            "(/abtest faq-bot v1 vB 20)",
        ),
        ("/abtest faq-bot v1 v9 20", None, "faq-bot has no version v9 (it has v1 to v2)"),
        ("/abtest faq-bot v1 v2 120", None, "PERCENT must be from 1 to 99, not '120'."),
        ("/abtest faq-bot v1 v1 20", None, "vA and vB must be two different versions."),
    ]
    for text, user, says in refusals:
        assert (await service.reply(text, user=user)).startswith(says)
    # What the grammar lets through is checked again by the feature (REST and tools too).
    abtests = _studio(service).abtests
    with pytest.raises(InvalidError, match="vB must be another version than v1"):
        await abtests.start(await _caller(service), "faq-bot", a=1, b=1, percent=20)
    await service.import_bot("new-bot")
    assert await service.reply("/abtest new-bot v1 v2 5") == (
        "new-bot has no production version yet: an A/B test compares what production runs with "
        "another version"
    )
    with pytest.raises(InvalidError, match="PERCENT goes from 1 to 99"):
        await abtests.start(await _caller(service), "faq-bot", a=1, b=2, percent=0)
    assert await _reports(service) == [] and "abtest.start" not in await _actions(service)

    started = await service.reply(START)
    assert started.startswith(
        "Started an A/B test of *faq-bot* on production: 50% of its end users now get v2, the "
        "others v1; each person keeps their variant."
    )
    assert (await _actions(service))[0] == "abtest.start"
    # Turns see it at once: new end users get either version.
    assert await _chat_versions(service, deployment, 24) == {"v1 says hi", "v2 says hi"}

    again = await service.reply("/abtest faq-bot v1 v2 10")
    assert again == (
        "faq-bot already runs an A/B test on production (v1 vs v2, 50% on v2): one at a time. "
        "Stop it first: /abtest faq-bot stop"
    )
    on_staging = await service.reply("/abtest faq-bot v2 v1 10 --env staging")
    assert "on staging: 10% of its end users now get v1" in on_staging
    assert [r.test.env for r in await _reports(service)] == ["production", "staging"]


async def test_status_claims_a_difference_only_when_the_data_supports_it(
    service: Service,
) -> None:
    await two_versions(service)
    assert await service.reply(STATUS) == (
        "*faq-bot* has no A/B test yet. `/abtest faq-bot vA vB PERCENT` sends PERCENT% of "
        "production's end users to vB (vA: what production runs)."
    )
    await service.reply("/abtest faq-bot v1 v2 20")
    test_id = await _test_id(service)
    await traffic(service, "faq-bot", test_id, "A", turns=40, ups=4, downs=4)
    await traffic(service, "faq-bot", test_id, "B", turns=12, ups=2)
    early = await service.reply(STATUS, user=await member(service, "vi", "viewer"))
    assert early.startswith("*faq-bot* A/B test on production since ")
    assert ": v1 (A, 80% of end users) vs v2 (B, 20%)." in early
    assert (
        "Not enough traffic yet: v1 has 40 turns, v2 12; each needs 30 before the variants are "
        "compared." in early
    )
    assert "significant" not in early and "Winner" not in early
    assert "Turns:           v1: 40 · v2: 12" in early
    assert "👍 rate:          v1: 50% of 8 rated · v2: 100% of 2 rated" in early
    assert "Online score:    v1: none scored · v2: none scored" in early
    assert "Latency p50/p95: v1: 203 / 206 ms · v2: 203 / 205 ms" in early
    assert "Cost per turn:   v1: $0.0010 · v2: $0.0010" in early
    assert "Errors:          v1: 0 (0.0%) · v2: 0 (0.0%)" in early
    assert "Let it run; `/abtest faq-bot stop` ends it." in early

    # 30 turns each now, but only 8 and 2 rated: the rate is not tested, nor is anything won.
    await traffic(service, "faq-bot", test_id, "B", turns=30)
    enough = await service.reply(STATUS)
    assert (
        "👍 rate: v1 50%, v2 100%; not tested yet (needs 10 rated answers per variant)." in enough
    )
    assert "No winner yet: it is decided on the 👍 rate (or, without ratings, the online " in enough
    assert "significant (" not in enough

    # Rated enough, but close: a difference that may be chance.
    await traffic(service, "faq-bot", test_id, "A", turns=30, ups=9, downs=9)
    await traffic(service, "faq-bot", test_id, "B", turns=30, ups=10, downs=8)
    close = await service.reply(STATUS)
    assert "👍 rate: v1 50%, v2 60%; no significant difference yet (p = 0." in close
    assert "No winner yet on the 👍 rate (the deciding metric)." in close

    # B rated much better: significant, and said by how much; its fewer errors are not.
    await traffic(service, "faq-bot", test_id, "A", turns=60, downs=30, errors=10)
    await traffic(service, "faq-bot", test_id, "B", turns=60, ups=50, errors=0)
    await traffic(service, "faq-bot", test_id, "B", turns=6, errors=6)
    clear = await service.reply(STATUS)
    better = "👍 rate: v2 is rated better (v1 23%, v2 89%, 65.4 points higher), significant"
    assert better + " (p < 0.001)." in clear
    assert "Error rate: v1 7.7%, v2 4.3%; no significant difference yet (p = 0.25)." in clear
    assert "Online score: v1 —, v2 —; not tested yet (needs 10 scored answers per variant)." in (
        clear
    )
    assert "Latency: median v1 203 ms, v2 203 ms; no significant difference yet" in clear
    assert "Errors:          v1: 10 (7.7%) · v2: 6 (4.3%)" in clear
    assert "Winner so far: v2 on the 👍 rate." in clear
    assert "`/abtest faq-bot promote-winner` ends the test with its winner." in clear


async def test_without_ratings_the_online_score_decides(service: Service) -> None:
    await two_versions(service)
    await service.reply(START)
    test_id = await _test_id(service)
    await traffic(service, "faq-bot", test_id, "A", turns=40, scores=[0.25, 0.5] * 10)
    await traffic(service, "faq-bot", test_id, "B", turns=40, scores=[0.75, 1.0] * 10)
    said = await service.reply(STATUS)
    assert "Online score:    v1: 38% (20 scored) · v2: 88% (20 scored)" in said
    assert "Online score: v2 scores better (v1 38%, v2 88%, 50.0 points higher), significant" in (
        said
    )
    assert "Winner so far: v2 on the online score." in said


async def test_stop_sends_everyone_back_and_keeps_the_results(service: Service) -> None:
    deployment = await two_versions(service)
    assert await service.reply("/abtest faq-bot stop") == (
        "faq-bot runs no A/B test: start one with /abtest faq-bot vA vB PERCENT"
    )
    await service.reply("/abtest faq-bot v1 v2 99")
    await traffic(service, "faq-bot", await _test_id(service), "B", turns=3)
    viewer = await member(service, "vi", "viewer")
    assert await service.reply("/abtest faq-bot stop", user=viewer) == (
        "Stopping an A/B test needs the admin role; you are a viewer. An owner or admin can "
        "change that with `/role http:vi admin`."
    )
    stopped = await service.reply("/abtest faq-bot stop")
    assert stopped == (
        "Stopped the A/B test of *faq-bot* on production (v1 vs v2): everyone gets v1 again. "
        "`/abtest faq-bot status` still shows its results."
    )
    assert await _chat_versions(service, deployment, 6) == {"v1 says hi"}
    last = await service.reply(STATUS)
    assert last.startswith(
        "*faq-bot* runs no A/B test. The last one, on production: v1 (A, 1% of end users) vs "
        "v2 (B, 99%), was stopped "
    )
    assert " UTC by api:owner.\nNot enough traffic yet: v1 has 0 turns, v2 3;" in last
    assert "Turns:           v1: 0 · v2: 3" in last and "Let it run" not in last
    assert (await _actions(service))[0] == "abtest.stop"
    assert "runs no A/B test" in await service.reply("/abtest faq-bot stop")


async def test_promote_winner_b_promotes_it_through_the_gate(service: Service) -> None:
    deployment = await two_versions(service)
    assert "runs no A/B test" in await service.reply("/abtest faq-bot promote-winner")
    await service.reply(START)
    test_id = await _test_id(service)
    await traffic(service, "faq-bot", test_id, "A", turns=40, ups=20, downs=20)
    await traffic(service, "faq-bot", test_id, "B", turns=40, ups=21, downs=19)
    undecided = await service.reply("/abtest faq-bot promote-winner")
    assert undecided.startswith(
        "No winner to promote yet. 👍 rate: v1 50%, v2 52%; no significant difference yet (p = "
    )
    assert undecided.endswith("Keep the test running, or stop it: /abtest faq-bot stop")
    assert "Confirm" not in undecided

    await traffic(service, "faq-bot", test_id, "B", turns=40, ups=36, downs=4)
    editor = await member(service, "ed", "editor")
    assert await service.reply("/abtest faq-bot promote-winner", user=editor) == (
        "Promoting an A/B test's winner needs the admin role; you are an editor. An owner or "
        "admin can change that with `/role http:ed admin`."
    )
    # The evaluation gate applies to the winner as to any promotion: v2 needs a passing run.
    await service.reply('/dataset faq-bot add "hello" expect contains "v2"')
    assert "now need an evaluation" in await service.reply("/eval faq-bot gate main 80%")
    question = await service.reply("/abtest faq-bot promote-winner")
    assert question.startswith(
        "End the A/B test of *faq-bot* and run v2 in production? v2 won on the 👍 rate (50% for "
        "v1, 71% for v2, p = 0.0"
    )
    assert "[Confirm] [Cancel]" in question
    refused = "not promoted: faq-bot has no evaluation of v2 on main yet: /eval faq-bot main v2"
    assert (await service.reply("yes")).startswith(refused)
    await service.reply("/eval faq-bot main v1")  # v1's run scores another spec
    await _studio(service).evals.drain()
    await service.reply("/abtest faq-bot promote-winner")
    assert (await service.reply("yes")).startswith(refused)
    assert await _production(service) == 1 and (await _reports(service))[0].test.running

    await service.reply("/eval faq-bot main v2")
    await _studio(service).evals.drain()
    await service.reply("/abtest faq-bot promote-winner")
    done = await service.reply("yes")
    assert done.startswith("v2 won on the 👍 rate (50% for v1, 71% for v2, p = 0.0")
    assert done.endswith("*faq-bot* production now runs v2, and the A/B test ended.")
    assert await _production(service) == 2
    (report,) = await _reports(service)
    assert report.test.status == "promoted" and report.test.end_reason is not None
    assert report.test.end_reason.startswith("v2 won on the 👍 rate")
    assert (await _actions(service))[:2] == ["abtest.winner", "bot.promote"]
    assert await _chat_versions(service, deployment, 6) == {"v2 says hi"}
    assert "ended with its winner promoted" in await service.reply(STATUS)


async def test_promote_winner_a_stops_the_test_and_production_stays(service: Service) -> None:
    await two_versions(service)
    await service.reply(START)
    test_id = await _test_id(service)
    await traffic(service, "faq-bot", test_id, "A", turns=40, ups=30, downs=10)
    await traffic(service, "faq-bot", test_id, "B", turns=40, ups=10, downs=30)
    question = await service.reply("/abtest faq-bot promote-winner")
    assert question.startswith(
        "End the A/B test of *faq-bot* and keep production on v1? v1 won on the 👍 rate (75% for "
        "v1, 25% for v2, p < 0.001)."
    )
    done = await service.reply("yes")
    assert done == (
        "v1 won on the 👍 rate (75% for v1, 25% for v2, p < 0.001): the A/B test stopped and "
        "*faq-bot* production stays on v1."
    )
    (report,) = await _reports(service)
    assert report.test.status == "stopped" and await _production(service) == 1
    assert "bot.promote" not in (await _actions(service))[:2]


async def test_a_confirmation_lapses_when_production_moved_meanwhile(service: Service) -> None:
    await two_versions(service)
    await service.reply(START)
    test_id = await _test_id(service)
    await traffic(service, "faq-bot", test_id, "A", turns=40, ups=30, downs=10)
    await traffic(service, "faq-bot", test_id, "B", turns=40, ups=10, downs=30)
    await service.reply("/abtest faq-bot promote-winner")
    moved = await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "production"})
    assert moved["notes"] == ["The A/B test v1 vs v2 on production ended: production now runs v2."]
    assert await service.reply("yes") == (
        "faq-bot runs no A/B test: start one with /abtest faq-bot vA vB PERCENT"
    )
    assert await _production(service) == 2


async def test_a_promotion_or_rollback_of_the_environment_ends_its_test(service: Service) -> None:
    deployment = await two_versions(service)
    await service.reply("/abtest faq-bot v2 v1 30 --env staging")
    await service.reply("/promote faq-bot production")
    assert await service.reply("yes") == (
        "*faq-bot* production now runs v2.\nPut it on a channel: `/deploy faq-bot web`."
    )  # production had no test; staging's keeps running
    await service.reply("/abtest faq-bot v2 v1 30")

    await service.reply("/rollback faq-bot production")
    rolled = await service.reply("yes")
    assert rolled == (
        "*faq-bot* production is back on v1.\n"
        "The A/B test v2 vs v1 on production ended: production now runs v1."
    )
    tests = {r.test.env: r.test for r in await _reports(service)}
    assert list(tests) == ["staging"] and tests["staging"].running  # the running ones only
    _, last = await _studio(service).abtests.status(await _caller(service), "faq-bot", "production")
    assert (last[0].test.status, last[0].test.end_reason) == ("ended", "production moved to v1")
    assert (await _actions(service))[:2] == ["abtest.end", "bot.rollback"]
    assert await _chat_versions(service, deployment, 6) == {"v1 says hi"}

    # A rollback to A, what the environment runs, is refused: its test runs on.
    await service.reply("/abtest faq-bot v1 v2 30")
    refused = await service.reply("/rollback faq-bot production v1")
    assert refused.startswith("faq-bot production already runs v1: nothing to roll back")
    assert [r.test.env for r in await _reports(service)] == ["production", "staging"]

    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"fallback": "v3 says hi"})
    promoted = await service.reply("/promote faq-bot")  # staging moves to v3
    assert "The A/B test v2 vs v1 on staging ended: staging now runs v3." in promoted
    assert [r.test.env for r in await _reports(service)] == ["production"]


async def test_promote_version_checks_like_a_promotion(service: Service) -> None:
    """`Operations.promote_version`, the winner's path: admins only, an existing other version,
    bound to what the environment ran when asked, audited as a promotion."""
    await two_versions(service)
    ops = service.app.state.core.ops
    owner = await _caller(service)
    viewer = Caller(owner.team_id, owner.team, "http:vi", Role.VIEWER)
    with pytest.raises(ForbiddenError, match="Promoting needs the admin role"):
        await ops.promote_version(viewer, "faq-bot", env="production", version=2)
    with pytest.raises(NotFoundError, match="faq-bot has no version v5"):
        await ops.promote_version(owner, "faq-bot", env="production", version=5)
    with pytest.raises(ConflictError, match="faq-bot production already runs v1"):
        await ops.promote_version(owner, "faq-bot", env="production", version=1)
    bot = (await ops.draft(owner, "faq-bot")).bot_id
    with pytest.raises(ConflictError, match="changed since you were asked"):
        await ops.promote_version(
            owner, "faq-bot", env="production", version=2, expect=Expected(bot, version=2)
        )
    assert await _production(service) == 1
    result = await ops.promote_version(
        owner, "faq-bot", env="production", version=2, expect=Expected(bot, version=1)
    )
    assert (result.version, result.env, result.created, result.notes) == (
        2,
        "production",
        False,
        [],
    )
    assert await _production(service) == 2
    (event, *_) = await service.call("GET", "/api/v1/bots/faq-bot/history")
    assert (event["action"], event["before"], event["after"]) == (
        "bot.promote",
        {"env": "production", "version": 1},
        {"env": "production", "version": 2, "forced": False},
    )


async def test_real_turns_and_their_thumbs_count_for_their_variant(service: Service) -> None:
    """End users on the web: each answer is stored with its variant, and the thumbs they give on
    the chat page count for the variant that answered."""
    deployment = await two_versions(service)
    await service.reply(START)
    got = {"v1 says hi": 0, "v2 says hi": 0}
    for _ in range(24):
        answer = (await service.chat(deployment, "hello")).json()
        got[answer["reply"]] += 1
        rating = "up" if answer["reply"] == "v2 says hi" else "down"
        rated = await service.client.post(
            f"/api/v1/chat/{deployment}/feedback",
            json={
                "session": answer["session"],
                "message_id": answer["message_id"],
                "rating": rating,
            },
        )
        assert rated.status_code == 204
    assert min(got.values()) > 0
    (report,) = await _reports(service)
    assert (report.a.turns, report.a.users, report.a.downs, report.a.ups) == (
        got["v1 says hi"],
        got["v1 says hi"],
        got["v1 says hi"],
        0,
    )
    assert (report.b.turns, report.b.ups, report.b.downs) == (got["v2 says hi"],) * 2 + (0,)
    said = await service.reply(STATUS)
    assert f"Turns:           v1: {got['v1 says hi']} · v2: {got['v2 says hi']}" in said
    assert "v1: 0% of" in said and "v2: 100% of" in said


async def test_a_staging_test_is_addressed_with_env_while_production_runs_one(
    service: Service,
) -> None:
    """Status, stop and promote-winner take `--env`; every hint about a staging test names it
    (the command without it acts on production's)."""
    await two_versions(service)
    await service.reply(START)
    assert await service.reply("/abtest faq-bot status --env staging") == (
        "*faq-bot* has no A/B test on staging yet. `/abtest faq-bot vA vB PERCENT --env staging` "
        "sends PERCENT% of staging's end users to vB (vA: what staging runs)."
    )
    await service.reply("/abtest faq-bot v2 v1 50 --env staging")
    production, staging = (r.test for r in await _reports(service))
    refused = await service.reply("/abtest faq-bot v2 v1 10 --env staging")
    assert refused == (
        "faq-bot already runs an A/B test on staging (v2 vs v1, 50% on v1): one at a time. Stop "
        "it first: /abtest faq-bot stop --env staging"
    )
    assert "runs v2, not v1 (/abtest faq-bot v2 vB 5 --env staging)" in await service.reply(
        "/abtest faq-bot v1 v2 5 --env staging"
    )
    said = await service.reply("/abtest faq-bot status --env staging")
    assert said.startswith("*faq-bot* A/B test on staging since ")
    assert "on production" not in said
    assert "Let it run; `/abtest faq-bot stop --env staging` ends it." in said

    await traffic(service, "faq-bot", staging.id, "A", turns=40, ups=10, downs=30)
    await traffic(service, "faq-bot", staging.id, "B", turns=40, ups=30, downs=10)
    question = await service.reply("/abtest faq-bot promote-winner --env staging")
    assert question.startswith("End the A/B test of *faq-bot* and run v1 in staging? v1 won")
    done = await service.reply("yes")
    assert done.endswith("*faq-bot* staging now runs v1, and the A/B test ended.")
    view = await service.call("GET", "/api/v1/bots/faq-bot")
    assert view["environments"] == {"production": 1, "staging": 1}
    (still,) = await _reports(service)
    assert still.test.id == production.id and still.test.running

    await service.reply("/abtest faq-bot v1 v2 50 --env staging")
    stopped = await service.reply("/abtest faq-bot stop --env staging")
    assert stopped.startswith("Stopped the A/B test of *faq-bot* on staging (v1 vs v2)")
    assert stopped.endswith("`/abtest faq-bot status --env staging` still shows its results.")
    assert [r.test.id for r in await _reports(service)] == [production.id]
    assert await service.reply("/abtest faq-bot stop --env staging") == (
        "faq-bot runs no A/B test on staging: start one with /abtest faq-bot vA vB PERCENT "
        "--env staging"
    )


async def _b_wins(service: Service, test_id: int) -> None:
    await traffic(service, "faq-bot", test_id, "A", turns=40, ups=10, downs=30)
    await traffic(service, "faq-bot", test_id, "B", turns=40, ups=30, downs=10)


CHANGED = "The A/B test changed since you were asked; nothing was done. Ask again."


async def test_a_confirmed_winner_is_the_one_asked_about(service: Service) -> None:
    """The confirmation is bound to the test and its winner: another test on the same versions,
    or a winner that changed meanwhile, is refused and nothing moves."""
    await two_versions(service)
    await service.reply(START)
    first = await _test_id(service)
    await _b_wins(service, first)
    assert "run v2 in production?" in await service.reply("/abtest faq-bot promote-winner")
    # Meanwhile the test is stopped and another one (same versions, B winning too) started.
    await service.call("POST", "/api/v1/bots/faq-bot/abtest/stop")
    await service.call("POST", "/api/v1/bots/faq-bot/abtest", json={"a": 1, "b": 2, "percent": 50})
    second = await _test_id(service)
    await _b_wins(service, second)
    assert await service.reply("yes") == CHANGED
    assert await _production(service) == 1
    (report,) = await _reports(service)
    assert report.test.id == second and report.test.running

    # Asked while B won; by the time of "yes", A wins: nothing is stopped.
    assert "run v2 in production?" in await service.reply("/abtest faq-bot promote-winner")
    await traffic(service, "faq-bot", second, "A", turns=200, ups=190, downs=10)
    await traffic(service, "faq-bot", second, "B", turns=200, downs=200)
    assert await service.reply("yes") == CHANGED
    (report,) = await _reports(service)
    assert report.test.running and await _production(service) == 1
    assert "keep production on v1?" in await service.reply("/abtest faq-bot promote-winner")
    assert (await service.reply("yes")).endswith("*faq-bot* production stays on v1.")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    """The service on a SQLite file, and on PostgreSQL when available."""
    if request.param == "sqlite":
        async with running_service(service_settings(tmp_path)) as service:
            yield service
        return
    server = request.getfixturevalue("postgres_url")
    url = await migrated_postgres_database(server)
    try:
        settings = service_settings(tmp_path, database_url=url, secret_key="test-secret")
        async with running_service(settings) as service:
            yield service
    finally:
        await drop_postgres_database(server, url)


async def test_a_start_waits_for_a_promotion_under_way(any_service: Service) -> None:
    """vA is checked in the transaction that inserts the test, with the pointer locked: a start
    racing a promotion sees the version it moved to, and refuses."""
    service = any_service
    await two_versions(service)
    bot = await bot_id(service, "faq-bot")
    async with service.app.state.core.db.write() as session:  # production -> v2, not committed
        repo = BotRepository(session)
        v2 = await repo.version(bot, 2)
        assert v2 is not None and v2.id is not None
        await repo.set_pointer(bot, "production", v2.id)
        starting = asyncio.create_task(service.reply(START))
        await asyncio.sleep(0.5)
        assert not starting.done()  # it waits for the promotion
    assert (await starting).startswith(
        "vA must be what production runs now: faq-bot production runs v2, not v1"
    )
    assert await _reports(service) == []
