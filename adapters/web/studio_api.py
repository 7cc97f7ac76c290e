"""The Studio over HTTP (trusted fronts: the web console, the terminal, a custom bridge), bot
tests, and invites.

`POST /api/v1/studio/messages` needs an owner or admin key; `user` names the member the front
speaks for (`http:<user>` in the team), or, when absent, the key's own member. What the Studio
says later (a test report) is fetched with `GET /api/v1/studio/messages?after=N`; a front that
starts fresh asks once and begins after the `latest` id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field, model_validator

from adapters.web.deps import BodyIn, WebServices, caller, refuse_nul, services
from adapters.web.error_docs import API_ERRORS
from builders.spec import MAX_DB_INT, TestCase
from runtime.messages import Attachment, Button, IncomingMessage, OutgoingMessage
from runtime.messages import Field as ReplyField
from runtime.secrets import MAX_SECRET_CHARS
from studio.address import PULL_CHANNEL, studio_address
from studio.commands import MAX_INPUT_CHARS
from studio.errors import ForbiddenError, TooLargeError
from studio.presenters import render_text
from studio.replies import secret_action
from studio.roles import Caller, Role
from studio.test_report import CaseResult

router = APIRouter(prefix="/api/v1", responses=API_ERRORS)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class StudioIn(BodyIn):
    """`text` or a button's `action` (not both: one of them would go unheard)."""

    text: str = ""
    action: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.@-]{1,80}$")

    @model_validator(mode="after")
    def _one_of(self) -> StudioIn:
        if self.action is not None and self.text:
            raise ValueError("give text or action, not both")
        return self


class SecretIn(BodyIn):
    """A value a Studio answer asked for privately (its `secret-form:REQUEST:NAME` button)."""

    request: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    value: str = Field(min_length=1, max_length=MAX_SECRET_CHARS)
    user: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.@-]{1,80}$")


class MessageOut(BaseModel):
    text: str
    fields: list[ReplyField]
    buttons: list[Button]
    file: Attachment | None


class StudioOut(BaseModel):
    reply: str  # every message as plain text
    messages: list[MessageOut]


class NoticesOut(BaseModel):
    messages: list[MessageOut]
    last: int  # ask with after=last next time
    latest: int  # the member's newest message id: a front that starts fresh begins there


class InviteOut(BaseModel):
    code: str


class ReportOut(BaseModel):
    bot: str
    spec_hash: str
    passed: int
    failed: int
    results: list[dict[str, Any]]


def _out(message: OutgoingMessage) -> MessageOut:
    return MessageOut(
        text=message.text,
        fields=list(message.fields),
        buttons=list(message.buttons),
        file=message.file,
    )


async def _identity(who: Caller, user: str | None, svc: WebServices) -> str:
    """The member a front speaks for: the key's own (whose role is the key's: `/role` leaves keys
    alone), or `user`, who must not outrank the key, so an admin key cannot act as an owner."""
    who.require(Role.ADMIN, "Speaking for members of the team")
    if not user:
        return who.identity
    identity = f"http:{user}"
    role = await svc.studio.members.role_of(who.team_id, identity)
    if role is not None and role.rank > who.role.rank:
        raise ForbiddenError(
            f"{identity} is {role.value}: this {who.role.value} key cannot speak for them"
        )
    return identity


@router.post("/studio/messages", response_model=StudioOut, tags=["studio"])
async def studio_message(body: StudioIn, who: Who, svc: Services) -> StudioOut:
    """Say something to the Studio (text, or a button's `action`) as `user`."""
    if len(body.text) > MAX_INPUT_CHARS:
        raise TooLargeError(f"message too long: at most {MAX_INPUT_CHARS} characters")
    refuse_nul(body.text)
    identity = await _identity(who, body.user, svc)
    message = IncomingMessage(
        address=studio_address(PULL_CHANNEL, who.team_id, identity),
        text=body.text,
        action=body.action,
    )
    reply = await svc.runtime.answer(message)
    return StudioOut(
        reply="\n\n".join(render_text(m) for m in reply.messages),
        messages=[_out(m) for m in reply.messages],
    )


@router.post("/studio/secrets", response_model=StudioOut, tags=["studio"])
async def studio_secret(body: SecretIn, who: Who, svc: Services) -> StudioOut:
    """Give the Studio a value it asked for privately (a team secret's, or one a deployment
    needs): sealed at once, never part of a chat message; answered as the request says."""
    identity = await _identity(who, body.user, svc)
    message = IncomingMessage(
        address=studio_address(PULL_CHANNEL, who.team_id, identity),
        action=secret_action(svc.ops.cipher, body.value, request=body.request),
    )
    reply = await svc.runtime.answer(message)
    return StudioOut(
        reply="\n\n".join(render_text(m) for m in reply.messages),
        messages=[_out(m) for m in reply.messages],
    )


@router.get("/studio/messages", response_model=NoticesOut, tags=["studio"])
async def studio_notices(
    who: Who,
    svc: Services,
    after: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
    user: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.@-]{1,80}$")] = None,
) -> NoticesOut:
    """What the Studio said later (progress and reports of background test runs)."""
    identity = await _identity(who, user, svc)
    found = await svc.mailbox.fetch(who.team_id, identity, after=after)
    last = found[-1][0] if found else after
    latest = await svc.mailbox.latest_id(who.team_id, identity)
    return NoticesOut(messages=[_out(m) for _, m in found], last=last, latest=latest)


@router.post("/invites", response_model=InviteOut, status_code=201, tags=["team"])
async def invite(who: Who, svc: Services) -> InviteOut:
    return InviteOut(code=await svc.studio.members.create_invite(who))


@router.get("/bots/{bot}/tests", response_model=list[TestCase], tags=["tests"])
async def list_tests(bot: str, who: Who, svc: Services) -> list[TestCase]:
    return await svc.studio.tests.cases(who, bot)


@router.post("/bots/{bot}/tests", status_code=201, tags=["tests"])
async def add_test(bot: str, case: TestCase, who: Who, svc: Services) -> dict[str, int]:
    """Add a test case (several `turns` for a multi-turn case) to the draft."""
    number, _ = await svc.studio.tests.add(who, bot, case)
    return {"number": number}


@router.delete("/bots/{bot}/tests/{number}", status_code=204, tags=["tests"])
async def remove_test(
    bot: str, number: Annotated[int, Path(ge=1, le=MAX_DB_INT)], who: Who, svc: Services
) -> Response:
    await svc.studio.tests.remove(who, bot, number)
    return Response(status_code=204)


@router.post("/bots/{bot}/tests/run", response_model=ReportOut, tags=["tests"])
async def run_tests(bot: str, who: Who, svc: Services) -> ReportOut:
    """Run the draft's tests and wait for the report (stored for promotion)."""
    report = await svc.studio.tests.run(who, bot)
    return ReportOut(
        bot=report.bot,
        spec_hash=report.spec_hash,
        passed=report.passed,
        failed=report.failed,
        results=[CaseResult.to_json(r) for r in report.results],
    )
