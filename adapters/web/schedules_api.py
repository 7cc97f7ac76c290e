"""Schedules, follow-ups and triggers over REST: the same operations as `/schedule` and
`/followup` in chat (`studio.schedules`). Adding and removing edit the draft (end users once
promoted); pausing and resuming act at once in every environment; a trigger makes the bot
message a known end user now."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, StringConstraints, model_validator

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import errors
from builders.spec import MAX_FOLLOWUP_MINUTES, PROMPT_PREFIX, FollowUp, Schedule, ScheduleId
from studio.commands import Place, Proactive, ZoneName
from studio.roles import Caller
from studio.views import Timestamp

router = APIRouter(prefix="/api/v1", tags=["schedules"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
EndUser = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ScheduleIn(BodyIn):
    cron: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    message: Proactive  # "prompt: ..." is written by the bot from that prompt
    # slack:C…, #channel, a Telegram chat id (or telegram:ID), web:SESSION; none: each end user
    to: Place | None = None
    tz: ZoneName = "UTC"
    id: ScheduleId | None = None  # default: the first free of s1, s2, …
    grace_minutes: Annotated[int, Field(ge=0, le=24 * 60)] | None = None


class ScheduleAddedOut(BaseModel):
    schedule: Schedule
    revision: int  # the draft's revision after the change
    next_run: Timestamp | None  # in the schedule's time zone


class LastRunOut(BaseModel):
    due_at: Timestamp
    status: str  # sending, sent, failed, skipped
    sent: int
    failed: int
    error: str | None


class ScheduleStatusOut(BaseModel):
    env: str
    version: int
    schedule_id: str
    next_run: Timestamp | None
    last_run: LastRunOut | None
    paused: bool


class SchedulesOut(BaseModel):
    bot: str
    revision: int
    schedules: list[Schedule]  # the draft's
    live: list[ScheduleStatusOut]  # per environment that runs a version, and schedule


class PausedOut(BaseModel):
    id: str
    paused: bool
    changed: bool  # False: it was so already


class FollowUpIn(BodyIn):
    after_minutes: Annotated[int, Field(ge=1, le=MAX_FOLLOWUP_MINUTES)]
    message: Proactive
    times: Annotated[int, Field(ge=1, le=10)] = 1
    id: ScheduleId | None = None  # default: the first free of f1, f2, …


class FollowUpAddedOut(BaseModel):
    followup: FollowUp
    revision: int


class FollowUpsOut(BaseModel):
    bot: str
    revision: int
    followups: list[FollowUp]


class TriggerIn(BodyIn):
    user: EndUser  # as stored (telegram:123) or bare (123)
    channel: str = Field(max_length=20, pattern=r"^[a-z][a-z0-9-]*$")  # a channel's kind
    text: Proactive | None = None
    prompt: Proactive | None = None
    env: Literal["staging", "production"] = "production"

    @model_validator(mode="after")
    def _one_message(self) -> TriggerIn:
        if (self.text is None) == (self.prompt is None):
            raise ValueError("give text or prompt (one of them)")
        return self

    @property
    def message(self) -> str:
        return self.text if self.text is not None else f"{PROMPT_PREFIX} {self.prompt}"


class TriggerOut(BaseModel):
    conversation_id: int
    text: str  # what was sent (a prompt's answer)
    channel: str
    user: str


@router.get(
    "/bots/{bot}/schedules", response_model=SchedulesOut, responses=errors(401, 403, 404, 422, 501)
)
async def list_schedules(bot: str, who: Who, svc: Services) -> SchedulesOut:
    """The draft's schedules and, per live environment, each one's next run (in its time
    zone), last run and whether it is paused."""
    known = await svc.studio.schedules.statuses(who, bot)
    return SchedulesOut(
        bot=known.draft.name,
        revision=known.draft.revision,
        schedules=list(known.draft.spec.schedules),
        live=[
            ScheduleStatusOut.model_validate(status, from_attributes=True) for status in known.live
        ],
    )


@router.post(
    "/bots/{bot}/schedules",
    response_model=ScheduleAddedOut,
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 501),
)
async def add_schedule(bot: str, body: ScheduleIn, who: Who, svc: Services) -> ScheduleAddedOut:
    """Add a schedule to the draft (editors): an invalid cron or time zone, a target the bot
    cannot reach or a 101st schedule is a 422 that changes nothing."""
    added = await svc.studio.schedules.add_schedule(
        who,
        bot,
        cron=body.cron,
        message=body.message,
        to=body.to,
        tz=body.tz,
        schedule_id=body.id,
        grace_minutes=body.grace_minutes,
    )
    schedule = added.item
    assert isinstance(schedule, Schedule)
    return ScheduleAddedOut(schedule=schedule, revision=added.revision, next_run=added.next_run)


@router.delete(
    "/bots/{bot}/schedules/{schedule_id}",
    status_code=204,
    responses=errors(401, 403, 404, 409, 422),
)
async def remove_schedule(bot: str, schedule_id: str, who: Who, svc: Services) -> Response:
    """Remove a schedule from the draft (editors); environments keep it until promoted."""
    await svc.studio.schedules.remove_schedule(who, bot, schedule_id)
    return Response(status_code=204)


@router.post(
    "/bots/{bot}/schedules/{schedule_id}/pause",
    response_model=PausedOut,
    responses=errors(401, 403, 404, 422, 501),
)
async def pause_schedule(bot: str, schedule_id: str, who: Who, svc: Services) -> PausedOut:
    """Stop a schedule at once in every environment (editors), until resumed."""
    changed = await svc.studio.schedules.pause(who, bot, schedule_id, pause=True)
    return PausedOut(id=schedule_id, paused=True, changed=changed)


@router.post(
    "/bots/{bot}/schedules/{schedule_id}/resume",
    response_model=PausedOut,
    responses=errors(401, 403, 404, 422, 501),
)
async def resume_schedule(bot: str, schedule_id: str, who: Who, svc: Services) -> PausedOut:
    """Run a paused schedule again in every environment (editors)."""
    changed = await svc.studio.schedules.pause(who, bot, schedule_id, pause=False)
    return PausedOut(id=schedule_id, paused=False, changed=changed)


@router.get(
    "/bots/{bot}/followups", response_model=FollowUpsOut, responses=errors(401, 403, 404, 422)
)
async def list_followups(bot: str, who: Who, svc: Services) -> FollowUpsOut:
    """The draft's follow-ups."""
    draft = await svc.ops.draft(who, bot)
    return FollowUpsOut(bot=draft.name, revision=draft.revision, followups=draft.spec.followups)


