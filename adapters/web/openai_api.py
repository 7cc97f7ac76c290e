"""Every bot an OpenAI-compatible API: `POST /openai/v1/chat/completions`, `GET /openai/v1/models`
and `GET /openai/v1/models/{model}`, with a team API key as the bearer token.

`model` is a bot's name (its production version; any key of the team) or `name@staging` (its
staging version; editors and up). The turn itself is `runtime.api_turns`'. What the platform does
not take is refused with a 400 that names it, never ignored: `system` and `developer` messages (a
bot's prompt is set in the Studio), tool messages, non-text content, and parameters such as
`temperature` (a bot's spec decides them).

Answers and errors are in OpenAI's shapes, so its client libraries work unchanged: errors are
`{"error": {"message", "type", "param", "code"}}` (this router converts them itself; the rest of
the service keeps `{"error": str}`). A turn that failed (the model, a tool) answers 502 with the
failure's kind as `code`, and a budget's refusal 429, both with `x-should-retry: false` (the
platform retried already; the turn is stored and counted); a guardrail's refusal is an answer
with `finish_reason: "content_filter"`. `usage` adds `cost_usd` (null: unknown price).

The routes stay out of `/openapi.json`: their bodies and errors are OpenAI's (documented by
OpenAI's API reference and the README), not the service's `{"error": str}` shape the document and
its conformance test hold every route to, and the stream is server-sent events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.web.deps import WebServices, caller, malformed_json, refuse_nul, services
from runtime.api_turns import (
    AnswerStream,
    ApiAsk,
    ApiBot,
    ApiTurns,
    Env,
    UnknownBotError,
    models,
    resolve,
)
from runtime.llm import ChatMessage
from runtime.pipeline import TurnOutput
from runtime.runtime import NotLiveError
from studio.commands import MAX_INPUT_CHARS
from studio.errors import OperationError
from studio.roles import Caller, Role

PREFIX = "/openai/v1"
STAGING = "@staging"
_BUDGET_CODES = {"budget": "insufficient_quota", "rate_limit": "rate_limit_exceeded"}
_TYPES = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "insufficient_permissions"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
}


class OpenAIError(Exception):
    """An error answered in OpenAI's shape (`kind` is its `type`); `retry` False tells its
    clients not to try again (`x-should-retry`)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        retry: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorOut(error=ErrorDetail(message=message, type=kind, param=param, code=code))
        self.retry = retry

    def response(self) -> JSONResponse:
        headers = {} if self.retry else {"x-should-retry": "false"}
        return JSONResponse(self.body.model_dump(), status_code=self.status, headers=headers)


def _converted(exc: Exception) -> OpenAIError:
    """The service's own errors (the key, its role, a body that does not parse) in OpenAI's
    shape: what is malformed or invalid is a 400."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, RequestValidationError):
        if (malformed := malformed_json(exc)) is not None:
            return OpenAIError(400, malformed)
        first = exc.errors()[0]
        param = _param(tuple(first["loc"]))
        return OpenAIError(400, f"{param}: {first['msg']}", param=param)
    if isinstance(exc, OperationError):
        status, message = exc.status, exc.message
    else:
        assert isinstance(exc, StarletteHTTPException)
        status, message = exc.status_code, str(exc.detail)
    if status in _TYPES:
        kind, code = _TYPES[status]
        return OpenAIError(status, message, kind=kind, code=code)
    if status in (400, 409, 422):  # a request this service cannot take as it is
        return OpenAIError(400, message)
    return OpenAIError(status, message, kind="api_error")


def _param(loc: tuple[Any, ...]) -> str:
    """`("body", "messages", 0, "role")` as OpenAI names it: `messages[0].role`."""
    name = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or "body"


class _OpenAIRoute(APIRoute):
    """A route whose errors, its dependencies' and its body's included, are OpenAI's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (
                OpenAIError,
                OperationError,
                RequestValidationError,
                StarletteHTTPException,
            ) as exc:
                return _converted(exc).response()

        return route


def refusal(status: int, message: str) -> JSONResponse:
    """An error met before any route of this API (a body over the cap, a URL it does not
    serve), in OpenAI's shape."""
    return _converted(StarletteHTTPException(status, message)).response()


def unserved(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """A path under `PREFIX` that is none of its routes (404), or a method a route does not
    take (405), said plainly in OpenAI's shape, as its client libraries expect."""
    if exc.status_code not in (404, 405):
        return refusal(exc.status_code, str(exc.detail))
    return refusal(
        exc.status_code,
        f"Invalid URL ({request.method} {request.url.path}): a bot answers "
        f"`POST {PREFIX}/chat/completions`, and `GET {PREFIX}/models` lists the bots",
    )


router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=_OpenAIRoute)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


# -- payloads ---------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorOut(BaseModel):
    error: ErrorDetail


