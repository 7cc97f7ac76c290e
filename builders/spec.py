"""`BotSpec`, the definition of a bot. A version is an immutable snapshot of one."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)

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
MAX_DB_INT = 2**31 - 1  # the largest whole number every supported database stores (PostgreSQL)
MAX_VERSION = MAX_DB_INT  # version numbers are integers in the database

SourceId = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KnowledgeRef(_Model):
    """A knowledge source pinned by content hash: the same id always means the same bytes."""

    id: SourceId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ToolSpec(_Model):
    """An allow-listed HTTP tool described by OpenAPI (used by the `http_tool` node)."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    openapi_url: Annotated[str, StringConstraints(max_length=2000)]
    operations: Annotated[
        list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=100)
    ] = Field(default_factory=list)


NodeKind = Literal[
    "llm", "retrieve", "router", "template", "extract", "bot", "http_tool", "handoff"
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
        if not isinstance(params, dict):
            return params  # pydantic refuses it with its own message
        _check_json(params, depth=1)
        size = len(json.dumps(params, ensure_ascii=False, separators=(",", ":")))
        if size > MAX_PARAM_CHARS:
            raise ValueError(f"too long: {size} characters (at most {MAX_PARAM_CHARS} in all)")
        return params


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
    kind: Literal["contains", "regex", "judge"]
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


class Schedule(_Model):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,40}$")]
    cron: Annotated[str, StringConstraints(max_length=100)]
    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    channel: str | None = None


class Guardrails(_Model):
    max_input_chars: Annotated[int, Field(ge=1, le=4000)] = 4000
    blocked_terms: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_TERM_CHARS)]],
        Field(max_length=MAX_BLOCKED_TERMS),
    ] = Field(default_factory=list)


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
    schedules: Annotated[list[Schedule], Field(max_length=50)] = Field(default_factory=list)
    guardrails: Guardrails = Field(default_factory=Guardrails)

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

    def content_hash(self) -> str:
        """A stable hash of the whole definition: equal specs have equal hashes."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def source_id(content: bytes) -> str:
    """The immutable id of a knowledge source: the hash of its bytes."""
    return "sha256:" + hashlib.sha256(content).hexdigest()
