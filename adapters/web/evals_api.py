"""Evaluation runs and the evaluation gate over REST: the same feature as `/eval` in chat
(`studio.evals`). A run starts in the background (`202` with its id); `GET …/evals/{id}` shows
how far it got, then its summary and per-row results, and `…/chart.png` its trend chart."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import API_ERRORS
from builders.dataset import DatasetContent
from builders.spec import MAX_DB_INT
from storage.tables import EvalGate, EvalResult, EvalRun
from studio.commands import DatasetRef, VersionRef
from studio.errors import NotFoundError
from studio.roles import Caller
from studio.views import Timestamp

router = APIRouter(prefix="/api/v1", responses=API_ERRORS, tags=["evaluations"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
RunId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


class EvalIn(BodyIn):
    dataset: DatasetRef | None = None  # default: the bot's only dataset
    versions: Annotated[list[VersionRef], Field(max_length=6)] = []  # default: staging, draft


class StartedOut(BaseModel):
    id: int
    status: str


class VersionOut(BaseModel):
    label: str  # "v3", "draft"
    number: int | None
    spec_hash: str
    ref: str  # as asked for: "staging", "v3", "draft"


class ScoreOut(BaseModel):
    label: str
    score: float | None  # 0..1, rows that could not be scored counting 0
    passed: int
    failed: int
    errors: int
    p50_ms: float | None
    cost_usd: float  # the known part
    unpriced: int  # rows whose cost is not (fully) known


class RunOut(BaseModel):
    id: int
    dataset: str
    dataset_hash: str
    status: str  # running, done, failed
    done: int
    total: int
    versions: list[VersionOut]
    summary: list[ScoreOut] | None
    cost_usd: float | None  # None: unknown (see each version's unpriced), or not done
    error: str | None
    started_by: str
    started_at: Timestamp
    finished_at: Timestamp | None


class RunsOut(BaseModel):
    bot: str
    runs: list[RunOut]


class CheckOut(BaseModel):
    kind: str
    outcome: str
    reason: str


class MessageOut(BaseModel):
    role: str
    text: str


class ResultOut(BaseModel):
    row_id: int
    # The row as the run scored it: its turns and expectation (null once the dataset is gone).
    turns: list[str] | None
    expected: str | None
    version: str
    outcome: str  # pass, fail, error
    score: float | None
    answer: str
    latency_ms: float | None
    cost_usd: float | None
    checks: list[CheckOut]
    transcript: list[MessageOut] | None


class RunDetailOut(RunOut):
    bot: str
    results: list[ResultOut]


class GateIn(BodyIn):
    dataset: DatasetRef
    min_percent: Annotated[float, Field(ge=0, le=100)]


class GateOut(BaseModel):
    dataset: str
    min_percent: float
    updated_by: str
    updated_at: Timestamp


def _run(run: EvalRun) -> dict[str, Any]:
    assert run.id is not None
    return {
        "id": run.id,
        "dataset": run.dataset_name,
        "dataset_hash": run.dataset_hash,
        "status": run.status,
        "done": run.done,
        "total": run.total,
        "versions": run.versions,
        "summary": run.summary,
        "cost_usd": run.cost_usd,
        "error": run.error,
        "started_by": run.started_by,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def _result(result: EvalResult, content: DatasetContent | None) -> ResultOut:
    row = content.row(int(result.row_id)) if content is not None else None
    return ResultOut(
        row_id=int(result.row_id),
        turns=list(row.turns) if row is not None else None,
        expected=row.expected if row is not None else None,
        version=result.version,
        outcome=result.outcome,
        score=result.score,
        answer=result.answer,
        latency_ms=result.latency_ms,
        cost_usd=result.cost_usd,
        checks=[CheckOut.model_validate(check) for check in result.checks],
        transcript=(
            [MessageOut.model_validate(m) for m in result.transcript]
            if result.transcript is not None
            else None
        ),
    )


def _gate(gate: EvalGate) -> GateOut:
    return GateOut(
        dataset=gate.dataset,
        min_percent=round(gate.min_score * 100, 6),
        updated_by=gate.updated_by,
        updated_at=gate.updated_at,
    )


@router.post("/bots/{bot}/evals", response_model=StartedOut, status_code=202)
async def start_eval(bot: str, body: EvalIn, who: Who, svc: Services) -> StartedOut:
    """Score versions of the bot on a dataset in the background (editors). Refused before
    anything starts: an unknown dataset or version (404), several datasets and none named, rows
    that cannot be scored, a version that cannot run (422), no judge model for a judge or
    simulated-user evaluator, or a run of the bot still going (409)."""
    started = await svc.studio.evals.start(
        who, bot, dataset=body.dataset, versions=body.versions, where=None
    )
    assert started.run.id is not None
    return StartedOut(id=started.run.id, status=started.run.status)


@router.get("/bots/{bot}/evals", response_model=RunsOut)
async def list_evals(bot: str, who: Who, svc: Services) -> RunsOut:
    """The bot's latest evaluation runs, newest first (any member)."""
    draft = await svc.ops.draft(who, bot)
    runs = await svc.studio.evals.runs(who, bot)
    return RunsOut(bot=draft.name, runs=[RunOut.model_validate(_run(run)) for run in runs])


@router.get("/bots/{bot}/evals/gate", response_model=GateOut)
async def get_gate(bot: str, who: Who, svc: Services) -> GateOut:
    """The bot's evaluation gate (404: it has none)."""
    found = await svc.studio.evals.gate(who, bot)
    if found is None:
        raise NotFoundError(f"{bot} has no evaluation gate")
    return _gate(found)


@router.put("/bots/{bot}/evals/gate", response_model=GateOut)
async def put_gate(bot: str, body: GateIn, who: Who, svc: Services) -> GateOut:
    """Promotions need an evaluation of exactly the spec promoted on the dataset's current rows
    scoring at least `min_percent`: to production always, to staging unless an owner forces it
    (admins; the dataset must exist)."""
    return _gate(await svc.studio.evals.set_gate(who, bot, body.dataset, body.min_percent))


@router.delete("/bots/{bot}/evals/gate", status_code=204)
async def delete_gate(bot: str, who: Who, svc: Services) -> Response:
    """No evaluation gate any more (admins); 204 whether or not there was one."""
    await svc.studio.evals.remove_gate(who, bot)
    return Response(status_code=204)


@router.get("/bots/{bot}/evals/{run_id}", response_model=RunDetailOut)
async def get_eval(bot: str, run_id: RunId, who: Who, svc: Services) -> RunDetailOut:
    """One run: its progress, then its summary per version and every row's result."""
    detail = await svc.studio.evals.detail(who, bot, run_id)
    return RunDetailOut.model_validate(
        {
            **_run(detail.run),
            "bot": detail.bot,
            "results": [_result(r, detail.content) for r in detail.results],
        }
    )


@router.get(
    "/bots/{bot}/evals/{run_id}/chart.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def get_eval_chart(bot: str, run_id: RunId, who: Who, svc: Services) -> Response:
    """A finished run's trend chart (409 until it is done)."""
    evals = svc.studio.evals
    detail = await evals.detail(who, bot, run_id, results=False)
    png = await evals.chart(detail)
    disposition = f'inline; filename="{detail.bot}-eval-{run_id}.png"'
    return Response(png, media_type="image/png", headers={"Content-Disposition": disposition})