class MessageIn(BaseModel):
    """One message; content is text, or a list of text parts. Other keys are refused unless
    empty (a client passing back an answer it got may send `refusal: null`)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: StrictBool = False


class ChatCompletionIn(BaseModel):
    """What the platform takes of OpenAI's chat completion request; any other parameter set is
    refused (`_refuse_unsupported`)."""

    model_config = ConfigDict(extra="allow")
    model: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    messages: list[MessageIn]
    stream: StrictBool | None = None  # as OpenAI's: "yes" or 1 is refused, not taken as true
    stream_options: StreamOptions | None = None
    user: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    n: int | None = None  # one answer: 1 or unset


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChoiceOut(BaseModel):
    index: int = 0
    message: AssistantMessageOut
    finish_reason: Literal["stop", "content_filter"]
    logprobs: None = None


class UsageOut(BaseModel):
    """OpenAI's usage, and what the turn cost (`cost_usd`, an extension; null: unknown)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut


class ChunkChoiceOut(BaseModel):
    index: int = 0
    delta: dict[str, str]
    finish_reason: Literal["stop", "content_filter"] | None = None
    logprobs: None = None


class ChatCompletionChunkOut(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoiceOut]
    usage: UsageOut | None = None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str  # the team


class ModelListOut(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


# -- the request, checked -----------------------------------------------------------------------


def _set(extra: dict[str, Any] | None) -> list[str]:
    """The keys of unknown fields the caller gave a value (null or empty counts as not set)."""
    return [key for key, value in (extra or {}).items() if value not in (None, [], {}, "")]


def _refuse_unsupported(body: ChatCompletionIn) -> None:
    given = sorted(_set(body.model_extra))
    if given:
        names = ", ".join(f"`{name}`" for name in given)
        raise OpenAIError(
            400,
            f"{names} not taken: a bot's model and its parameters are set in the Studio "
            f"(`/set {body.model.split('@')[0]} temperature 0.2`); remove them from the request",
            code="unsupported_parameter",
            param=given[0],
        )
    if body.n not in (None, 1):
        raise OpenAIError(400, "`n`: a bot gives one answer", code="unsupported_value", param="n")
    if body.stream_options is not None:
        options = _set(body.stream_options.model_extra)
        if options or not body.stream:
            raise OpenAIError(
                400,
                "`stream_options` takes only `include_usage`, with `stream: true`",
                code="unsupported_parameter",
                param=f"stream_options.{options[0]}" if options else "stream_options",
            )


_REFUSED_ROLES = {
    "system": "the bot's prompt is set in the Studio (`/set BOT prompt …`), not by the caller",
    "developer": "the bot's prompt is set in the Studio (`/set BOT prompt …`), not by the caller",
    "tool": "a bot calls its own tools (set in the Studio); it takes no tool results",
    "function": "a bot calls its own tools (set in the Studio); it takes no tool results",
}


def _text(message: MessageIn, index: int) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    param = f"messages[{index}].content"
    if content is None:
        raise OpenAIError(400, f"{param}: a message needs its text", param=param)
    texts = []
    for number, part in enumerate(content):
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise OpenAIError(
                400,
                f"{param}[{number}]: a bot reads text parts only (`type: text`)",
                code="unsupported_value",
                param=f"{param}[{number}]",
            )
        texts.append(part["text"])
    return "\n".join(texts)


def conversation_of(messages: list[MessageIn]) -> tuple[str, list[ChatMessage]]:
    """The turn's text (the last message, the user's) and its history (the ones before)."""
    if not messages:
        raise OpenAIError(400, "`messages`: give at least the user's message", param="messages")
    said: list[ChatMessage] = []
    for index, message in enumerate(messages):
        refused = _REFUSED_ROLES.get(message.role)
        if refused is not None:
            param = f"messages[{index}].role"
            raise OpenAIError(
                400, f"{param}: `{message.role}` messages are not taken: {refused}", param=param
            )
        extra = _set(message.model_extra)
        if extra:
            param = f"messages[{index}].{extra[0]}"
            raise OpenAIError(
                400,
                f"{param}: not taken (text messages only)",
                code="unsupported_parameter",
                param=param,
            )
        said.append(ChatMessage(message.role, _text(message, index)))
    *history, last = said
    if last.role != "user":
        param = f"messages[{len(said) - 1}].role"
        raise OpenAIError(400, f"{param}: the last message must be the user's", param=param)
    if not last.content.strip():
        raise OpenAIError(400, "the user's message is empty", param=f"messages[{len(said) - 1}]")
    if len(last.content) > MAX_INPUT_CHARS:
        raise OpenAIError(
            413,
            f"the user's message is too long: at most {MAX_INPUT_CHARS:,} characters",
            code="request_too_large",
            param=f"messages[{len(said) - 1}].content",
        )
    refuse_nul(last.content)
    return last.content, history


def parse_model(who: Caller, model: str) -> tuple[str, Env]:
    """`name` (production: any key of the team) or `name@staging` (editors and up)."""
    name, at, env = model.partition("@")
    if not at:
        return name, "production"
    if env != "staging":
        raise _not_found(model, "call a bot by its name (production) or as `name@staging`")
    who.require(Role.EDITOR, "Calling a bot's staging version")
    return name, "staging"


def _not_found(model: str, why: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model}` does not exist: {why}",
        code="model_not_found",
        param="model",
    )


async def _callable(svc: WebServices, who: Caller, model: str) -> ApiBot:
    """The bot's environment the caller may call as `model`."""
    name, env = parse_model(who, model)
    try:
        return await resolve(svc.runtime, team_id=who.team_id, name=name, env=env)
    except UnknownBotError:
        raise _not_found(model, f"the team has no bot called '{name}'") from None
    except NotLiveError:
        raise _not_found(
            model, f"'{name}' has no {env} version yet (/promote {name} {env})"
        ) from None


def _failure(output: TurnOutput) -> OpenAIError | None:
    """A turn that gives no answer, as an error: a failure (502) or a budget's refusal (429)."""
    if output.error is not None:
        kind = output.error.split(":", 1)[0].strip().replace(" ", "_")
        return OpenAIError(
            502,
            f"the bot could not answer ({output.error}); the turn is stored and counted",
            kind="api_error",
            code=kind,
            retry=False,
        )
    if output.blocked in _BUDGET_CODES:
        code = _BUDGET_CODES[output.blocked]
        return OpenAIError(429, output.reply, kind=code, code=code, retry=False)
    return None


def _finish_reason(output: TurnOutput) -> Literal["stop", "content_filter"]:
    return "content_filter" if output.blocked else "stop"


def _usage(output: TurnOutput) -> UsageOut:
    usage = output.usage
    total = None
    if usage.prompt_tokens is not None and usage.completion_tokens is not None:
        total = usage.prompt_tokens + usage.completion_tokens
    return UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=total,
        cost_usd=usage.cost_usd,
    )


# -- routes -----------------------------------------------------------------------------------


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionIn, who: Who, svc: Services) -> Response:
    """A bot answers the conversation in `messages` (or continues `user`'s stored one): a
    `ChatCompletionOut`, or its chunks as server-sent events."""
    _refuse_unsupported(body)
    text, history = conversation_of(body.messages)
    bot = await _callable(svc, who, body.model)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    turns = ApiTurns(svc.runtime)
    asked = ApiAsk(text, tuple(history), body.user, who.identity, completion_id)
    if not body.stream:
        output = await turns.answer(bot, asked)
        failure = _failure(output)
        if failure is not None:
            raise failure
        completion = ChatCompletionOut(
            id=completion_id,
            created=created,
            model=body.model,
            choices=[
                ChoiceOut(
                    message=AssistantMessageOut(content=output.reply),
                    finish_reason=_finish_reason(output),
                )
            ],
            usage=_usage(output),
        )
        # Serialised once, by pydantic: returned as a model, FastAPI would first turn it into
        # plain data (`jsonable_encoder`) and then dump that.
        return Response(completion.model_dump_json(), media_type="application/json")
    answer = turns.stream(bot, asked)
    if not await answer.started():  # no text at all: a failure is still an HTTP error
        failure = _failure(await answer.output())
        if failure is not None:
            raise failure
    head = ChatCompletionChunkOut(id=completion_id, created=created, model=body.model, choices=[])
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    return StreamingResponse(
        completion_events(head, answer, include_usage=include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event(payload: BaseModel) -> str:
    return f"data: {payload.model_dump_json()}\n\n"


async def completion_events(
    head: ChatCompletionChunkOut, answer: AnswerStream, *, include_usage: bool
) -> AsyncIterator[str]:
    """OpenAI's stream: the role, the answer's text as it comes, the finish reason, the usage
    (when asked), `[DONE]`. A turn that fails after some text ends with an error event."""

    def chunk(
        delta: dict[str, str], finish: Literal["stop", "content_filter"] | None = None
    ) -> str:
        choice = ChunkChoiceOut(delta=delta, finish_reason=finish)
        return _event(head.model_copy(update={"choices": [choice]}))

    yield chunk({"role": "assistant", "content": ""})
    async for piece in answer:
        yield chunk({"content": piece})
    output = await answer.output()
    failure = _failure(output)
    if failure is not None:
        yield _event(failure.body)
        return
    if output.blocked:  # a guardrail's refusal is the answer
        yield chunk({"content": output.reply})
    yield chunk({}, _finish_reason(output))
    if include_usage:
        yield _event(head.model_copy(update={"usage": _usage(output)}))
    yield "data: [DONE]\n\n"


@router.get("/models", response_model=ModelListOut)
async def list_models(who: Who, svc: Services) -> ModelListOut:
    """The team's bots with a production version, and `name@staging` for those with a staging
    version when the key may call it (editors and up)."""
    staging = who.role.rank >= Role.EDITOR.rank
    found = await models(svc.runtime, team_id=who.team_id, staging=staging)
    return ModelListOut(
        data=[ModelOut(id=m.id, created=m.created, owned_by=who.team) for m in found]
    )


@router.get("/models/{model}", response_model=ModelOut)
async def get_model(model: str, who: Who, svc: Services) -> ModelOut:
    """One callable bot, as `GET /models` lists it."""
    _, env = parse_model(who, model)
    for found in await models(svc.runtime, team_id=who.team_id, staging=env == "staging"):
        if found.id == model:
            return ModelOut(id=found.id, created=found.created, owned_by=who.team)
    raise _not_found(model, "the team has no bot by that name with a version in that environment")
