"""What the web routes need from the composition root, and the caller behind a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from adapters.mailbox import Mailbox
from adapters.web.rate_limit import RateLimiter
from adapters.web.sessions import SessionIssuer
from runtime.cluster.leader import Leadership
from runtime.runtime import Runtime
from studio.engine import Studio
from studio.errors import BadRequestError, UnauthorizedError
from studio.operations import Operations
from studio.roles import Caller
from studio.settings import Settings


class BodyIn(BaseModel):
    """A request body: a field the route does not take is refused (422, naming it), never
    ignored (`{"to": "staging", "forced": true}` would otherwise promote unforced)."""

    model_config = ConfigDict(extra="forbid")


def refuse_nul(text: str) -> None:
    """PostgreSQL stores no NUL character in text: a message holding one is refused up front."""
    if "\x00" in text:
        raise BadRequestError("the message holds a NUL character")


def malformed_json(exc: RequestValidationError) -> str | None:
    """What is wrong with a body that is not JSON at all (not a field of it), in one line."""
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") != "json_invalid":
        return None
    return f"malformed JSON: {first.get('ctx', {}).get('error', 'not JSON')}"


@dataclass(slots=True)
class WebServices:
    settings: Settings
    ops: Operations
    runtime: Runtime
    studio: Studio
    mailbox: Mailbox
    sessions: SessionIssuer
    session_limiter: RateLimiter
    address_limiter: RateLimiter
    leadership: Leadership  # the process's: /readyz tells its role


async def services(request: Request) -> WebServices:
    """Async on purpose: FastAPI runs plain `def` dependencies in a thread pool."""
    return request.app.state.services  # type: ignore[no-any-return]


_bearer = HTTPBearer(
    auto_error=False,  # our own 401, in our error shape
    scheme_name="bearerAuth",
    description="A team API key (`python main.py apikey create`): `Authorization: Bearer KEY`",
)


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller behind the request's key; declares the bearer scheme in the OpenAPI document."""
    key = credentials.credentials.strip() if credentials is not None else ""
    if not key:
        raise UnauthorizedError("missing API key: send 'Authorization: Bearer KEY'")
    return await (await services(request)).ops.authenticate(key)
