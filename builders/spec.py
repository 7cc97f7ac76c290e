"""`BotSpec`, the definition of a bot. A version is an immutable snapshot of one."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)

from builders.cron import CronError, trigger

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
DEFAULT_FALLBACK = "I can't answer that yet."
DEFAULT_GREETING = "Hi! How can I help?"
DEFAULT_PROMPT = "You are a helpful, concise assistant."
OFFLINE_MODEL = "offline"
# Limits that hold wherever a spec changes (import, edits, tests, knowledge).
MAX_TESTS = 500
MAX_TURNS = 20  # per test
MAX_TURN_CHARS = 4000  # what a person can send in one message
MAX_SOURCES = 1000  # documents, pages and notes per bot
MAX_NODES = 32
MAX_PARAM_CHARS = 20000
MAX_BLOCKED_TERMS = 200
MAX_TERM_CHARS = 200
MAX_MONTHLY_USD = 1_000_000
MAX_PER_MINUTE = 1000
MAX_DB_INT = 2**31 - 1  # the largest whole number every supported database stores (PostgreSQL)
MAX_VERSION = MAX_DB_INT  # version numbers are integers in the database

SourceId = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnowledgeRef(_Model):
    """A knowledge source pinned by content hash: the same id always means the same bytes."""

    id: SourceId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]


SECRET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SecretName = Annotated[str, StringConstraints(pattern=SECRET_NAME.pattern)]
# What the model calls a tool: OpenAI's rule for function names.
FunctionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
HANDOFF_FUNCTION = "handoff"  # the model's own tool to hand a conversation to a person
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
ArgumentPlace = Literal["path", "query", "header", "body"]
MAX_TOOL_TIMEOUT_S = 60.0


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _local_refs(value: object) -> None:
    """`ValueError` when a schema refers (`$ref`) to anything but a part of itself (`#/...`):
    nothing outside a tool's spec is ever fetched to check arguments. Nor may it match argument
    names with `patternProperties`: those regexes would run without the time limit the checker
    gives `pattern` (`runtime.tools.gateway`), on names the model chooses."""
    if isinstance(value, dict):
        if "patternProperties" in value:
            raise ValueError("patternProperties is not supported in a tool's argument schema")
        ref = value.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise ValueError(f"$ref must point inside the schema (#/...), not to {ref[:100]!r}")
        for item in value.values():
            _local_refs(item)
    elif isinstance(value, list):
        for item in value:
            _local_refs(item)


def _no_arguments() -> dict[str, JsonValue]:
    return {"type": "object", "properties": {}}


class ToolOperation(_Model):
    """One callable of a tool, frozen into the spec when the tool is added (so a version calls
    what was checked then): an OpenAPI operation or an MCP tool.

    `function` is the name the model calls it by (unique in the bot); `id` the name the service
    knows (operationId, MCP tool name); `parameters` the JSON schema of its arguments (an object).
    OpenAPI only: `method`, `path` (with `{name}` placeholders) and `places` (where each argument
    goes). `changes`: it changes something (POST/PUT/PATCH/DELETE, an MCP tool not marked
    read-only); such an operation runs only when `allowed`."""

    function: FunctionName
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    parameters: Annotated[dict[str, JsonValue], Field(max_length=50)] = Field(
        default_factory=_no_arguments
    )
    method: HttpMethod | None = Field(default=None, exclude_if=lambda value: value is None)
    path: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    places: dict[str, ArgumentPlace] = Field(
        default_factory=dict, exclude_if=lambda value: not value
    )
    changes: bool = False
    allowed: bool = Field(default=False, exclude_if=lambda value: not value)

    @field_validator("parameters", mode="before")
    @classmethod
    def _bounded(cls, parameters: object) -> object:
        bounded = _bounded_json(parameters)
        _local_refs(bounded)
        return bounded

    @model_validator(mode="before")
    @classmethod
    def _changes_unless_said(cls, data: object) -> object:
        # An MCP tool (no method) written by hand without `changes` is taken to change things:
        # only a server's read-only mark, read when the tool is added, makes it a read.
        if isinstance(data, dict) and data.get("method") is None and "changes" not in data:
            return {**data, "changes": True}
        return data

    @model_validator(mode="after")
    def _changes_follow_the_method(self) -> ToolOperation:
        # A spec written by hand (YAML, REST) cannot call a POST a read to skip `allowed`.
        if self.method not in (None, "GET") and not self.changes:
            raise ValueError(f"a {self.method} operation changes something: set changes: true")
        return self


class ToolSpec(_Model):
    """A tool the bot may call: operations of an OpenAPI service (`kind: openapi`, `url` the
    document, `base_url` where operations are called, on the document's host) or tools of an
    MCP server (`kind: mcp`, `url` its streamable-HTTP endpoint). `auth` names a team secret,
    sent as `Authorization: Bearer VALUE`, or as the value of `auth_header` when the service
    takes a key in a header of its own. The secret's value is never in the spec."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    kind: Literal["openapi", "mcp"] = "openapi"
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    base_url: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    auth: SecretName | None = Field(default=None, exclude_if=lambda value: value is None)
    auth_header: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,100}$")] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    operations: Annotated[list[ToolOperation], Field(min_length=1, max_length=100)]
    timeout_s: Annotated[float, Field(gt=0, le=MAX_TOOL_TIMEOUT_S)] = 10.0

    @model_validator(mode="after")
    def _one_host(self) -> ToolSpec:
        # Only the document's host is called, whoever wrote the spec.
        if self.base_url is not None and _host(self.base_url) != _host(self.url):
            raise ValueError(
                f"base_url must be on the host of url ({_host(self.url)}): only the "
                "document's host is called"
            )
        return self

    @model_validator(mode="after")
    def _unique_functions(self) -> ToolSpec:
        names = [operation.function for operation in self.operations]
        if len(set(names)) != len(names):
            raise ValueError("operations must have unique function names")
        return self


