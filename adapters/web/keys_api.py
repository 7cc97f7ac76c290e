"""The team's API keys over REST: `GET|POST /api/v1/keys`, `DELETE /api/v1/keys/{id}`.

Admins and owners only. A new key is shown once (only its hash is stored); a revoked key gets 401
from its next request on. Admins neither create nor revoke owner keys, and no key revokes itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import errors
from studio.operations import KEY_NAME_PATTERN
from studio.roles import Caller, Role
from studio.views import ApiKeyCreated, ApiKeyView

router = APIRouter(prefix="/api/v1", tags=["team"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class KeyIn(BodyIn):
    name: str = Field(pattern=KEY_NAME_PATTERN, description="who or what uses the key")
    role: Role


@router.get("/keys", response_model=list[ApiKeyView], responses=errors(401, 403))
async def list_keys(who: Who, svc: Services) -> list[ApiKeyView]:
    """The team's keys (never a key itself or its hash); `current` marks the one calling."""
    return await svc.ops.api_keys(who)


@router.post(
    "/keys",
    response_model=ApiKeyCreated,
    status_code=201,
    responses=errors(400, 401, 403, 409, 422),
)
async def create_key(body: KeyIn, who: Who, svc: Services) -> ApiKeyCreated:
    """A new key with a role; `key` is in this answer only."""
    return await svc.ops.issue_api_key(who, name=body.name, role=body.role.value)


@router.delete("/keys/{key_id}", status_code=204, responses=errors(401, 403, 404, 409, 422))
async def revoke_key(key_id: int, who: Who, svc: Services) -> Response:
    """Revoke a key; not the one this request is made with (409)."""
    await svc.ops.revoke_api_key(who, key_id)
    return Response(status_code=204)
