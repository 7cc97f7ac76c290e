"""`/review` and online evaluation over REST: the same operations as `/review BOT` and
`/eval BOT online` in chat (`studio.review`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, StringConstraints

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import errors
from builders.spec import MAX_DB_INT
from studio.commands import DatasetRef
from studio.errors import NotFoundError
from studio.review import OnlineView, why
from studio.roles import Caller
from studio.views import Timestamp

router = APIRouter(prefix="/api/v1", tags=["review"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class ExchangeOut(BaseModel):
    role: str  # user, assistant, or human (a person of the team)
    text: str


class ReviewItemOut(BaseModel):
    id: int  # the answer's message id (what `review/add` takes)
    at: Timestamp
    channel: str
    version: int | None
    variant: str | None  # "A" or "B" during a live A/B test
    why: str  # "👎 by 2 people", "flagged 1/5: reason"
    rated_down: int
    rated_up: int
    score: float | None  # online evaluation's, 0..1
    flagged: bool
    reason: str  # the judge's
    user_message: str | None
    answer: str
    before: list[ExchangeOut]  # the exchange before the user's message


class ReviewOut(BaseModel):
    bot: str
    items: list[ReviewItemOut]  # newest first, at most 20


class ReviewAddIn(BodyIn):
    ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_DB_INT)]], Field(min_length=1, max_length=50)
    ]
    dataset: DatasetRef


class ReviewAddedOut(BaseModel):
    dataset: str
    text: str  # what the Studio says about it


class ScoresOut(BaseModel):
    judged: int
    mean_score: float | None
    flagged: int
    failed: int  # the judge gave no grade
    cost_usd: float


class OnlineOut(BaseModel):
    bot: str
    enabled: bool
    percent: float | None
    rubric: str | None
    judge_model: str | None
    updated_by: str | None
    updated_at: Timestamp | None
    last_7_days: ScoresOut


class OnlineIn(BodyIn):
    percent: Annotated[float, Field(gt=0, le=100)]
    rubric: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


def _online(view: OnlineView) -> OnlineOut:
    setting, recent = view.setting, view.recent
    return OnlineOut(
        bot=view.bot,
        enabled=setting is not None,
        percent=setting.percent if setting else None,
        rubric=setting.rubric if setting else None,
        judge_model=view.judge_model,
        updated_by=setting.updated_by if setting else None,
        updated_at=setting.updated_at if setting else None,
        last_7_days=ScoresOut(
            judged=recent.judged,
            mean_score=recent.mean,
            flagged=recent.flagged,
            failed=recent.failed,
            cost_usd=recent.cost_usd,
        ),
    )


@router.get("/bots/{bot}/review", response_model=ReviewOut, responses=errors(401, 403, 404, 422))
async def review(bot: str, who: Who, svc: Services) -> ReviewOut:
    """The latest answers end users rated down or online evaluation flagged, not yet in one of
    the bot's datasets, newest first, with the user's message and the exchange before it (as
    stored: masked when the bot's PII guard is on)."""
    found = await svc.studio.review.review(who, bot)
    return ReviewOut(
        bot=found.bot,
        items=[
            ReviewItemOut(
                id=item.message_id,
                at=item.at,
                channel=item.channel,
                version=item.version,
                variant=item.variant,
                why=why(item),
                rated_down=item.downs,
                rated_up=item.ups,
                score=item.score,
                flagged=item.flagged,
                reason=item.reason,
                user_message=item.question,
                answer=item.answer,
                before=[ExchangeOut(role=role, text=text) for role, text in item.before],
            )
            for item in found.items
        ],
    )


@router.post(
    "/bots/{bot}/review/add",
    response_model=ReviewAddedOut,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)
async def review_add(bot: str, body: ReviewAddIn, who: Who, svc: Services) -> ReviewAddedOut:
    """Add answers (ids from the review) to a dataset, created when new (editors; the evaluation
    gate's dataset: admins): each becomes a row with its user message, the exchange before it
    and the answer given."""
    said = await svc.studio.review.add(who, bot, body.dataset, body.ids)
    return ReviewAddedOut(dataset=body.dataset, text=said.text)


@router.get(
    "/bots/{bot}/evals/online", response_model=OnlineOut, responses=errors(401, 403, 404, 422)
)
async def online(bot: str, who: Who, svc: Services) -> OnlineOut:
    """The bot's online evaluation (`enabled` false: off) and its last 7 days' verdicts."""
    return _online(await svc.studio.review.online_view(who, bot))


@router.put(
    "/bots/{bot}/evals/online",
    response_model=OnlineOut,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
)
async def set_online(bot: str, body: OnlineIn, who: Who, svc: Services) -> OnlineOut:
    """Judge `percent` of the bot's live answers by `rubric` in the background (admins); 409
    without a judge model (STUDIO_JUDGE_MODEL)."""
    view = await svc.studio.review.set_online(who, bot, percent=body.percent, rubric=body.rubric)
    return _online(view)


@router.delete("/bots/{bot}/evals/online", status_code=204, responses=errors(401, 403, 404, 422))
async def remove_online(bot: str, who: Who, svc: Services) -> Response:
    """Turn the bot's online evaluation off (admins); its verdicts so far stay. 404: it had
    none."""
    if await svc.studio.review.turn_off(who, bot) is None:
        raise NotFoundError(f"{bot} has no online evaluation")
    return Response(status_code=204)
