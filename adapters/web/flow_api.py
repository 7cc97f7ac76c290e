"""A bot's flow over REST: `GET /api/v1/bots/{bot}/flow` (its steps and edges as JSON, with the
text outline) and `GET /api/v1/bots/{bot}/flow.png` (the picture). Any member of the team may
read them; the flow is edited with `PATCH /api/v1/bots/{bot}` (`{"pipeline": [...]}`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from adapters.web.deps import WebServices, caller, services
from adapters.web.error_docs import API_ERRORS
from builders.flow import answers, outline, outline_text
from studio.flow import picture_name
from studio.flow_picture import flow_picture
from studio.roles import Caller

router = APIRouter(prefix="/api/v1", responses=API_ERRORS)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class StepOut(BaseModel):
    id: str
    kind: str
    params: dict[str, Any]
    next: str | None
    answers: bool  # the step replies (llm, template, bot)
    depth: int | None  # steps from the entry (None: no step leads to it)


class EdgeOut(BaseModel):
    source: str = Field(serialization_alias="from")
    target: str = Field(serialization_alias="to")
    label: str  # "" for `next`, "default", or a route's condition


class FlowOut(BaseModel):
    bot: str
    implicit: bool  # the plain flow of a bot without a pipeline of its own
    entry: str
    steps: list[StepOut]
    edges: list[EdgeOut]
    text: str  # the outline, as /flow shows it


@router.get("/bots/{bot}/flow", response_model=FlowOut, response_model_by_alias=True, tags=["bots"])
async def get_flow(bot: str, who: Who, svc: Services) -> FlowOut:
    """The draft's flow: steps in order of depth, the edges between them, and the outline."""
    spec = await svc.studio.flows.spec(who, bot)
    view = outline(spec)
    return FlowOut(
        bot=spec.name,
        implicit=view.implicit,
        entry=view.entry,
        steps=[
            StepOut(
                id=step.id,
                kind=step.kind,
                params=step.params,
                next=step.next,
                answers=answers(step),
                depth=view.depth.get(step.id),
            )
            for step in view.steps
        ],
        edges=[EdgeOut(source=e.source, target=e.target, label=e.label) for e in view.edges],
        text=outline_text(spec),
    )


@router.get(
    "/bots/{bot}/flow.png",
    tags=["bots"],
    response_class=Response,
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def get_flow_picture(bot: str, who: Who, svc: Services) -> Response:
    """The draft's flow as a PNG picture."""
    spec = await svc.studio.flows.spec(who, bot)
    picture = await flow_picture(outline(spec))
    disposition = f'inline; filename="{picture_name(spec.name)}"'
    return Response(
        picture.png, media_type="image/png", headers={"Content-Disposition": disposition}
    )
