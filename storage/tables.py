"""SQLModel tables. Every table is created by the Alembic migrations in `storage/migrations`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), **kwargs)


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    created_at: datetime = _ts()


class Member(SQLModel, table=True):
    """A person in a team, known by an identity such as `api:ci`, `slack:U123`, `web:alice`."""

    __table_args__ = (UniqueConstraint("team_id", "identity"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    identity: str = Field(max_length=200)
    role: str = Field(max_length=16)
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """An API key, stored as its SHA-256 hash; `prefix` lets a person tell keys apart."""

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=80)
    role: str = Field(max_length=16)
    key_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    created_at: datetime = _ts()


class Bot(SQLModel, table=True):
    """A bot and its one mutable draft; `revision` grows with every draft edit."""

    __table_args__ = (UniqueConstraint("team_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=40)
    draft: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    revision: int = 1
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class BotVersion(SQLModel, table=True):
    """An immutable snapshot of a draft. Numbers are unique per bot (the constraint decides)."""

    __tablename__ = "bot_version"
    __table_args__ = (UniqueConstraint("bot_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", index=True)
    number: int
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    spec_hash: str = Field(max_length=80)
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()


class EnvironmentPointer(SQLModel, table=True):
    """Which version an environment (`staging`, `production`) of a bot runs."""

    __tablename__ = "environment_pointer"
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", primary_key=True)
    env: str = Field(primary_key=True, max_length=16)
    version_id: int = Field(foreign_key="bot_version.id", ondelete="CASCADE")
    updated_at: datetime = _ts()


class Deployment(SQLModel, table=True):
    """A bot environment bound to a channel. `id` is opaque and appears in public URLs."""

    __table_args__ = (UniqueConstraint("channel", "target", "env"),)
    id: str = Field(primary_key=True, max_length=40)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", index=True)
    channel: str = Field(max_length=16)
    env: str = Field(max_length=16)
    target: str = Field(max_length=200)
    credentials: bytes | None = Field(default=None, sa_type=LargeBinary)
    public_ident: str | None = Field(default=None, max_length=200, index=True)
    status: str = Field(default="active", max_length=16)
    created_at: datetime = _ts()


class Conversation(SQLModel, table=True):
    """One conversation: a web session, a Slack thread, a Telegram chat. `sandbox` = `/try`."""

    __table_args__ = (Index("ix_conversation_lookup", "deployment_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", index=True)
    deployment_id: str | None = Field(
        default=None, foreign_key="deployment.id", ondelete="SET NULL", max_length=40
    )
    channel: str = Field(max_length=16)
    key: str = Field(max_length=200)
    user: str = Field(max_length=200)
    sandbox: bool = False
    started_at: datetime = _ts()
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Message(SQLModel, table=True):
    """One turn of a conversation, with what it cost."""

    __table_args__ = (
        Index("ix_message_bot_time", "bot_id", "created_at"),
        # A conversation's messages of a time window (exports), without reading its history.
        Index("ix_message_conversation_time", "conversation_id", "created_at"),
        # A conversation's newest messages (its history, and its newest message's id checked by
        # a worker that caches it), read backwards from the end.
        Index("ix_message_conversation_order", "conversation_id", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="CASCADE")
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    role: str = Field(max_length=16)
    text: str
    parts: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )
    version: int | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    # The live A/B test the answer was part of, and its variant ("A" or "B").
    ab_test_id: int | None = None
    variant: str | None = Field(default=None, max_length=1)
    # What each step of the turn did (answers only; `runtime.trace`): kept and deleted with it.
    trace: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    created_at: datetime = _ts()


class InboxItem(SQLModel, table=True):
    """An inbound message, recorded before the platform is acknowledged. The key deduplicates."""

    __tablename__ = "inbox"
    __table_args__ = (
        # the pending messages of one conversation, oldest first (`storage.inbox.pending_of`)
        Index(
            "ix_inbox_pending_conversation",
            "deployment_id",
            "conversation",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True, max_length=300)
    deployment_id: str = Field(max_length=40)
    conversation: str | None = None  # the address's (None: recorded before this was kept)
    worker: str | None = Field(default=None, max_length=80)  # `Database.worker` that accepted it
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16, index=True)
    received_at: datetime = _ts()


class OutboxItem(SQLModel, table=True):
    """A reply, recorded before it is sent and marked sent after."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(max_length=40)
    worker: str | None = Field(default=None, max_length=80)  # `Database.worker` that stored it
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16, index=True)
    error: str | None = None
    created_at: datetime = _ts()
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_team_time", "team_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE")
    actor: str = Field(max_length=200)
    action: str = Field(max_length=40)
    target: str = Field(max_length=200)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True)))
    created_at: datetime = _ts()