@router.post(
    "/bots/{bot}/followups",
    response_model=FollowUpAddedOut,
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 501),
)
async def add_followup(bot: str, body: FollowUpIn, who: Who, svc: Services) -> FollowUpAddedOut:
    """Add a follow-up to the draft (editors); a sixth one is a 422 that changes nothing."""
    added = await svc.studio.schedules.add_followup(
        who,
        bot,
        after_minutes=body.after_minutes,
        message=body.message,
        times=body.times,
        followup_id=body.id,
    )
    followup = added.item
    assert isinstance(followup, FollowUp)
    return FollowUpAddedOut(followup=followup, revision=added.revision)


@router.delete(
    "/bots/{bot}/followups/{followup_id}",
    status_code=204,
    responses=errors(401, 403, 404, 409, 422),
)
async def remove_followup(bot: str, followup_id: str, who: Who, svc: Services) -> Response:
    """Remove a follow-up from the draft (editors)."""
    await svc.studio.schedules.remove_followup(who, bot, followup_id)
    return Response(status_code=204)


@router.post(
    "/bots/{bot}/trigger",
    response_model=TriggerOut,
    responses=errors(400, 401, 403, 404, 409, 413, 422, 501, 502),
)
async def trigger(bot: str, body: TriggerIn, who: Who, svc: Services) -> TriggerOut:
    """The bot messages a known end user now (editors): `text` as it is, or the answer the bot
    writes to `prompt`, in the user's latest conversation on `channel`. 404: the bot never
    talked to that user there (Telegram and WhatsApp cannot start a chat); 409: the
    environment runs no version, or a person of the team has the conversation now (an open
    handoff); 502: the platform refused it."""
    sent = await svc.studio.schedules.trigger(
        who, bot, env=body.env, channel=body.channel, user=body.user, message=body.message
    )
    return TriggerOut(
        conversation_id=sent.conversation_id, text=sent.text, channel=sent.channel, user=sent.user
    )
