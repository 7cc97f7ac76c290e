"""`/eval`: evaluation runs and the evaluation gate, through the feature the engine routes to
(`Studio.evals`), in a running service whose models are the fake LLM (judge: `fake-judge`).

Bots answer with the `offline` model (their fallback) unless a test says otherwise, so the fake
only hears the judge. Reports and progress go to the member's pull channel, read back over
`GET /api/v1/studio/messages`."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from builders.dataset import DatasetContent, DatasetRow, Evaluator
from builders.spec import BotSpec
from runtime.cluster.presence import LocalPresence
from runtime.evaluation.judge import NO_JUDGE_MODEL
from runtime.messages import Address
from storage.audit import AuditRepository
from storage.bots import BotRepository
from storage.datasets import DatasetRepository
from storage.evals import EvalRepository
from storage.tables import BotVersion, EvalRun
from studio.address import PULL_CHANNEL, studio_address
from studio.commands import EvalGateSet, EvalRuns
from studio.commands import EvalRun as EvalRunCommand
from studio.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from studio.evals import EvalFeature, trend_points
from studio.replies import Answer
from studio.roles import Caller, Role
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.png import png_size

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")

JUDGE = "openai/fake-judge"
GOOD = "Refunds take 5 business days."
BAD = "No idea, sorry."


@dataclass
class World:
    service: Service
    caller: Caller
    core: Any

    @property
    def evals(self) -> EvalFeature:
        return self.core.studio.evals  # type: ignore[no-any-return]

    @property
    def where(self) -> Address:
        return studio_address(PULL_CHANNEL, self.caller.team_id, self.caller.identity)

    def as_role(self, role: Role) -> Caller:
        return Caller(self.caller.team_id, self.caller.team, f"http:{role.value}", role)

    async def bot(
        self, name: str = "faq-bot", *, staging: str | None = BAD, draft: str = GOOD
    ) -> None:
        """A bot whose staging version (v1) answers `staging` and whose draft answers `draft`."""
        if staging is None:
            await self.service.import_bot(name, fallback=draft)
            return
        await self.service.import_bot(name, fallback=staging)
        await self.promote(name)
        await self.edit(name, fallback=draft)

    async def edit(self, name: str = "faq-bot", **fields: Any) -> None:
        await self.service.call("PATCH", f"/api/v1/bots/{name}", json=fields)

    async def promote(self, name: str = "faq-bot", to: str = "staging") -> None:
        await self.service.call("POST", f"/api/v1/bots/{name}/promote", json={"to": to})

    async def dataset(
        self, content: DatasetContent, name: str = "golden", bot: str = "faq-bot"
    ) -> None:
        draft = await self.core.ops.draft(self.caller, bot)
        async with self.core.db.write() as session:
            await DatasetRepository(session).save(
                team_id=self.caller.team_id,
                bot_id=draft.bot_id,
                name=name,
                content=content,
                actor="test",
            )

    async def eval(self, *versions: str, dataset: str | None = None, bot: str = "faq-bot") -> str:
        command = EvalRunCommand(bot=bot, dataset=dataset, versions=list(versions))
        answer = await self.evals.run(self.caller, bot, command, self.where)
        return answer.text

    async def finished(self) -> list[dict[str, Any]]:
        """Every message pushed to the member, once the background runs are over."""
        await self.evals.drain()
        data = await self.service.call("GET", "/api/v1/studio/messages", params={"after": 0})
        return list(data["messages"])

    async def runs(self) -> list[EvalRun]:
        async with self.core.db.read() as session:
            return list((await session.exec(select(EvalRun))).all())


@pytest.fixture
async def world(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[World]:
    settings = service_settings(tmp_path, llm_api_base=llm.base_url, judge_model=JUDGE)
    async with running_service(settings) as service:
        core = service.app.state.core
        caller = await core.ops.authenticate(service.key)
        yield World(service, caller, core)


def contains(*rows: tuple[str, str]) -> DatasetContent:
    return DatasetContent(
        rows=[DatasetRow(id=n, turns=[q], expected=e) for n, (q, e) in enumerate(rows, start=1)],
        evaluators=[Evaluator(kind="contains")],
    )


FOUR = contains(
    ("how do refunds work?", "refund"),
    ("how long does a refund take?", "5 business days"),
    ("refund window?", "days"),
    ("can I get my money back?", "refunds"),
)


# -- a run and its report -------------------------------------------------------------------


async def test_a_run_scores_staging_and_the_draft_and_reports_where_it_was_asked(
    world: World,
) -> None:
    await world.bot()
    await world.dataset(FOUR)
    said = await world.eval()
    assert said.startswith("Scoring v1 (staging) and draft of *faq-bot* on golden (4 rows, 8 ")
    assert "in the background: run 1" in said
    *progress, report = await world.finished()
    assert [m["text"] for m in progress] == [
        "faq-bot eval 2/8…",
        "faq-bot eval 4/8…",
        "faq-bot eval 6/8…",
    ]
    text = report["text"]
    assert text.startswith("*faq-bot* on golden: run 1, 4 rows, 2 version(s)")
    fields = {f["label"]: f["value"] for f in report["fields"]}
    assert list(fields) == ["v1 (staging)", "draft"]
    assert fields["v1 (staging)"].startswith("0% · 0 passed, 4 failed, 0 errors · p50 ")
    assert fields["draft"].startswith("100% · 4 passed, 0 failed, 0 errors · p50 ")
    assert fields["draft"].endswith(" · $0.00")
    assert "Changed rows (v1 → draft):" in text
    assert "• row 1: fail → pass" in text
    assert f"   v1: “{BAD}” — expected it to contain 'refund'" in text
    assert f"   draft: “{GOOD}”" in text
    assert text.endswith("Run cost: $0.00")
    picture = report["file"]
    assert picture["name"] == "faq-bot-eval-1.png" and picture["mime"] == "image/png"
    assert png_size(base64.b64decode(picture["data"])) == (700, 360)

    (run,) = await world.runs()
    assert (run.status, run.done, run.total, run.cost_usd) == ("done", 8, 8, 0.0)
    draft = await world.core.ops.draft(world.caller, "faq-bot")
    assert run.dataset_hash == FOUR.content_hash()
    assert [v["label"] for v in run.versions] == ["v1", "draft"]
    assert run.versions[1]["spec_hash"] == draft.spec.content_hash()
    async with world.core.db.read() as session:
        assert await DatasetRepository(session).snapshot(run.dataset_id, run.dataset_hash)
        events = await AuditRepository(session).events(world.caller.team_id, target="faq-bot")
    assert events[0].action == "eval.run"
    assert events[0].after == {
        "run": 1,
        "dataset": "golden",
        "dataset_hash": FOUR.content_hash(),
        "versions": ["v1", "draft"],
    }


async def test_versions_can_be_named_and_the_dataset_word_may_be_a_version(world: World) -> None:
    await world.bot()
    await world.promote()  # v2: the draft
    await world.dataset(FOUR)
    said = await world.eval("v1", dataset="draft")  # "/eval faq-bot draft v1"
    assert said.startswith("Scoring v1 and draft of *faq-bot* on golden (4 rows, 8 ")
    await world.finished()
    said = await world.eval("v2", "staging")  # the same version twice: scored once
    assert said.startswith("Scoring v2 of *faq-bot*")


async def test_show_and_list_runs(world: World) -> None:
    await world.bot()
    await world.dataset(FOUR)
    await world.eval()
    await world.finished()
    listed = await world.evals.run(world.caller, "faq-bot", EvalRuns(bot="faq-bot"), world.where)
    lines = listed.text.splitlines()
    assert lines[0] == "*faq-bot* evaluation runs, newest first:"
    assert lines[1].startswith("• 1 · golden · v1 (staging) 0%, draft 100% · $0.00 · api:")
    viewer = world.as_role(Role.VIEWER)
    shown = await world.evals.run(viewer, "faq-bot", EvalRuns(bot="faq-bot", run=1), world.where)
    assert shown.text.startswith("*faq-bot* on golden: run 1, 4 rows")
    assert shown.file is not None and shown.file.data is not None
    with pytest.raises(NotFoundError, match="faq-bot has no evaluation run 7"):
        await world.evals.run(viewer, "faq-bot", EvalRuns(bot="faq-bot", run=7), world.where)


# -- refusals ---------------------------------------------------------------------------------


async def test_bad_input_is_refused_in_one_line_and_nothing_starts(
    world: World, llm: FakeLLM
) -> None:
    await world.bot(staging=None)

    async def refused(kind: type[Exception], *versions: str, dataset: str | None = None) -> str:
        with pytest.raises(kind) as caught:
            await world.eval(*versions, dataset=dataset)
        message = str(caught.value)
        assert "\n" not in message
        return message

    assert (await refused(ConflictError)).startswith(
        "faq-bot has no datasets yet: make one with /dataset faq-bot from-last 50"
    )
    await world.dataset(FOUR)
    await world.dataset(FOUR, name="production")
    assert await refused(InvalidError) == "which dataset? golden, production"
    assert await refused(NotFoundError, dataset="gold") == (
        "faq-bot has no dataset 'gold'; it has: golden, production"
    )
    assert await refused(NotFoundError, "v9", dataset="golden") == "faq-bot has no version v9"
    assert await refused(ConflictError, "staging", dataset="golden") == (
        "faq-bot has no staging version yet"
    )
    assert await refused(InvalidError, "latest", dataset="golden") == (
        "'latest' is not a version: use draft, staging, production or v3"
    )
    unscorable = DatasetContent(
        rows=[DatasetRow(id=1, turns=["hi"]), DatasetRow(id=2, turns=["hey"])],
        evaluators=[Evaluator(kind="contains")],
    )
    await world.dataset(unscorable, name="loose")
    assert await refused(InvalidError, dataset="loose") == (
        "loose cannot be scored as it is: row 1 has no expectation, and contains needs one "
        '(and 1 more). Set it: /dataset faq-bot expect loose ROW "VALUE"'
    )

    judged = DatasetContent(
        rows=[DatasetRow(id=1, turns=["hi"])],
        evaluators=[Evaluator(kind="judge", value="is polite")],
    )
    await world.dataset(judged, name="judged")
    unjudged = EvalFeature(
        ops=world.core.ops, runner=world.core.runtime.runner, judge_model=None, push=_nowhere
    )
    with pytest.raises(ConflictError, match=re.escape(NO_JUDGE_MODEL)):
        await unjudged.start(world.caller, "faq-bot", dataset="judged", versions=[], where=None)

    broken = BotSpec(name="faq-bot", pipeline=[{"id": "find", "kind": "router"}])
    async with world.core.db.write() as session:
        repo = BotRepository(session)
        bot = await repo.get(world.caller.team_id, "faq-bot")
        assert bot is not None
        await repo.save_draft(bot, broken, expected_revision=bot.revision)
    assert (await refused(InvalidError, dataset="golden")).startswith("draft cannot run: ")

    with pytest.raises(ForbiddenError, match="Running an evaluation needs the editor role"):
        await world.evals.start(
            world.as_role(Role.VIEWER), "faq-bot", dataset="golden", versions=[], where=None
        )
    with pytest.raises(NotFoundError, match="No bot named 'faq'"):
        await world.eval(bot="faq")
    assert await world.runs() == [] and llm.calls == []


async def test_one_run_per_bot_at_a_time(world: World, llm: FakeLLM) -> None:
    await world.bot(staging=None)
    await world.edit(model="openai/fake-model")
    await world.dataset(FOUR)
    llm.stall(0.5, times=4, text=GOOD)
    await world.eval()
    with pytest.raises(ConflictError, match=r"faq-bot is already being evaluated \(run 1, 0/4\)"):
        await world.eval()
    *_, report = await world.finished()
    assert "100%" in report["fields"][0]["value"]


# -- judged and simulated rows ----------------------------------------------------------------


async def test_a_judged_run_reports_malformed_judge_output_as_errors(
    world: World, llm: FakeLLM
) -> None:
    await world.bot(staging=None, draft="Thanks for asking! It ships tomorrow.")
    content = DatasetContent(
        rows=[DatasetRow(id=1, turns=["where is my parcel?"]), DatasetRow(id=2, turns=["eta?"])],
        evaluators=[Evaluator(kind="judge", value="is polite")],
    )
    await world.dataset(content)
    world.evals.concurrency = 1  # the judge's answers in row order
    llm.reply("PASS warm")
    llm.reply("Sure, I can grade that for you.")
    await world.eval()
    (report,) = await world.finished()
    assert [f["label"] for f in report["fields"]] == ["draft"]
    assert report["fields"][0]["value"].startswith("50% · 1 passed, 0 failed, 1 errors")
    assert "Rows that could not be scored (errors) count as 0." in report["text"]
    detail = await world.evals.detail(world.caller, "faq-bot", 1)
    assert [r.checks for r in detail.results] == [
        [{"kind": "judge", "outcome": "pass", "reason": ""}],
        [
            {
                "kind": "judge",
                "outcome": "error",
                "reason": "the judge gave no verdict: Sure, I can grade that for you.",
            }
        ],
    ]
    assert [call.model for call in llm.calls] == ["fake-judge", "fake-judge"]


async def test_a_simulated_user_run(world: World, llm: FakeLLM) -> None:
    await world.bot(staging=None)
    await world.edit(model="openai/fake-model")
    simulated = Evaluator(
        kind="simulated", persona="A customer who wants a refund", value="offers a refund", turns=2
    )
    await world.dataset(
        DatasetContent(rows=[DatasetRow(id=1, turns=["My order is late"])], evaluators=[simulated])
    )
    llm.reply("Sorry about that.")  # the bot
    llm.reply("I want my money back.")  # the simulated user
    llm.reply("I have refunded you.")  # the bot
    llm.reply("PASS it refunds")  # the judge
    await world.eval()
    (report,) = await world.finished()
    assert report["fields"][0]["value"].startswith("100% · 1 passed")
    assert "a price is unknown" in report["text"]  # fake-model has no price
    (result,) = (await world.evals.detail(world.caller, "faq-bot", 1)).results
    assert result.answer == "I have refunded you."
    assert result.transcript == [
        {"role": "user", "text": "My order is late"},
        {"role": "assistant", "text": "Sorry about that."},
        {"role": "user", "text": "I want my money back."},
        {"role": "assistant", "text": "I have refunded you."},
    ]
    assert [c.model for c in llm.calls] == ["fake-model", "fake-judge", "fake-model", "fake-judge"]


# -- the gate ---------------------------------------------------------------------------------


async def test_the_gate_refuses_and_allows_promotions(world: World) -> None:
    await world.bot(staging=None, draft=BAD)
    await world.dataset(FOUR)
    gate = EvalGateSet(bot="faq-bot", dataset="golden", min_score=75)
    with pytest.raises(ForbiddenError, match="needs the admin role"):
        await world.evals.run(world.as_role(Role.EDITOR), "faq-bot", gate, world.where)
    with pytest.raises(NotFoundError, match="faq-bot has no dataset 'gold'; it has: golden"):
        await world.evals.run(
            world.caller, "faq-bot", EvalGateSet(dataset="gold", min_score=75), world.where
        )
    said = await world.evals.run(world.caller, "faq-bot", gate, world.where)
    assert said.text.startswith(
        "*faq-bot* promotions (to production always; to staging unless an owner forces it) now "
        "need an evaluation of exactly what is promoted on golden's current rows scoring at "
        "least 75%."
    )
    assert said.text.endswith("Score the draft: `/eval faq-bot golden draft`.")

    async def promote(to: str = "staging") -> tuple[int, str]:
        response = await world.service.client.post(
            "/api/v1/bots/faq-bot/promote", json={"to": to}, headers=world.service.auth()
        )
        return response.status_code, response.json().get("error", "")

    assert await promote() == (
        409,
        "not promoted: faq-bot has no evaluation of this draft on golden yet: "
        "/eval faq-bot golden draft",
    )
    await world.eval()
    await world.finished()
    assert await promote() == (409, "not promoted: faq-bot scored 0% on golden (needs 75%)")
    await world.edit(fallback="A refund takes 5 days, no refunds after.")  # 3 of 4 rows
    await world.eval("draft")
    await world.finished()
    assert await promote() == (200, "")  # 75%: v1
    assert await promote("production") == (200, "")  # v1's spec was scored as the draft

    await world.dataset(
        contains(("refund?", "refund"))
    )  # new content: earlier runs no longer count
    await world.edit(fallback=GOOD)
    assert (await promote())[1].startswith("not promoted: faq-bot has no evaluation of this draft")
    forced = await world.service.client.post(
        "/api/v1/bots/faq-bot/promote",
        json={"to": "staging", "force": True},
        headers=world.service.auth(),
    )
    assert forced.status_code == 200  # an owner may force it (v2)
    v2_first = (
        "not promoted: faq-bot has no evaluation of v2 on golden yet: /eval faq-bot golden v2"
    )
    assert await promote("production") == (409, v2_first)
    forced = await world.service.client.post(  # to production, forcing passes no gate: refused
        "/api/v1/bots/faq-bot/promote",
        json={"to": "production", "force": True},
        headers=world.service.auth(),
    )
    assert forced.status_code == 422
    assert forced.json()["error"].startswith("force (--force) is only for promotions to staging")

    shown = await world.evals.run(world.as_role(Role.VIEWER), "faq-bot", EvalGateSet(), world.where)
    assert shown.text.startswith(
        "*faq-bot* promotions need an evaluation on golden scoring at least 75%"
    )
    off = EvalGateSet(bot="faq-bot", off=True)
    removed = await world.evals.run(world.caller, "faq-bot", off, world.where)
    assert removed.text == "*faq-bot* promotions no longer need an evaluation on golden."
    assert (await world.evals.run(world.caller, "faq-bot", off, world.where)).text == (
        "Nothing changed: *faq-bot* has no evaluation gate."
    )
    assert await promote("production") == (200, "")
    async with world.core.db.read() as session:
        events = await AuditRepository(session).events(world.caller.team_id, target="faq-bot")
    gates = [(e.action, e.before, e.after) for e in events if e.action.startswith("eval.gate")]
    assert gates == [
        ("eval.gate.remove", {"dataset": "golden", "min_score": 0.75}, None),
        ("eval.gate", None, {"dataset": "golden", "min_score": 0.75}),
    ]


async def test_a_version_is_scored_under_the_hash_it_was_frozen_with(world: World) -> None:
    """A version frozen before `BotSpec` gained a field hashes otherwise when read again: a run
    records the stored hash, the one the gate compares."""
    await world.bot(staging=GOOD, draft=BAD)
    frozen = "sha256:" + "0" * 64  # what an older BotSpec hashed v1 to
    async with world.core.db.write() as session:
        (v1,) = (await session.exec(select(BotVersion))).all()
        assert v1.spec_hash != frozen
        v1.spec_hash = frozen
        session.add(v1)
    await world.dataset(FOUR)
    gate = EvalGateSet(bot="faq-bot", dataset="golden", min_score=75)
    await world.evals.run(world.caller, "faq-bot", gate, world.where)
    await world.eval("staging")
    await world.finished()
    (run,) = await world.runs()
    assert [(v["label"], v["spec_hash"]) for v in run.versions] == [("v1", frozen)]
    promoted = await world.core.ops.promote(world.caller, "faq-bot", to="production")
    assert promoted.version == 1


async def test_a_gate_whose_dataset_is_gone_refuses_with_a_way_out(world: World) -> None:
    await world.bot(staging=None)
    await world.dataset(FOUR)
    gate = EvalGateSet(bot="faq-bot", dataset="golden", min_score=50)
    await world.evals.run(world.caller, "faq-bot", gate, world.where)
    async with world.core.db.write() as session:
        repo = DatasetRepository(session)
        draft = await world.core.ops.draft(world.caller, "faq-bot")
        found = await repo.get(draft.bot_id, "golden")
        assert found is not None
        await repo.delete(found)
    with pytest.raises(
        ConflictError, match=r"needs the dataset golden, which is gone: .* gate off"
    ):
        await world.core.ops.promote(world.caller, "faq-bot", to="staging")


# -- restarts and shutdown ---------------------------------------------------------------------


async def test_a_restart_marks_running_runs_failed(world: World) -> None:
    await world.bot(staging=None)
    await world.dataset(FOUR)
    draft = await world.core.ops.draft(world.caller, "faq-bot")
    async with world.core.db.write() as session:
        await EvalRepository(session).start(
            team_id=world.caller.team_id,
            bot_id=draft.bot_id,
            dataset_id=1,
            dataset_name="golden",
            dataset_hash=FOUR.content_hash(),
            versions=[{"label": "draft", "number": None, "spec_hash": "x", "ref": "draft"}],
            total=4,
            started_by="test",
            worker="a process that stopped",
        )
    await world.evals.fail_orphaned(LocalPresence(world.core.db.worker))
    shown = await world.evals.run(world.caller, "faq-bot", EvalRuns(run=1), world.where)
    assert shown.text == (
        "*faq-bot* on golden: run 1 failed: interrupted by a restart: run it again."
    )
    said = await world.eval()  # no longer blocks a new run
    assert "run 2" in said


async def test_draining_with_a_grace_stops_a_run_and_marks_it(world: World, llm: FakeLLM) -> None:
    await world.bot(staging=None)
    await world.edit(model="openai/fake-model")
    await world.dataset(FOUR)
    llm.stall(3.0, times=4)
    await world.eval()
    await llm.wait_for_calls(1)
    await world.evals.drain(grace_s=0.05)
    (run,) = await world.runs()
    assert (run.status, run.error) == ("failed", "interrupted: the service stopped")
    assert "run 2" in await world.eval()  # a failed run no longer blocks a new one
    await world.evals.drain(grace_s=0.05)


# -- the trend ---------------------------------------------------------------------------------


def _run(run_id: int, scores: dict[str, float | None]) -> EvalRun:
    versions = [
        {"label": label, "number": None if label == "draft" else int(label[1:])} for label in scores
    ]
    summary = [{"label": label, "score": score} for label, score in scores.items()]
    return EvalRun(
        id=run_id,
        team_id=1,
        bot_id=1,
        dataset_name="golden",
        dataset_hash="h",
        versions=versions,
        status="done",
        summary=summary,
        started_by="test",
    )


def test_the_trend_adds_earlier_versions_in_number_order_with_the_draft_last() -> None:
    latest = _run(9, {"v3": 0.5, "draft": 0.75})
    earlier = [
        _run(8, {"v3": 0.25, "v2": 0.4, "draft": 0.1}),
        _run(5, {"v1": 0.2, "v2": 0.3, "v4": None}),
    ]
    points = trend_points(latest, earlier)
    assert [(p.label, p.score, p.current) for p in points] == [
        ("v1", 0.2, False),
        ("v2", 0.4, False),  # its latest earlier run
        ("v3", 0.5, True),
        ("draft", 0.75, True),  # an earlier draft was another draft
    ]


async def _nowhere(_where: Address, _answer: Answer) -> None:
    return None