NodeKind = Literal[
    "llm", "retrieve", "router", "template", "extract", "bot", "tool", "http_tool", "handoff"
]
MAX_PARAM_DEPTH = 8  # levels of lists and mappings in a step's params


class PipelineNode(_Model):
    """One node of a bot's pipeline graph; the node kind validates `params` when compiled.

    `params` are JSON values, bounded: at most `MAX_PARAM_CHARS` characters as JSON in all and
    `MAX_PARAM_DEPTH` levels deep (checked before pydantic walks them, so a deep or huge value
    is one short refusal)."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
    kind: NodeKind
    params: Annotated[dict[str, JsonValue], Field(max_length=50)] = Field(default_factory=dict)
    next: str | None = None

    @field_validator("params", mode="before")
    @classmethod
    def _bounded(cls, params: object) -> object:
        return _bounded_json(params)


def _bounded_json(value: object) -> object:
    """`value` when it is a mapping of plain JSON within the size and depth limits."""
    if not isinstance(value, dict):
        return value  # pydantic refuses it with its own message
    _check_json(value, depth=1)
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    if size > MAX_PARAM_CHARS:
        raise ValueError(f"too long: {size} characters (at most {MAX_PARAM_CHARS} in all)")
    return value


def _check_json(value: object, depth: int) -> None:
    """`ValueError` unless `value` is plain JSON at most `MAX_PARAM_DEPTH` levels deep."""
    if isinstance(value, str | bool | int) or value is None:
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
        return
    if depth > MAX_PARAM_DEPTH:
        raise ValueError(f"nested too deeply (at most {MAX_PARAM_DEPTH} levels)")
    if isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"keys must be text, not {key!r}"[:200])
            _check_json(item, depth + 1)
        return
    raise ValueError(
        f"'{type(value).__name__}' is not allowed: use text, numbers, true/false, null, lists "
        "and mappings"
    )


class Expectation(_Model):
    """What the last answer must do: contain a text, match a regex, satisfy a rubric (judge),
    or come from a given step of the pipeline (`step`: its id)."""

    kind: Literal["contains", "regex", "judge", "step"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)]

    @model_validator(mode="after")
    def _regex_compiles(self) -> Expectation:
        if self.kind == "regex":
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return self


class TestCase(_Model):
    """A conversation to replay against the bot; the last reply is checked against `expect`."""

    __test__ = False  # not a pytest class
    turns: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_TURN_CHARS)]],
        Field(min_length=1, max_length=MAX_TURNS),
    ]
    expect: Expectation
    # Also required: the step (its id) whose reply is the last answer, so each path of a router
    # is testable together with the text it gives.
    # Left out when unset, so a case without it keeps its YAML and its spec's content hash (the
    # key of stored test runs) as they were before steps existed.
    step: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )

    def steps_named(self) -> set[str]:
        named = {self.step} if self.step else set()
        return named | ({self.expect.value} if self.expect.kind == "step" else set())


ScheduleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
ProactiveText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TURN_CHARS)
]
PROMPT_PREFIX = "prompt:"
# Where a schedule sends: a Slack channel, a Telegram chat, or a web chat session of the bot
# (one definition: the Studio reads what people type with the same patterns).
_TELEGRAM_CHAT = r"-?[0-9]{1,20}"  # a person's chat, or a group's (-…)
_WEB_SESSION = r"[A-Za-z0-9_.-]{8,120}"
TELEGRAM_CHAT = re.compile(rf"^{_TELEGRAM_CHAT}$")
WEB_SESSION = re.compile(rf"^{_WEB_SESSION}$")
SCHEDULE_TARGET = re.compile(
    rf"^(slack:[CG][A-Z0-9]{{2,30}}|telegram:{_TELEGRAM_CHAT}|web:{_WEB_SESSION})$"
)
MAX_SCHEDULES = 100
MAX_FOLLOWUPS = 5
MAX_FOLLOWUP_MINUTES = 30 * 24 * 60


def proactive_prompt(message: str) -> str | None:
    """The prompt of a message the bot writes itself (`prompt: summarise yesterday's
    questions`); None when `message` is fixed text, sent as it is."""
    head = message[: len(PROMPT_PREFIX)]
    if head.lower() != PROMPT_PREFIX:
        return None
    return message[len(PROMPT_PREFIX) :].strip() or None


def check_prompt(message: str) -> None:
    """A "prompt:" message must say what to write (the spec's check, and a trigger's)."""
    if message[: len(PROMPT_PREFIX)].lower() == PROMPT_PREFIX and proactive_prompt(message) is None:
        raise ValueError("message: say what the bot should write after 'prompt:'")


class Schedule(_Model):
    """A message the bot sends on a cron schedule (`builders.cron`), in time zone `tz`: to one
    place (`to`: `slack:CHANNEL_ID`, `telegram:CHAT_ID`, `web:SESSION`; `to_name` is how people
    name it) or, without `to`, to each end user of the environment that runs the version. A run
    missed while the service was down is sent up to `grace_minutes` late, else skipped."""

    id: ScheduleId
    cron: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    tz: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    message: ProactiveText
    to: str | None = None
    to_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    grace_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 60

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        try:
            trigger(self.cron, self.tz)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        if self.to is not None and not SCHEDULE_TARGET.fullmatch(self.to):
            raise ValueError(
                f"to '{self.to[:60]}' is not a place: slack:CHANNEL_ID, telegram:CHAT_ID or "
                "web:SESSION (or leave it out: each end user)"
            )
        check_prompt(self.message)
        return self

    @property
    def prompt(self) -> str | None:
        return proactive_prompt(self.message)


class FollowUp(_Model):
    """A message the bot sends when an end user has said nothing for `after_minutes` since its
    last answer, up to `times` times (each `after_minutes` apart); the end user's next message
    cancels what is left."""

    id: ScheduleId
    after_minutes: Annotated[int, Field(ge=1, le=MAX_FOLLOWUP_MINUTES)]
    message: ProactiveText
    times: Annotated[int, Field(ge=1, le=10)] = 1

    @model_validator(mode="after")
    def _valid(self) -> FollowUp:
        check_prompt(self.message)
        return self

    @property
    def prompt(self) -> str | None:
        return proactive_prompt(self.message)


def _is_off(value: object) -> bool:
    return value is None or value is False


class Guardrails(_Model):
    """Checks on what an end user sends, before the bot answers (`runtime.turn.guardrails`).
    `pii` masks emails, phone numbers and card numbers before the model sees them and in the
    stored transcript; `moderation` asks the provider's moderation endpoint first."""

    max_input_chars: Annotated[int, Field(ge=1, le=MAX_TURN_CHARS)] = MAX_TURN_CHARS
    blocked_terms: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_TERM_CHARS)]],
        Field(max_length=MAX_BLOCKED_TERMS),
    ] = Field(default_factory=list)
    # Left out when off, as the budget is when unset: specs that use neither keep their YAML
    # and their content hash (the key of stored test runs) as they were before these existed.
    pii: bool = Field(default=False, exclude_if=_is_off)
    moderation: bool = Field(default=False, exclude_if=_is_off)


