"""What operations return: pydantic models that REST serialises and presenters render."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel

from builders.spec import BotSpec

# SQLite gives back naive times (stored in UTC); REST sends them with their offset (RFC 3339).
Timestamp = Annotated[datetime, AfterValidator(lambda at: at.replace(tzinfo=at.tzinfo or UTC))]


class BotView(BaseModel):
    name: str
    revision: int
    draft: BotSpec
    environments: dict[str, int]  # env -> version number
    updated_at: Timestamp


class BotListItem(BaseModel):
    name: str
    description: str
    model: str
    environments: dict[str, int]
    versions: int


class VersionView(BaseModel):
    number: int
    spec_hash: str
    created_by: str
    created_at: Timestamp
    environments: list[str]


class PromoteResult(BaseModel):
    version: int
    env: str
    created: bool  # False: the environment now points at an existing version
    notes: list[str] = []  # what else the move changed (a live A/B test it ended)


class DeploymentView(BaseModel):
    id: str
    bot: str
    channel: str
    env: str
    target: str
    status: str
    url: str | None
    version: int | None
    created_at: Timestamp
    # What to copy into the platform's own settings (WhatsApp: webhook_url, verify_token).
    details: dict[str, str] = {}


class ChangeView(BaseModel):
    field: str
    before: Any
    after: Any
    lines: list[str]


class DiffView(BaseModel):
    bot: str
    before: str
    after: str
    changes: list[ChangeView]


class AuditView(BaseModel):
    at: Timestamp
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class UsageView(BaseModel):
    """One version's or one channel's answers over a `StatsView`'s period."""

    turns: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None: none of them had a known price
    unknown_cost_turns: int


class VersionUsageView(UsageView):
    version: int | None  # None: answers given outside any version


class ChannelUsageView(UsageView):
    channel: str  # web, slack, telegram, ...


class StatsView(BaseModel):
    bot: str
    period: str
    turns: int
    conversations: int
    users: int
    errors: int
    error_rate: float
    blocked: int  # turns a guardrail or budget answered instead of the bot
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None: every answered turn had an unknown price
    unknown_cost_turns: int
    handoffs: int = 0  # conversations handed to people of the team
    handoff_first_answer_p50_s: float | None = None  # their median wait for a first answer
    versions: list[VersionUsageView] = []  # newest first
    channels: list[ChannelUsageView] = []  # busiest first


class ConversationView(BaseModel):
    id: int
    channel: str
    user: str
    started_at: Timestamp
    messages: int


class MessageView(BaseModel):
    id: int
    role: str  # user, assistant, or human (a person of the team, during a handoff)
    text: str
    at: Timestamp
    version: int | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: str | None
    variant: str | None  # the live A/B test's variant that answered
    ratings_up: int
    ratings_down: int
    voice_s: float | None = None  # heard from a voice note this long (the text: what it said)


class ConversationMessages(BaseModel):
    id: int
    channel: str
    user: str
    started_at: Timestamp
    ended_at: Timestamp | None
    messages: list[MessageView]  # oldest first; ask with `after` = the last id for more


class MemberView(BaseModel):
    identity: str
    role: str
    joined_at: Timestamp


class ApiKeyCreated(BaseModel):
    id: int
    team: str
    name: str
    role: str
    key: str  # shown this once: only its hash is stored


class ApiKeyView(BaseModel):
    id: int
    name: str
    role: str
    prefix: str  # the key's first characters, to tell keys apart
    created_at: datetime
    current: bool  # the key this request was made with


class SourceView(BaseModel):
    name: str
    id: str
    chunks: int


class Added(BaseModel):
    bot: str
    name: str
    chunks: int
    replaced: bool  # a source of that name was there and now points to the new text
    unchanged: bool  # the very same text was there already