class StudioContext(SQLModel, table=True):
    """What the Studio remembers of a member between messages: the bot talked about last."""

    __tablename__ = "studio_context"
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", primary_key=True)
    identity: str = Field(primary_key=True, max_length=200)
    bot: str | None = Field(default=None, max_length=40)
    updated_at: datetime = _ts()


class IdentityHome(SQLModel, table=True):
    """The team an identity without a workspace (Telegram) talks to: the one it joined or
    re-joined last with `/join`."""

    __tablename__ = "identity_home"
    identity: str = Field(primary_key=True, max_length=200)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE")
    updated_at: datetime = _ts()


class StudioThread(SQLModel, table=True):
    """A channel thread the Studio talks in (Slack): follow-ups there reach the Studio, not a bot
    deployed in the channel, across restarts. Forgotten by housekeeping once idle."""

    __tablename__ = "studio_thread"
    key: str = Field(primary_key=True, max_length=120)  # "{channel}:{thread ts}"
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE")
    last_at: datetime = _ts()


class Confirmation(SQLModel, table=True):
    """A pending confirmation of a destructive or public command, bound to the member who asked,
    the command and the bot's draft revision. `used_at` is set once: a second click does nothing."""

    id: str = Field(primary_key=True, max_length=40)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    identity: str = Field(max_length=200)
    command: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    bot: str | None = Field(default=None, max_length=40)
    revision: int | None = None
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class TestRun(SQLModel, table=True):
    """One run of a bot's test cases against a draft, keyed by the draft's content hash."""

    __test__ = False  # not a pytest class
    __tablename__ = "test_run"
    __table_args__ = (
        Index("ix_test_run_bot_hash", "bot_id", "spec_hash"),
        Index(  # the leader's sweep of runs whose worker is gone (`runtime.cluster.presence`)
            "ix_test_run_running",
            "worker",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    spec_hash: str = Field(max_length=80)
    status: str = Field(default="running", max_length=16)  # running, done, failed
    total: int = 0
    passed: int = 0
    failed: int = 0
    results: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )
    started_by: str = Field(max_length=200)
    worker: str | None = Field(default=None, max_length=80)  # the process running it
    started_at: datetime = _ts()
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Invite(SQLModel, table=True):
    """A one-time code to join a team, stored hashed."""

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    code_hash: str = Field(unique=True, max_length=64)
    role: str = Field(default="viewer", max_length=16)
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    used_by: str | None = Field(default=None, max_length=200)
    used_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class StudioNotice(SQLModel, table=True):
    """A Studio message sent later (a test report) to a member on a front that pulls its
    messages (the terminal, the web console, the HTTP endpoint)."""

    __tablename__ = "studio_notice"
    __table_args__ = (Index("ix_studio_notice_member", "team_id", "identity", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE")
    identity: str = Field(max_length=200)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class Participant(SQLModel, table=True):
    """What a bot remembers about one end user (participant memory): typed values by key.
    `channel` and `user` are the address the person talks from (`sandbox` for `/try`)."""

    __table_args__ = (UniqueConstraint("bot_id", "channel", "user"),)
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", index=True)
    channel: str = Field(max_length=16)
    user: str = Field(max_length=200)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _ts()


class BudgetNotice(SQLModel, table=True):
    """A bot's owners were told its monthly budget reached `level` percent in `month` (YYYY-MM,
    UTC). The constraint makes the telling once only, across restarts and workers."""

    __tablename__ = "budget_notice"
    __table_args__ = (UniqueConstraint("bot_id", "month", "level"),)
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    month: str = Field(max_length=7)
    level: int
    created_at: datetime = _ts()


class TeamSecret(SQLModel, table=True):
    """A team secret (a tool's credential), referenced by name from bots' tools. Only its
    ciphertext is stored (`runtime.cipher`); `updated_by` is who set it last."""

    __tablename__ = "team_secret"
    __table_args__ = (UniqueConstraint("team_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE")
    name: str = Field(max_length=64)
    ciphertext: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    updated_by: str = Field(max_length=200)


class HandoffRecord(SQLModel, table=True):
    """A conversation handed to people of the team (`runtime.handoff`): where the end user is
    (`address`, the runtime's `Address` as JSON) and the room the team answers in (a Slack
    channel's thread, a Telegram group's replies). Open while `closed_at` is unset; `expires_at`
    moves on with each human answer."""

    __tablename__ = "handoff"
    __table_args__ = (Index("ix_handoff_open", "closed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", index=True)
    deployment_id: str = Field(max_length=40)
    conversation_key: str = Field(max_length=200)
    address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    room_kind: str = Field(max_length=16)
    room: str = Field(max_length=40)
    room_name: str = Field(max_length=200)
    thread: str = Field(max_length=40)
    reason: str = Field(max_length=500)
    timeout_minutes: int
    opened_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    first_answer_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    closed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    closed_by: str | None = Field(default=None, max_length=200)


class HandoffPost(SQLModel, table=True):
    """A message posted in a handoff's room (the first post, and on Telegram each relayed one):
    a reply to it belongs to that handoff."""

    __tablename__ = "handoff_post"
    room_kind: str = Field(primary_key=True, max_length=16)
    room: str = Field(primary_key=True, max_length=40)
    message_id: str = Field(primary_key=True, max_length=40)
    handoff_id: int = Field(foreign_key="handoff.id", ondelete="CASCADE", index=True)


class ScheduleRun(SQLModel, table=True):
    """One occurrence of a schedule (`schedule_id`) of a bot's environment, due at `due_at`.
    The unique key makes an occurrence fire once, across restarts and workers: whoever inserts
    the row sends it. `status`: sending (under way; a fan-out's `cursor` is the last
    conversation id done), sent, failed, skipped (missed beyond its grace, or its place is not
    reached from that environment). Studio reports use `env = "studio"` and the report's id."""

    __tablename__ = "schedule_run"
    __table_args__ = (
        UniqueConstraint("bot_id", "env", "schedule_id", "due_at"),
        Index("ix_schedule_run_latest", "bot_id", "schedule_id", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    env: str = Field(max_length=16)
    schedule_id: str = Field(max_length=40)
    due_at: datetime = Field(sa_type=DateTime(timezone=True))
    status: str = Field(default="sending", max_length=16, index=True)
    sent: int = 0
    failed: int = 0
    cursor: int | None = None
    error: str | None = Field(default=None, max_length=500)
    started_at: datetime = _ts()
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # While `sending`: the process sending it (`owner`) holds it until `lease_until`, renewed
    # as it goes; another process takes it over only once the lease has run out.
    owner: str | None = Field(default=None, max_length=40)
    lease_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ScheduleDelivery(SQLModel, table=True):
    """A run's message kept for one end user (or one place) of a deployment: inserted in the
    transaction that keeps the message, so a run resumed or sent by two processes reaches each
    recipient once. Forgotten by housekeeping once the run is long finished."""

    __tablename__ = "schedule_delivery"
    run_id: int = Field(foreign_key="schedule_run.id", ondelete="CASCADE", primary_key=True)
    deployment_id: str = Field(primary_key=True, max_length=40)
    user: str = Field(primary_key=True, max_length=200)


class SchedulePause(SQLModel, table=True):
    """A bot's schedule paused now, in every environment (a pause is operational, not part of
    a version): its runs are skipped until it is resumed."""

    __tablename__ = "schedule_pause"
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", primary_key=True)
    schedule_id: str = Field(primary_key=True, max_length=40)
    paused_by: str = Field(max_length=200)
    paused_at: datetime = _ts()


class FollowUpDue(SQLModel, table=True):
    """A follow-up armed in one conversation: `message` goes to `address` (the runtime's
    `Address` as JSON) at `due_at` unless the end user speaks first; `sent` of `times` so far.
    What the follow-up says is copied from the version that armed it."""

    __tablename__ = "followup_due"
    __table_args__ = (
        UniqueConstraint("deployment_id", "conversation_key", "followup_id"),
        Index("ix_followup_due_at", "due_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", index=True)
    deployment_id: str = Field(max_length=40)
    conversation_key: str = Field(max_length=200)
    address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    followup_id: str = Field(max_length=40)
    message: str
    after_minutes: int
    times: int
    sent: int = 0
    version: int | None = None
    due_at: datetime = Field(sa_type=DateTime(timezone=True))


class StatsReport(SQLModel, table=True):
    """`/stats BOT daily at 9:00 in #ops`: the Studio posts a bot's stats on a cron schedule
    to a place of the team (`address`: a Studio address as JSON; `place` names it)."""

    __tablename__ = "stats_report"
    __table_args__ = (UniqueConstraint("bot_id", "place"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    cron: str = Field(max_length=100)
    tz: str = Field(max_length=64)
    period: str = Field(default="24h", max_length=8)
    address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    place: str = Field(max_length=200)
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()


class Dataset(SQLModel, table=True):
    """A named dataset of a bot: rows (inputs and expectations) and the evaluators that score
    versions on them (`builders.dataset.DatasetContent` as JSON in `content`). `content_hash`
    names the content; every content an evaluation used is kept in `dataset_snapshot`."""

    __table_args__ = (UniqueConstraint("bot_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE", index=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    name: str = Field(max_length=40)
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=80)
    source: str = Field(default="", max_length=200)  # how it was made: "production", "tests", …
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()
    updated_by: str = Field(max_length=200)
    updated_at: datetime = _ts()


class DatasetSnapshot(SQLModel, table=True):
    """A dataset's content as it was, by content hash: what an evaluation run scored."""

    __tablename__ = "dataset_snapshot"
    dataset_id: int = Field(foreign_key="dataset.id", ondelete="CASCADE", primary_key=True)
    content_hash: str = Field(primary_key=True, max_length=80)
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class EvalRun(SQLModel, table=True):
    """One evaluation: versions of a bot scored on a dataset's rows. `versions` lists what was
    scored (`[{"label": "v3", "number": 3, "spec_hash": …}, …]`, the draft with number None);
    `summary` the per-version scores once done; `done` of `total` (rows times versions) so far.
    At most one runs per bot (the partial unique index decides)."""

    __tablename__ = "eval_run"
    __table_args__ = (
        Index("ix_eval_run_bot", "bot_id", "id"),
        Index(
            "ux_eval_run_running",
            "bot_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index(  # the leader's sweep of runs whose worker is gone (`runtime.cluster.presence`)
            "ix_eval_run_running_worker",
            "worker",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE")
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    dataset_id: int | None = Field(default=None, foreign_key="dataset.id", ondelete="SET NULL")
    dataset_name: str = Field(max_length=40)
    dataset_hash: str = Field(max_length=80)
    versions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="running", max_length=16)  # running, done, failed
    total: int = 0
    done: int = 0
    summary: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )
    cost_usd: float | None = None  # the run's own spend: the bot's turns and the judge's calls
    error: str | None = Field(default=None, max_length=500)
    started_by: str = Field(max_length=200)
    worker: str | None = Field(default=None, max_length=80)  # the process running it
    started_at: datetime = _ts()
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class EvalResult(SQLModel, table=True):
    """One dataset row scored on one version in a run: the answer, each evaluator's outcome
    (`checks`), the row's score (0..1, None when it could not be scored), time and cost."""

    __tablename__ = "eval_result"
    __table_args__ = (UniqueConstraint("run_id", "row_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_run.id", ondelete="CASCADE", index=True)
    row_id: str = Field(max_length=40)
    version: str = Field(max_length=16)  # the label: "v3", "draft"
    outcome: str = Field(max_length=8)  # pass, fail, error
    score: float | None = None
    answer: str
    latency_ms: float | None = None
    cost_usd: float | None = None
    checks: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    transcript: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )


class EvalGate(SQLModel, table=True):
    """A bot's promotions need an evaluation on `dataset` scoring at least `min_score`
    (0..1): of exactly the draft to staging, of staging's version to production."""

    __tablename__ = "eval_gate"
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", primary_key=True)
    dataset: str = Field(max_length=40)
    min_score: float
    updated_by: str = Field(max_length=200)
    updated_at: datetime = _ts()


class OnlineEval(SQLModel, table=True):
    """`percent` of a bot's live turns are judged in the background with `rubric`."""

    __tablename__ = "online_eval"
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", primary_key=True)
    percent: float
    rubric: str = Field(max_length=2000)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = _ts()


class TurnScore(SQLModel, table=True):
    """A live answer judged by online evaluation: `score` 0..1; `flagged` when it is low."""

    __tablename__ = "turn_score"
    __table_args__ = (Index("ix_turn_score_bot_time", "bot_id", "created_at"),)
    message_id: int = Field(foreign_key="message.id", ondelete="CASCADE", primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    score: float | None = None  # None: the judge gave no verdict (`reason` says why)
    flagged: bool = False
    reason: str = Field(default="", max_length=500)
    cost_usd: float | None = None
    created_at: datetime = _ts()


class Feedback(SQLModel, table=True):
    """An end user's rating of a bot's answer (`rating` +1 or -1), one per person and answer:
    a later rating replaces it."""

    __table_args__ = (Index("ix_feedback_bot_time", "bot_id", "created_at"),)
    message_id: int = Field(foreign_key="message.id", ondelete="CASCADE", primary_key=True)
    user: str = Field(primary_key=True, max_length=200)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    rating: int
    channel: str = Field(max_length=16)
    created_at: datetime = _ts()


class SentRef(SQLModel, table=True):
    """Where a platform finds a sent answer again (`SendReceipt.ref`, e.g. a Telegram chat and
    message id): a reaction to it is a rating of `message_id`."""

    __tablename__ = "sent_ref"
    deployment_id: str = Field(primary_key=True, max_length=40)
    ref: str = Field(primary_key=True, max_length=120)
    message_id: int = Field(foreign_key="message.id", ondelete="CASCADE", index=True)
    created_at: datetime = _ts()


class AbTest(SQLModel, table=True):
    """A live A/B test on a bot's environment: `percent` of its end users (hashed by bot and
    user) get `version_b`, the rest `version_a` (what the environment ran when it started).
    At most one runs per environment (the partial unique index decides)."""

    __tablename__ = "ab_test"
    __table_args__ = (
        Index(
            "ux_ab_test_running",
            "bot_id",
            "env",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE", index=True)
    env: str = Field(max_length=16)
    version_a: int
    version_b: int
    percent: int
    status: str = Field(default="running", max_length=16)  # running, stopped, ended, promoted
    started_by: str = Field(max_length=200)
    started_at: datetime = _ts()
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    ended_by: str | None = Field(default=None, max_length=200)
    end_reason: str | None = Field(default=None, max_length=300)


class Delivery(SQLModel, table=True):
    """What the platform reported of a message sent on a channel with receipts (WhatsApp: sent,
    delivered, read, failed), by the id the platform gave it."""

    deployment_id: str = Field(primary_key=True, max_length=40)
    platform_id: str = Field(primary_key=True, max_length=200)
    outbox_id: int | None = None
    status: str = Field(default="sent", max_length=16)
    error: str | None = Field(default=None, max_length=500)
    updated_at: datetime = _ts()
