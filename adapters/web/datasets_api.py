"""A bot's datasets over REST: the same operations as `/dataset` in chat (`studio.datasets`).

`POST …/datasets` makes a dataset, or gives an existing one new rows (201 when made, 200 when
replaced): JSON `{"name", "from": "last", "count"}` (production's last answered turns),
`{"name", "from": "tests"}` (the draft's tests) or `{"name", "content": {...}}` (the whole
content), or a CSV file as a `text/csv` body with `?name=` (columns input, expected,
evaluator). Bodies are capped like every route's (1 MB, `RequestLimits`), which is also the
CSV limit. Editors change datasets; the one the bot's evaluation gate names only admins change
or remove (403 for others).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import API_ERRORS
from builders.dataset import DatasetContent, DatasetName
from studio.commands import DatasetKind
from studio.datasets import FROM_LAST, FROM_TESTS, DatasetSummary, DatasetView, Saved
from studio.errors import BadRequestError
from studio.roles import Caller, Role

router = APIRouter(prefix="/api/v1", tags=["datasets"], responses=API_ERRORS)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
Name = Annotated[DatasetName, Path(description="The dataset's name")]
DEFAULT_COUNT = 50


class DatasetIn(BodyIn):
    """How to make a dataset: of production's last answered turns or the draft's tests
    (`from`), or of the content given."""

    name: DatasetName | None = None  # default with `from`: "recent" or "tests"
    from_: Literal["last", "tests"] | None = Field(default=None, alias="from")
    count: Annotated[int, Field(ge=1, le=500)] | None = None  # with "last"; default 50
    content: DatasetContent | None = None

    @model_validator(mode="after")
    def _one_way(self) -> DatasetIn:
        if (self.from_ is None) == (self.content is None):
            raise ValueError('send "from" ("last" or "tests") or "content", one of them')
        if self.count is not None and self.from_ != "last":
            raise ValueError('"count" goes with "from": "last"')
        if self.content is not None and self.name is None:
            raise ValueError('name the dataset the content makes: "name"')
        return self


class ExpectIn(BodyIn):
    """What a row's answer must do; `kind`: the row's own evaluator that checks it (default:
    the dataset's that read the expectation, or contains when none does)."""

    expected: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    kind: DatasetKind | None = None


class DatasetsOut(BaseModel):
    bot: str
    datasets: list[DatasetSummary]


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` written in place, to stand alone in the OpenAPI
    document (these models hold no cycles)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return resolve({**defs[ref.removeprefix("#/$defs/")], **rest})
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]


@router.get("/bots/{bot}/datasets", response_model=DatasetsOut)
async def list_datasets(bot: str, who: Who, svc: Services) -> DatasetsOut:
    """The bot's datasets: rows, evaluators, where they came from, content hash."""
    name, summaries = await svc.studio.datasets.summaries(who, bot)
    return DatasetsOut(bot=name, datasets=summaries)


@router.post(
    "/bots/{bot}/datasets",
    response_model=DatasetView,
    status_code=201,
    responses={200: {"model": DatasetView, "description": "An existing dataset's rows replaced"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _inlined(DatasetIn.model_json_schema())},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def make_dataset(
    bot: str,
    request: Request,
    response: Response,
    who: Who,
    svc: Services,
    name: Annotated[DatasetName | None, Query(description="The dataset a CSV body makes")] = None,
) -> DatasetView:
    """Make a dataset, or give an existing one these rows in place of its own (its evaluators
    stay) (editors; the evaluation gate's dataset: admins). A CSV with a problem, or a content
    that cannot be scored as given (a regular expression that does not compile), is a 422 that
    changes nothing."""
    who.require(Role.EDITOR, "Making a dataset")  # before the body is read
    datasets = svc.studio.datasets
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    saved: Saved
    if content_type == "application/json":
        try:
            given = DatasetIn.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        if given.content is not None:
            assert given.name is not None
            saved = await datasets.put(who, bot, given.name, given.content)
        elif given.from_ == "tests":
            saved = await datasets.from_tests(who, bot, name=given.name or FROM_TESTS)
        else:
            count = given.count or DEFAULT_COUNT
            saved = await datasets.from_last(who, bot, count=count, name=given.name or FROM_LAST)
    elif content_type == "text/csv":
        if name is None:
            raise BadRequestError("name the dataset: POST …/datasets?name=golden")
        saved = await datasets.import_csv(who, bot, name, body, source="CSV sent by REST")
    else:
        raise BadRequestError("send JSON (application/json) or a CSV file (text/csv)")
    if saved.before is not None:
        response.status_code = 200
    return saved.view


@router.get("/bots/{bot}/datasets/{name}", response_model=DatasetView)
async def get_dataset(bot: str, name: Name, who: Who, svc: Services) -> DatasetView:
    """A dataset's content (rows, evaluators) and its content hash."""
    return await svc.studio.datasets.view(who, bot, name)


@router.patch("/bots/{bot}/datasets/{name}/rows/{row}", response_model=DatasetView)
async def expect_row(
    bot: str,
    name: Name,
    row: Annotated[int, Path(ge=1, le=1_000_000)],
    body: ExpectIn,
    who: Who,
    svc: Services,
) -> DatasetView:
    """Set what a row's answer must do (editors; the evaluation gate's dataset: admins)."""
    saved = await svc.studio.datasets.expect(who, bot, name, row, body.expected, kind=body.kind)
    return saved.view


@router.delete("/bots/{bot}/datasets/{name}", status_code=204)
async def remove_dataset(bot: str, name: Name, who: Who, svc: Services) -> Response:
    """Delete a dataset (editors; the evaluation gate's dataset: admins); evaluation runs on it
    stay."""
    await svc.studio.datasets.remove(who, bot, name)
    return Response(status_code=204)