class Budget(_Model):
    """Limits on live traffic (`runtime.turn.budget`); None: no limit. `monthly_usd` is the cost
    of a calendar month (UTC); `per_user_per_minute` the messages one end user may send a minute."""

    monthly_usd: Annotated[float, Field(gt=0, le=MAX_MONTHLY_USD)] | None = Field(
        default=None, exclude_if=_is_off
    )
    per_user_per_minute: Annotated[int, Field(ge=1, le=MAX_PER_MINUTE)] | None = Field(
        default=None, exclude_if=_is_off
    )


def _no_budget(budget: Budget) -> bool:
    return budget.monthly_usd is None and budget.per_user_per_minute is None


MAX_HANDOFF_MINUTES = 7 * 24 * 60
# A channel's kind ("slack"): which exist is the running service's to say.
CHANNEL_KIND = r"^[a-z][a-z0-9-]{1,19}$"
# A room's id as its platform gives it (C0123, -1001…); a name (#support) is looked up when set.
ROOM_ID = re.compile(r"^[A-Za-z0-9_.:@+-]{1,40}$")


class Handoff(_Model):
    """Where the bot hands a conversation to people of the team (`runtime.handoff`): a room on
    one of the Studio's fronts (`channel`: its kind, `slack` or `telegram`; `target`: the room's
    id there, a Slack channel's C… or a Telegram group's -…), which the service checks with the
    platform when the target is set; `name` is how it is shown (#support). A handoff without a
    human message for `timeout_minutes` ends by itself. `tool`: the model may hand over itself
    (it is offered a `handoff` function)."""

    channel: Annotated[str, StringConstraints(pattern=CHANNEL_KIND)]
    target: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    timeout_minutes: Annotated[int, Field(ge=1, le=MAX_HANDOFF_MINUTES)] = 60
    tool: bool = True

    @model_validator(mode="after")
    def _target_is_an_id(self) -> Handoff:
        if not ROOM_ID.fullmatch(self.target):
            raise ValueError(
                f"target '{self.target[:40]}' is not a room's id (a Slack channel's C…, a "
                "Telegram group's -…): /handoff BOT to #name finds it"
            )
        return self


