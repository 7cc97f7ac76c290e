"""`PUT /api/v1/members/{user}`: the Studio's `/role` over REST, with the same rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from pydantic import BaseModel

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import errors
from studio.roles import Caller, Role

router = APIRouter(prefix="/api/v1", tags=["team"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class RoleIn(BodyIn):
    role: Role


class RoleOut(BaseModel):
    identity: str
    role: Role
    before: Role


@router.put(
    "/members/{user}", response_model=RoleOut, responses=errors(400, 401, 403, 404, 409, 422)
)
async def set_role(
    user: Annotated[str, PathParam(min_length=1, max_length=200)],
    body: RoleIn,
    who: Who,
    svc: Services,
) -> RoleOut:
    """Give a member a role (admins and owners). `user` is an identity (`slack:U123`) or its
    part after ':' when unique. Only owners make or unmake owners, a team keeps one owner, and
    an API key keeps the role it was made with."""
    identity, before, after = await svc.studio.members.set_role(who, user, body.role.value)
    return RoleOut(identity=identity, role=after, before=before)
