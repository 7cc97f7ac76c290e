"""Team secrets over REST: `GET /api/v1/secrets`, `PUT|DELETE /api/v1/secrets/{name}`
(`/secret` in chat; `studio.team_secrets` decides).

A value goes in and never comes out: answers carry names, times and the bots whose tools use
each secret. Listing is for editors and up; setting and removing for admins and up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from pydantic import Field

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import errors
from runtime.secrets import MAX_SECRET_CHARS
from studio.roles import Caller
from studio.team_secrets import SecretRemoved, SecretSaved, SecretView

router = APIRouter(prefix="/api/v1", tags=["secrets"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
# Checked by the operation, whose message names the rule (1-64 of a-z, 0-9, '_', '-').
Name = Annotated[str, PathParam(min_length=1, max_length=200)]


class ValueIn(BodyIn):
    value: str = Field(
        description=f"the secret's value: 1 to {MAX_SECRET_CHARS} characters on one line"
    )


@router.get("/secrets", response_model=list[SecretView], responses=errors(401, 403))
async def list_secrets(who: Who, svc: Services) -> list[SecretView]:
    """The team's secrets (editors and up): names, when and by whom each was set, and the bots
    whose tools use it (drafts and the versions environments run). Never a value."""
    return await svc.studio.secrets.listed(who)


@router.put(
    "/secrets/{name}", response_model=SecretSaved, responses=errors(400, 401, 403, 413, 422)
)
async def set_secret(name: Name, body: ValueIn, who: Who, svc: Services) -> SecretSaved:
    """Create or replace a secret (admins and up). Stored encrypted; the audit trail records
    that it changed, never the value. `created` is false when it replaced a value."""
    return await svc.studio.secrets.set(who, name, body.value)


@router.delete(
    "/secrets/{name}", response_model=SecretRemoved, responses=errors(401, 403, 404, 422)
)
async def remove_secret(name: Name, who: Who, svc: Services) -> SecretRemoved:
    """Delete a secret (admins and up); `used_by` names the bots whose tools are now refused
    until it is set again."""
    return await svc.studio.secrets.remove(who, name)