class Retrieval(_Model):
    """How a bot's knowledge is searched: how many passages go to the model (`k`) and how close
    one must be to the question to go at all (`min_score`, the cosine of their embeddings).
    Set with `/set BOT knowledge.k 6` and `/set BOT knowledge.min_score 0.4`; the `retrieve`
    step's own `top_k` and `min_score`, when given, win."""

    k: Annotated[int, Field(ge=1, le=20)] = 4
    min_score: Annotated[float, Field(ge=-1, le=1)] = 0.3


def _default_retrieval(value: Retrieval) -> bool:
    return value == Retrieval()


class BotSpec(_Model):
    """Everything that defines a bot. Frozen: edits return a new spec."""

    name: str
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    prompt: Annotated[str, StringConstraints(max_length=20000)] = DEFAULT_PROMPT
    model: Annotated[str, StringConstraints(min_length=1, max_length=200)] = OFFLINE_MODEL
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.7
    greeting: Annotated[str, StringConstraints(max_length=4000)] = DEFAULT_GREETING
    fallback: Annotated[str, StringConstraints(min_length=1, max_length=4000)] = DEFAULT_FALLBACK
    history: Annotated[int, Field(ge=0, le=100)] = 10
    knowledge: Annotated[list[KnowledgeRef], Field(max_length=MAX_SOURCES)] = Field(
        default_factory=list
    )
    tools: Annotated[list[ToolSpec], Field(max_length=50)] = Field(default_factory=list)
    pipeline: Annotated[list[PipelineNode], Field(max_length=MAX_NODES)] = Field(
        default_factory=list
    )
    tests: Annotated[list[TestCase], Field(max_length=MAX_TESTS)] = Field(default_factory=list)
    schedules: Annotated[list[Schedule], Field(max_length=MAX_SCHEDULES)] = Field(
        default_factory=list
    )
    guardrails: Guardrails = Field(default_factory=Guardrails)
    budget: Budget = Field(default_factory=Budget, exclude_if=_no_budget)
    # Last, and left out when unset: specs without them keep their content hash.
    handoff: Handoff | None = Field(default=None, exclude_if=lambda value: value is None)
    followups: Annotated[list[FollowUp], Field(max_length=MAX_FOLLOWUPS)] = Field(
        default_factory=list, exclude_if=lambda value: not value
    )
    # A voice note is answered with a voice note (spoken with the service's STUDIO_TTS_MODEL);
    # off: in text, as everything else.
    voice: bool = Field(default=False, exclude_if=lambda value: not value)
    retrieval: Retrieval = Field(default_factory=Retrieval, exclude_if=_default_retrieval)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(
                "use 2-40 characters: lowercase letters, digits and '-', not starting with '-'"
            )
        return name

    @field_validator("pipeline")
    @classmethod
    def _valid_pipeline(cls, nodes: list[PipelineNode]) -> list[PipelineNode]:
        ids = [node.id for node in nodes]
        if len(set(ids)) != len(ids):
            raise ValueError("node ids must be unique")
        for node in nodes:
            if node.next is not None and node.next not in ids:
                raise ValueError(f"node '{node.id}' points to unknown node '{node.next}'")
        return nodes

    @model_validator(mode="after")
    def _unique_schedules(self) -> BotSpec:
        for kind, items in (("schedule", self.schedules), ("follow-up", self.followups)):
            ids = [item.id for item in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{kind} ids must be unique")
        return self

    @model_validator(mode="after")
    def _unique_tools(self) -> BotSpec:
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("tool names must be unique")
        seen: dict[str, str] = {}
        for tool in self.tools:
            for operation in tool.operations:
                if operation.function == HANDOFF_FUNCTION:
                    raise ValueError(
                        f"tool '{tool.name}': the name '{HANDOFF_FUNCTION}' is kept for handing "
                        "over to a person"
                    )
                other = seen.setdefault(operation.function, tool.name)
                if other != tool.name:
                    raise ValueError(
                        f"tools '{other}' and '{tool.name}' both have an operation called "
                        f"'{operation.function}'"
                    )
        return self

    def operation(self, function: str) -> tuple[ToolSpec, ToolOperation] | None:
        """The tool and operation the model calls `function`, if the bot has one."""
        for tool in self.tools:
            for operation in tool.operations:
                if operation.function == function:
                    return tool, operation
        return None

    @model_validator(mode="after")
    def _tests_name_steps(self) -> BotSpec:
        steps = {node.id for node in self.pipeline} or {"llm", "retrieve"}
        for number, case in enumerate(self.tests, start=1):
            missing = sorted(case.steps_named() - steps)
            if missing:
                raise ValueError(
                    f"test {number} expects step '{missing[0]}', which is not a step of the "
                    f"pipeline ({', '.join(sorted(steps))})"
                )
        return self

    def steps(self) -> list[PipelineNode]:
        """The steps the bot runs: its own pipeline, or the plain bot's implicit one
        (`retrieve -> llm` with knowledge, else one `llm` step)."""
        if self.pipeline:
            return list(self.pipeline)
        answer = PipelineNode(id="llm", kind="llm")
        if self.knowledge:
            return [PipelineNode(id="retrieve", kind="retrieve", next="llm"), answer]
        return [answer]

    def content_hash(self) -> str:
        """A stable hash of the whole definition: equal specs have equal hashes."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def source_id(content: bytes) -> str:
    """The immutable id of a knowledge source: the hash of its bytes."""
    return "sha256:" + hashlib.sha256(content).hexdigest()
