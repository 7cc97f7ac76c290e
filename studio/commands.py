"""The Studio's commands as typed values: the grammar parses text into them, the LLM calls them as
tools (their JSON schema is generated from these models), and the engine executes them.

One source of truth: a command's name, its help line and its tool description live here.
`bot` is optional wherever a bot is meant: the engine fills in the bot the user talked about last.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from builders.dataset import DATASET_NAME
from builders.spec import (
    MAX_DB_INT,
    MAX_FOLLOWUP_MINUTES,
    MAX_HANDOFF_MINUTES,
    MAX_MONTHLY_USD,
    MAX_PER_MINUTE,
    MAX_TERM_CHARS,
    MAX_TURN_CHARS,
    MAX_VERSION,
    SECRET_NAME,
    SecretName,
)
from runtime.participant import MAX_VALUE_CHARS

Env = Literal["staging", "production"]
# A channel's kind ("web", "slack", "whatsapp"): which exist here is the channel registry's to
# say (an unknown one is refused with the list), not this file's.
ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,19}$")]
Period = Literal["24h", "7d", "30d"]
SettableField = Literal[
    "prompt",
    "model",
    "temperature",
    "greeting",
    "fallback",
    "description",
    "history",
    "voice",
    "knowledge.k",
    "knowledge.min_score",
]
ExpectKind = Literal["contains", "regex", "judge", "step"]
RoleName = Literal["owner", "admin", "editor", "viewer"]
BotName = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MAX_INPUT_CHARS = 4000
StepKind = Literal["llm", "retrieve", "router", "template", "extract", "bot", "tool"]
StepId = Annotated[str, StringConstraints(min_length=1, max_length=40)]
RouteMatch = Literal["keyword", "regex", "intent"]
# A step's settings as `key=value` words give them, or as a tool's JSON (None: remove the key).
ParamValue = str | int | float | bool | list[Any] | dict[str, Any] | None
StepParams = Annotated[dict[str, ParamValue], Field(max_length=50)]


class Command(BaseModel):
    """A request to the Studio. Subclasses set `name` (the slash command), `usage` and `summary`
    (the `/help` line and the tool description); `tool = False` keeps it from the LLM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    usage: ClassVar[str]
    summary: ClassVar[str]
    tool: ClassVar[bool] = True
    # Destructive or public: asks for a confirmation (a button, or "yes") before it runs.
    confirm: ClassVar[bool] = False

    @property
    def needs_confirmation(self) -> bool:
        return self.confirm


class NewBot(Command):
    name: ClassVar[str] = "newbot"
    usage: ClassVar[str] = "/newbot NAME [DESCRIPTION]"
    summary: ClassVar[str] = (
        "create a draft bot (name: 2-40 of a-z, 0-9 and '-', unique in the team)"
    )
    bot: BotName
    description: Annotated[str, StringConstraints(max_length=500)] = ""


class ListBots(Command):
    name: ClassVar[str] = "bots"
    usage: ClassVar[str] = "/bots"
    summary: ClassVar[str] = "list the team's bots with the version each environment runs"


class ShowBot(Command):
    name: ClassVar[str] = "show"
    usage: ClassVar[str] = "/show BOT"
    summary: ClassVar[str] = "the bot's draft and what each environment runs"
    bot: BotName | None = None


class SetField(Command):
    name: ClassVar[str] = "set"
    usage: ClassVar[str] = "/set BOT FIELD VALUE"
    summary: ClassVar[str] = (
        "change one field of the draft: prompt, model, temperature, greeting, fallback, "
        "description, history, voice (on: voice notes are answered by voice), knowledge.k "
        "(passages given to the model, 1-20) or knowledge.min_score (how close a passage must "
        "be, -1 to 1)"
    )
    bot: BotName | None = None
    field: SettableField
    value: Annotated[str, StringConstraints(max_length=20000)]


class TryBot(Command):
    name: ClassVar[str] = "try"
    usage: ClassVar[str] = "/try BOT MESSAGE | /try BOT --new"
    summary: ClassVar[str] = (
        "talk to the draft in your own sandbox conversation (--new starts it over); "
        "never counted in stats"
    )
    bot: BotName | None = None
    # blank is no message, as in chat (`/try BOT   `) and REST: asked for, never sent to the bot
    message: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=MAX_INPUT_CHARS)
    ] = ""
    new: bool = False


class TestAdd(Command):
    __test__ = False  # not a pytest class
    name: ClassVar[str] = "test add"
    usage: ClassVar[str] = '/test BOT add "INPUT" expect contains|regex|judge|step "VALUE"'
    summary: ClassVar[str] = (
        "add a test case to the draft: the bot's answer to INPUT must contain VALUE, match the "
        "regex VALUE, satisfy the rubric VALUE (graded by the judge model), or come from the "
        "pipeline step VALUE"
    )
    bot: BotName | None = None
    input: Annotated[str, StringConstraints(min_length=1, max_length=MAX_INPUT_CHARS)]
    kind: ExpectKind
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class TestList(Command):
    __test__ = False
    name: ClassVar[str] = "test list"
    usage: ClassVar[str] = "/test BOT list"
    summary: ClassVar[str] = "the draft's test cases, numbered"
    bot: BotName | None = None


class TestRemove(Command):
    __test__ = False
    name: ClassVar[str] = "test remove"
    usage: ClassVar[str] = "/test BOT remove N"
    summary: ClassVar[str] = "remove test case number N from the draft"
    bot: BotName | None = None
    number: Annotated[int, Field(ge=1)]


class KnowledgeAdd(Command):
    name: ClassVar[str] = "knowledge add"
    usage: ClassVar[str] = "/knowledge BOT add TEXT|URL"
    summary: ClassVar[str] = (
        "add a note or a web page to the draft's knowledge (share a file to add a document: "
        "txt, md, html, pdf, docx)"
    )
    bot: BotName | None = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=MAX_INPUT_CHARS)]


class KnowledgeList(Command):
    name: ClassVar[str] = "knowledge list"
    usage: ClassVar[str] = "/knowledge BOT list"
    summary: ClassVar[str] = "the draft's knowledge sources"
    bot: BotName | None = None


class KnowledgeRemove(Command):
    name: ClassVar[str] = "knowledge remove"
    usage: ClassVar[str] = "/knowledge BOT remove NAME"
    summary: ClassVar[str] = "take a source out of the draft (versions keep theirs)"
    bot: BotName | None = None
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class KnowledgeReindex(Command):
    name: ClassVar[str] = "knowledge reindex"
    usage: ClassVar[str] = "/knowledge BOT reindex"
    summary: ClassVar[str] = (
        "cut the bot's stored sources again into passages with keywords (knowledge stored "
        "before keywords is re-indexed by itself at start); it keeps answering meanwhile"
    )
    bot: BotName | None = None


class TestRun(Command):
    __test__ = False
    name: ClassVar[str] = "test"
    usage: ClassVar[str] = "/test BOT"
    summary: ClassVar[str] = "run the draft's tests in the background and report pass/fail per case"
    bot: BotName | None = None


class FlowShow(Command):
    name: ClassVar[str] = "flow"
    usage: ClassVar[str] = "/flow BOT"
    summary: ClassVar[str] = "the draft's flow of steps, as a picture and as text"
    bot: BotName | None = None


class FlowAdd(Command):
    name: ClassVar[str] = "flow add"
    usage: ClassVar[str] = "/flow BOT add KIND ID [key=value ...] [after STEP]"
    summary: ClassVar[str] = (
        "add a step (llm, retrieve, router, template, extract, bot, tool): before the step that "
        "answers at the end, a router first, or after STEP"
    )
    bot: BotName | None = None
    kind: StepKind
    id: StepId
    params: StepParams = Field(default_factory=dict)
    after: StepId | None = None


class FlowSet(Command):
    name: ClassVar[str] = "flow set"
    usage: ClassVar[str] = "/flow BOT set ID key=value ..."
    summary: ClassVar[str] = (
        'change a step\'s settings, e.g. text="..." prompt="..." fields=email '
        "default=STEP bot=NAME top_k=N (key= removes one)"
    )
    bot: BotName | None = None
    id: StepId
    params: StepParams


class FlowLink(Command):
    name: ClassVar[str] = "flow link"
    usage: ClassVar[str] = "/flow BOT link ID NEXT|end"
    summary: ClassVar[str] = "make step ID go on to NEXT (end: it answers last)"
    bot: BotName | None = None
    id: StepId
    next: StepId


class FlowRemove(Command):
    name: ClassVar[str] = "flow remove"
    usage: ClassVar[str] = "/flow BOT remove ID"
    summary: ClassVar[str] = "remove a step; what led to it goes on to where it went"
    bot: BotName | None = None
    id: StepId


class FlowAsk(Command):
    name: ClassVar[str] = "flow ask"
    usage: ClassVar[str] = '/flow BOT ask FIELD ["QUESTION"]'
    summary: ClassVar[str] = "ask each person for FIELD (email, phone, ...) and remember it"
    bot: BotName | None = None
    field: Annotated[str, StringConstraints(min_length=1, max_length=30)]
    question: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None


class Route(Command):
    name: ClassVar[str] = "route"
    usage: ClassVar[str] = (
        '/route BOT "KEYWORD" | /REGEX/ | intent "DESCRIPTION" to STEP|BOT|human [in ROUTER]'
    )
    summary: ClassVar[str] = (
        "send messages with KEYWORD, matching REGEX or of that intent to a step, another "
        "bot of the team, or (human) people of the team through a handoff step (adds a router "
        "first if there is none)"
    )
    bot: BotName | None = None
    match: RouteMatch = "keyword"
    value: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    step: StepId
    router: StepId | None = None


ToolUrl = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
ToolWanted = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=200)]], Field(max_length=100)
]
ToolSetName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
SecretRef = Annotated[str, StringConstraints(pattern=SECRET_NAME.pattern)]


class _ToolAdding(Command):
    """What adding a tool takes, of either kind: the service's URL, the operations (or MCP
    tools) wanted, the secret for its credentials, and whether changes may run."""

    bot: BotName | None = None
    url: ToolUrl
    operations: ToolWanted = Field(default_factory=list)
    auth: SecretRef | None = None
    allow_changes: bool = False
    tool_name: ToolSetName | None = None


class ToolAdd(_ToolAdding):
    name: ClassVar[str] = "tool add"
    usage: ClassVar[str] = (
        "/tool BOT add OPENAPI-URL [OPERATION ...] [--auth SECRET] [--allow-changes] [--name NAME]"
    )
    summary: ClassVar[str] = (
        "give the bot operations of an HTTP service described by OpenAPI (chosen by id; the "
        "credentials are a team secret; operations that change something run only with "
        "--allow-changes)"
    )


class ToolAddMcp(_ToolAdding):
    name: ClassVar[str] = "tool add-mcp"
    usage: ClassVar[str] = (
        "/tool BOT add-mcp URL [TOOL ...] [--auth SECRET] [--allow-changes] [--name NAME]"
    )
    summary: ClassVar[str] = (
        "give the bot tools of an MCP server (streamable HTTP; all of them unless named; tools "
        "not marked read-only run only with --allow-changes)"
    )


class ToolList(Command):
    name: ClassVar[str] = "tool list"
    usage: ClassVar[str] = "/tool BOT list"
    summary: ClassVar[str] = (
        "the bot's tools: each one's host, operations and whether it may change things"
    )
    bot: BotName | None = None


class ToolRemove(Command):
    name: ClassVar[str] = "tool remove"
    usage: ClassVar[str] = "/tool BOT remove NAME"
    summary: ClassVar[str] = "remove one of the bot's tools from its draft"
    bot: BotName | None = None
    tool_name: ToolSetName


class Promote(Command):
    name: ClassVar[str] = "promote"
    usage: ClassVar[str] = "/promote BOT [staging|production] [--force]"
    summary: ClassVar[str] = (
        "staging (the default): freeze the draft into a new version, only while its tests pass "
        "(--force: owners only); production: run staging's version in production"
    )
    bot: BotName | None = None
    to: Env = "staging"
    force: bool = False

    @property
    def needs_confirmation(self) -> bool:
        return self.to == "production"


class Rollback(Command):
    name: ClassVar[str] = "rollback"
    usage: ClassVar[str] = "/rollback BOT [ENV] [vN]"
    summary: ClassVar[str] = (
        "point an environment back to an earlier version (default: the one before)"
    )
    confirm: ClassVar[bool] = True
    bot: BotName | None = None
    env: Env = "production"
    version: Annotated[int, Field(ge=1, le=MAX_VERSION)] | None = None


class Deploy(Command):
    name: ClassVar[str] = "deploy"
    usage: ClassVar[str] = "/deploy BOT CHANNEL [TARGET] [NAME=VALUE ...] [--env ENV]"
    summary: ClassVar[str] = (
        "put an environment of the bot (default production) on a channel; the web gives a chat "
        "URL; tokens and secrets are asked for privately"
    )
    bot: BotName | None = None
    channel: ChannelName
    target: Annotated[str, StringConstraints(max_length=200)] | None = None
    env: Env = "production"
    # A channel's settings that are no secret (WhatsApp: template=NAME[:LANG]).
    options: Annotated[
        dict[
            Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,30}$")],
            Annotated[str, StringConstraints(max_length=200)],
        ],
        Field(max_length=10),
    ] = {}


class ListDeployments(Command):
    name: ClassVar[str] = "deployments"
    usage: ClassVar[str] = "/deployments [BOT]"
    summary: ClassVar[str] = "deployments (of one bot, or all) and their health"
    bot: BotName | None = None


class Undeploy(Command):
    name: ClassVar[str] = "undeploy"
    usage: ClassVar[str] = "/undeploy BOT CHANNEL [--env ENV]"
    summary: ClassVar[str] = "take the bot off a channel (every environment unless --env)"
    bot: BotName | None = None
    channel: ChannelName
    env: Env | None = None


class Stats(Command):
    name: ClassVar[str] = "stats"
    usage: ClassVar[str] = "/stats [BOT] [24h|7d|30d]"
    summary: ClassVar[str] = "turns, users, errors, latency, tokens and cost (all bots without BOT)"
    bot: BotName | None = None
    period: Period = "7d"


class Diff(Command):
    name: ClassVar[str] = "diff"
    usage: ClassVar[str] = "/diff BOT [vA] [vB]"
    summary: ClassVar[str] = (
        "what changed between two versions (v3, draft, staging, production); "
        "default: the latest version against the draft"
    )
    bot: BotName | None = None
    a: Annotated[str, StringConstraints(max_length=20)] | None = None
    b: Annotated[str, StringConstraints(max_length=20)] | None = None


class History(Command):
    name: ClassVar[str] = "history"
    usage: ClassVar[str] = "/history BOT"
    summary: ClassVar[str] = "who changed the bot, when, and how"
    bot: BotName | None = None


EndUser = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class MemoryShow(Command):
    name: ClassVar[str] = "memory"
    usage: ClassVar[str] = "/memory BOT USER"
    summary: ClassVar[str] = (
        "what the bot remembers about one end user, per channel (USER: CHANNEL:ID such as "
        "telegram:12345, or ID on every channel; editors and up)"
    )
    bot: BotName | None = None
    user: EndUser


class MemorySet(Command):
    name: ClassVar[str] = "memory set"
    usage: ClassVar[str] = "/memory BOT USER set KEY VALUE"
    summary: ClassVar[str] = (
        "remember VALUE under KEY about an end user: a number, true/false, or text "
        '(quote it, "42", to keep a number as text)'
    )
    bot: BotName | None = None
    user: EndUser
    key: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    # as typed: quotes keep a number as text (`studio.participants.typed_value`)
    value: Annotated[str, StringConstraints(min_length=1, max_length=MAX_VALUE_CHARS + 2)]


class MemoryForget(Command):
    name: ClassVar[str] = "memory forget"
    usage: ClassVar[str] = "/memory BOT USER forget"
    summary: ClassVar[str] = "forget what the bot remembers about an end user (messages stay)"
    confirm: ClassVar[bool] = True
    bot: BotName | None = None
    user: EndUser


class Delete(Command):
    name: ClassVar[str] = "delete"
    usage: ClassVar[str] = "/delete BOT"
    summary: ClassVar[str] = "delete the bot, its versions and its deployments"
    confirm: ClassVar[bool] = True
    bot: BotName | None = None


class SetRole(Command):
    name: ClassVar[str] = "role"
    usage: ClassVar[str] = "/role USER owner|admin|editor|viewer"
    summary: ClassVar[str] = "give a member of the team a role (admins and owners only)"
    user: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    role: RoleName


class Invite(Command):
    name: ClassVar[str] = "invite"
    usage: ClassVar[str] = "/invite"
    summary: ClassVar[str] = "a one-time code that lets someone join this team (admins)"


class Join(Command):
    name: ClassVar[str] = "join"
    usage: ClassVar[str] = "/join CODE"
    summary: ClassVar[str] = "join a team with a code from /invite"
    tool: ClassVar[bool] = False  # a code is typed by the person who has it
    code: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class GuardShow(Command):
    name: ClassVar[str] = "guard"
    usage: ClassVar[str] = "/guard BOT"
    summary: ClassVar[str] = (
        "the draft's guardrails: message length, blocked terms, personal data masking, moderation"
    )
    bot: BotName | None = None


class GuardSet(Command):
    name: ClassVar[str] = "guard set"
    usage: ClassVar[str] = (
        '/guard BOT pii on|off | block "TERM" | unblock "TERM" | max-input N | moderation on|off'
    )
    summary: ClassVar[str] = (
        "change the draft's guardrails: mask emails, phone and card numbers (pii), refuse "
        "messages with a term (whole words, any case), limit a message's length, check messages "
        "with the provider's moderation (not with the offline model)"
    )
    bot: BotName | None = None
    pii: bool | None = None
    block: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TERM_CHARS)] | None = None
    unblock: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TERM_CHARS)] | None = (
        None
    )
    max_input: Annotated[int, Field(ge=1, le=MAX_TURN_CHARS)] | None = None
    moderation: bool | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> GuardSet:
        if not self.model_dump(exclude={"bot"}, exclude_none=True):
            raise ValueError("say what to change: pii, block, unblock, max-input or moderation")
        return self


class BudgetShow(Command):
    name: ClassVar[str] = "budget"
    usage: ClassVar[str] = "/budget BOT"
    summary: ClassVar[str] = "the bot's spend this month (UTC) against its budget and rate limit"
    bot: BotName | None = None


class BudgetSet(Command):
    name: ClassVar[str] = "budget set"
    usage: ClassVar[str] = "/budget BOT $N per month | N per minute per user | off"
    summary: ClassVar[str] = (
        "limit the draft's live spend a calendar month (owners and admins are told at 80% and "
        "100%), or the messages one end user may send a minute; off removes both"
    )
    bot: BotName | None = None
    monthly_usd: Annotated[float, Field(gt=0, le=MAX_MONTHLY_USD)] | None = None
    per_user_per_minute: Annotated[int, Field(ge=1, le=MAX_PER_MINUTE)] | None = None
    off: bool = False

    @model_validator(mode="after")
    def _changes_something(self) -> BudgetSet:
        limits = self.monthly_usd is not None or self.per_user_per_minute is not None
        if limits == self.off:
            raise ValueError("give $N per month and/or N per minute per user, or off alone")
        return self


class SecretSet(Command):
    name: ClassVar[str] = "secret set"
    usage: ClassVar[str] = "/secret set NAME"
    summary: ClassVar[str] = (
        "set a team secret (a tool's credential): I ask for its value privately and never "
        "show it again (admins)"
    )
    # Only the name: the value never travels through a command (nor through the builder model).
    name_: SecretName = Field(alias="name")


class SecretList(Command):
    name: ClassVar[str] = "secret list"
    usage: ClassVar[str] = "/secret list"
    summary: ClassVar[str] = "the team's secrets (names only), who set them and which bots use them"


class SecretRemove(Command):
    name: ClassVar[str] = "secret remove"
    usage: ClassVar[str] = "/secret remove NAME"
    summary: ClassVar[str] = (
        "delete a team secret; tools that use it are refused until it is set again (admins)"
    )
    name_: SecretName = Field(alias="name")


class HandoffShow(Command):
    name: ClassVar[str] = "handoff"
    usage: ClassVar[str] = "/handoff BOT"
    summary: ClassVar[str] = "where the draft hands conversations to people of the team"
    bot: BotName | None = None


class HandoffSet(Command):
    name: ClassVar[str] = "handoff set"
    usage: ClassVar[str] = (
        "/handoff BOT to #CHANNEL|here [timeout MINUTES] [tool on|off] | timeout MINUTES | "
        "tool on|off | off"
    )
    summary: ClassVar[str] = (
        "where the draft hands a conversation to people of the team: a Slack channel the app is "
        "in, or (here, said in it) a Telegram group with the Studio's bot; they answer in a "
        "thread there and say resume (Slack) or /resume (Telegram) to give it back. timeout: "
        "minutes without their answer before it goes back by itself (default 60); tool: the "
        "model may hand over by itself (default on); off: no handoff"
    )
    bot: BotName | None = None
    target: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    timeout_minutes: Annotated[int, Field(ge=1, le=MAX_HANDOFF_MINUTES)] | None = None
    by_model: bool | None = None  # `tool on|off` (a command's `tool` says whether it is one)
    off: bool = False

    @model_validator(mode="after")
    def _changes_something(self) -> HandoffSet:
        changes = self.model_dump(exclude={"bot", "off"}, exclude_none=True)
        if bool(changes) == self.off:
            raise ValueError("say where (to #CHANNEL), a timeout, tool on|off, or off alone")
        return self


class Resume(Command):
    """`/resume` said to the Studio: it belongs in a handoff's thread (the adapters route it)."""

    name: ClassVar[str] = "resume"
    usage: ClassVar[str] = "/resume"
    summary: ClassVar[str] = (
        "said alone in a handed-over conversation's thread (Slack: type resume) or as a reply "
        "to its message (Telegram group): the bot answers again"
    )
    tool: ClassVar[bool] = False


ScheduleRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
Proactive = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TURN_CHARS)]
Place = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ZoneName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class ScheduleAdd(Command):
    name: ClassVar[str] = "schedule"
    usage: ClassVar[str] = '/schedule BOT "CRON" "MESSAGE" [to TARGET] [--tz ZONE]'
    summary: ClassVar[str] = (
        "add a scheduled message to the draft: CRON is five fields (minute hour day month "
        'weekday, e.g. "0 9 * * MON-FRI"), in time zone ZONE (default UTC); a MESSAGE starting '
        "with prompt: is written by the bot from that prompt; TARGET: #channel (Slack), here, a "
        "Telegram chat id or web:SESSION; without it, each end user"
    )
    bot: BotName | None = None
    cron: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    message: Proactive
    to: Place | None = None
    tz: ZoneName | None = None


class ScheduleList(Command):
    name: ClassVar[str] = "schedule list"
    usage: ClassVar[str] = "/schedule BOT list"
    summary: ClassVar[str] = (
        "the draft's schedules and, per live environment, each one's next run (in its time "
        "zone), last run and whether it is paused"
    )
    bot: BotName | None = None


class SchedulePause(Command):
    name: ClassVar[str] = "schedule pause"
    usage: ClassVar[str] = "/schedule BOT pause ID"
    summary: ClassVar[str] = "stop a schedule at once, in every environment, until resumed"
    bot: BotName | None = None
    id: ScheduleRef


class ScheduleResume(Command):
    name: ClassVar[str] = "schedule resume"
    usage: ClassVar[str] = "/schedule BOT resume ID"
    summary: ClassVar[str] = "run a paused schedule again, in every environment"
    bot: BotName | None = None
    id: ScheduleRef


class ScheduleRemove(Command):
    name: ClassVar[str] = "schedule remove"
    usage: ClassVar[str] = "/schedule BOT remove ID"
    summary: ClassVar[str] = "remove a schedule from the draft (end users once promoted)"
    bot: BotName | None = None
    id: ScheduleRef


class FollowUpAdd(Command):
    name: ClassVar[str] = "followup"
    usage: ClassVar[str] = '/followup BOT after DURATION "MESSAGE" [times N]'
    summary: ClassVar[str] = (
        "when an end user says nothing for DURATION (30m, 2h, 1h30m, 1d: 1 minute to 30 days) "
        "after the bot's answer, the bot sends MESSAGE (prompt: ... is written by the bot), up "
        "to N times (default 1); their next message cancels it"
    )
    bot: BotName | None = None
    after_minutes: Annotated[int, Field(ge=1, le=MAX_FOLLOWUP_MINUTES)]
    message: Proactive
    times: Annotated[int, Field(ge=1, le=10)] = 1


class FollowUpList(Command):
    name: ClassVar[str] = "followup list"
    usage: ClassVar[str] = "/followup BOT list"
    summary: ClassVar[str] = "the draft's follow-ups"
    bot: BotName | None = None


class FollowUpRemove(Command):
    name: ClassVar[str] = "followup remove"
    usage: ClassVar[str] = "/followup BOT remove ID"
    summary: ClassVar[str] = "remove a follow-up from the draft"
    bot: BotName | None = None
    id: ScheduleRef


class StatsReportAdd(Command):
    name: ClassVar[str] = "stats report"
    usage: ClassVar[str] = "/stats BOT daily|weekly on DAY at HH:MM [in #CHANNEL|here] [--tz ZONE]"
    summary: ClassVar[str] = (
        "post the bot's stats (daily: the last 24 hours; weekly: the last 7 days) in a Slack "
        "channel, the Telegram group it is said in (here), or, without in, to you"
    )
    bot: BotName | None = None
    every: Literal["daily", "weekly"]
    day: Weekday | None = None  # weekly only (default monday)
    at: Annotated[str, StringConstraints(pattern=r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$")]
    place: Place | None = None
    tz: ZoneName | None = None

    @model_validator(mode="after")
    def _day_is_weekly(self) -> StatsReportAdd:
        if self.day is not None and self.every == "daily":
            raise ValueError("a daily report has no day: say weekly on DAY")
        return self


class StatsReports(Command):
    name: ClassVar[str] = "stats reports"
    usage: ClassVar[str] = "/stats BOT reports"
    summary: ClassVar[str] = "the bot's scheduled stats reports: where, when, next and last run"
    bot: BotName | None = None


class StatsReportRemove(Command):
    name: ClassVar[str] = "stats reports remove"
    usage: ClassVar[str] = "/stats BOT reports remove ID"
    summary: ClassVar[str] = "stop a scheduled stats report"
    bot: BotName | None = None
    id: Annotated[int, Field(ge=1, le=MAX_DB_INT)]


# -- evaluation: datasets, runs, online scoring, feedback review, live A/B ---------------------

DatasetRef = Annotated[
    str,
    BeforeValidator(lambda name: name.strip().lower() if isinstance(name, str) else name),
    StringConstraints(pattern=DATASET_NAME),
]
VersionRef = Annotated[str, StringConstraints(min_length=1, max_length=16)]  # v3, draft, staging
DatasetKind = Literal["contains", "regex", "judge", "step"]


class DatasetFromLast(Command):
    name: ClassVar[str] = "dataset from-last"
    usage: ClassVar[str] = "/dataset BOT from-last N [as NAME]"
    summary: ClassVar[str] = (
        "a dataset of production's last N answered turns (with the conversation before each; "
        "masked when the bot's PII guard is on)"
    )
    bot: BotName | None = None
    count: Annotated[int, Field(ge=1, le=500)]
    dataset: DatasetRef | None = None


class DatasetFromTests(Command):
    name: ClassVar[str] = "dataset from-tests"
    usage: ClassVar[str] = "/dataset BOT from-tests [as NAME]"
    summary: ClassVar[str] = "a dataset of the draft's test cases, with their expectations"
    bot: BotName | None = None
    dataset: DatasetRef | None = None


class DatasetAdd(Command):
    name: ClassVar[str] = "dataset add"
    usage: ClassVar[str] = (
        '/dataset BOT add "INPUT" expect contains|regex|judge|step "VALUE" [to NAME]'
    )
    summary: ClassVar[str] = "add a row to a dataset (created when it does not exist)"
    bot: BotName | None = None
    input: Annotated[str, StringConstraints(min_length=1, max_length=MAX_INPUT_CHARS)]
    kind: DatasetKind
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    dataset: DatasetRef | None = None


class DatasetList(Command):
    name: ClassVar[str] = "dataset list"
    usage: ClassVar[str] = "/dataset BOT list"
    summary: ClassVar[str] = "the bot's datasets: rows, evaluators, where they came from"
    bot: BotName | None = None


class DatasetShow(Command):
    name: ClassVar[str] = "dataset show"
    usage: ClassVar[str] = "/dataset BOT show NAME"
    summary: ClassVar[str] = "a dataset's evaluators and rows, numbered"
    bot: BotName | None = None
    dataset: DatasetRef


class DatasetExpect(Command):
    name: ClassVar[str] = "dataset expect"
    usage: ClassVar[str] = '/dataset BOT expect NAME ROW "VALUE" [contains|regex|judge|step]'
    summary: ClassVar[str] = (
        "set what row ROW's answer must do: its expectation, checked by the dataset's "
        "evaluators (or by the one named, for this row only)"
    )
    bot: BotName | None = None
    dataset: DatasetRef
    row: Annotated[int, Field(ge=1, le=1_000_000)]
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    kind: DatasetKind | None = None


class DatasetEvaluate(Command):
    name: ClassVar[str] = "dataset evaluate"
    usage: ClassVar[str] = (
        '/dataset BOT evaluate NAME contains|regex|judge|step ["VALUE"] | latency MS | '
        'cost USD | simulated "PERSONA" "RUBRIC" [turns N] | off KIND'
    )
    summary: ClassVar[str] = (
        "score every row of a dataset with an evaluator (without a VALUE, each row's "
        "expectation is used), or stop using one"
    )
    bot: BotName | None = None
    dataset: DatasetRef
    kind: Literal["contains", "regex", "judge", "step", "latency", "cost", "simulated"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    max_ms: Annotated[float, Field(gt=0, le=600_000)] | None = None
    max_usd: Annotated[float, Field(gt=0, le=100)] | None = None
    persona: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    turns: Annotated[int, Field(ge=1, le=10)] | None = None
    off: bool = False  # stop using the dataset's evaluators of `kind`


class DatasetRemove(Command):
    name: ClassVar[str] = "dataset remove"
    usage: ClassVar[str] = "/dataset BOT remove NAME"
    summary: ClassVar[str] = "delete a dataset (the evaluation runs on it stay)"
    bot: BotName | None = None
    dataset: DatasetRef


DATASET_COMMANDS: tuple[type[Command], ...] = (
    DatasetFromLast,
    DatasetFromTests,
    DatasetAdd,
    DatasetList,
    DatasetShow,
    DatasetExpect,
    DatasetEvaluate,
    DatasetRemove,
)


class EvalRun(Command):
    name: ClassVar[str] = "eval"
    usage: ClassVar[str] = "/eval BOT [DATASET] [draft|staging|production|vN ...]"
    summary: ClassVar[str] = (
        "score versions on a dataset in the background (default: the only dataset; staging "
        "and the draft); the report has per-version scores, changed rows, cost and a trend chart"
    )
    bot: BotName | None = None
    dataset: DatasetRef | None = None
    versions: Annotated[list[VersionRef], Field(max_length=6)] = []


class EvalRuns(Command):
    name: ClassVar[str] = "eval runs"
    usage: ClassVar[str] = "/eval BOT runs | /eval BOT show ID"
    summary: ClassVar[str] = "the bot's evaluation runs, or one run's report"
    bot: BotName | None = None
    run: Annotated[int, Field(ge=1, le=MAX_DB_INT)] | None = None


class EvalGateSet(Command):
    name: ClassVar[str] = "eval gate"
    usage: ClassVar[str] = "/eval BOT gate DATASET MIN-SCORE% (0-100) | gate off | gate"
    summary: ClassVar[str] = (
        "promotions need an evaluation on DATASET scoring at least MIN-SCORE% (admins)"
    )
    bot: BotName | None = None
    dataset: DatasetRef | None = None  # None with min_score None: show; `off`: remove
    min_score: Annotated[float, Field(ge=0, le=100)] | None = None
    off: bool = False


class EvalOnlineSet(Command):
    name: ClassVar[str] = "eval online"
    usage: ClassVar[str] = '/eval BOT online PERCENT% "RUBRIC" | online off | online'
    summary: ClassVar[str] = (
        "judge PERCENT% of live answers in the background by RUBRIC; low scores are flagged "
        "for /review (admins)"
    )
    bot: BotName | None = None
    percent: Annotated[float, Field(gt=0, le=100)] | None = None
    rubric: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    off: bool = False


class ReviewList(Command):
    name: ClassVar[str] = "review"
    usage: ClassVar[str] = "/review BOT"
    summary: ClassVar[str] = "answers end users rated down or online evaluation flagged"
    bot: BotName | None = None


class TraceShow(Command):
    name: ClassVar[str] = "trace"
    usage: ClassVar[str] = "/trace BOT [last | CONVERSATION]"
    summary: ClassVar[str] = (
        "why a bot answered as it did: each step of its latest answer (or of a conversation's "
        "last answers) with passages, tool calls, tokens and time"
    )
    bot: BotName | None = None
    conversation: Annotated[int, Field(ge=1, le=MAX_DB_INT)] | None = None


class ReviewAdd(Command):
    name: ClassVar[str] = "review add"
    usage: ClassVar[str] = "/review BOT add ID [ID ...] to DATASET"
    summary: ClassVar[str] = (
        "add reviewed answers (their ids from /review) to a dataset, with their context"
    )
    bot: BotName | None = None
    ids: Annotated[
        list[Annotated[int, Field(ge=1, le=MAX_DB_INT)]], Field(min_length=1, max_length=50)
    ]
    dataset: DatasetRef


class ExportConversations(Command):
    name: ClassVar[str] = "export"
    usage: ClassVar[str] = "/export BOT [csv|json] [24h|7d|30d]"
    summary: ClassVar[str] = (
        "the bot's conversations of the period (default 7d) as a CSV (default) or JSON file "
        "(admins)"
    )
    bot: BotName | None = None
    format: Literal["csv", "json"] = "csv"
    period: Period = "7d"


class AbTestStart(Command):
    name: ClassVar[str] = "abtest"
    usage: ClassVar[str] = "/abtest BOT vA vB PERCENT [--env staging|production]"
    summary: ClassVar[str] = (
        "send PERCENT% of the environment's end users (each sticks to one) to vB; vA is what it "
        "runs now (admins)"
    )
    bot: BotName | None = None
    a: Annotated[int, Field(ge=1, le=MAX_VERSION)]
    b: Annotated[int, Field(ge=1, le=MAX_VERSION)]
    percent: Annotated[int, Field(ge=1, le=99)]
    env: Env = "production"


class AbTestStatus(Command):
    name: ClassVar[str] = "abtest status"
    usage: ClassVar[str] = "/abtest BOT status [--env staging|production]"
    summary: ClassVar[str] = (
        "per variant: turns, users, feedback, online score, latency and cost per turn, and "
        "whether the difference is significant yet"
    )
    bot: BotName | None = None
    env: Env | None = None  # None: every running test (or else the last one)


class AbTestStop(Command):
    name: ClassVar[str] = "abtest stop"
    usage: ClassVar[str] = "/abtest BOT stop [--env staging|production]"
    summary: ClassVar[str] = "end the running A/B test: everyone gets vA again (admins)"
    bot: BotName | None = None
    env: Env | None = None  # None: production's test, else staging's


class AbTestPromoteWinner(Command):
    name: ClassVar[str] = "abtest promote-winner"
    usage: ClassVar[str] = "/abtest BOT promote-winner [--env staging|production]"
    summary: ClassVar[str] = (
        "end the test and run the better variant, once the difference is significant, "
        "through the normal promotion checks (admins)"
    )
    confirm: ClassVar[bool] = True
    bot: BotName | None = None
    env: Env | None = None  # None: production's test, else staging's


class Help(Command):
    name: ClassVar[str] = "help"
    usage: ClassVar[str] = "/help [COMMAND]"
    summary: ClassVar[str] = "the commands, or one command in detail"
    tool: ClassVar[bool] = False
    command: Annotated[str, StringConstraints(max_length=40)] | None = None


class Confirm(Command):
    """ "yes" (or the confirm button without a token): the user's latest pending confirmation."""

    name: ClassVar[str] = "yes"
    usage: ClassVar[str] = "yes | no"
    summary: ClassVar[str] = "confirm (or cancel) what the Studio asked you to confirm"
    tool: ClassVar[bool] = False
    accept: bool = True
    token: str | None = None


# The order is the order of /help.
COMMANDS: tuple[type[Command], ...] = (
    NewBot,
    ListBots,
    ShowBot,
    SetField,
    TryBot,
    TestAdd,
    TestList,
    TestRemove,
    TestRun,
    KnowledgeAdd,
    KnowledgeList,
    KnowledgeRemove,
    KnowledgeReindex,
    FlowShow,
    FlowAdd,
    FlowSet,
    FlowLink,
    FlowRemove,
    FlowAsk,
    Route,
    ToolAdd,
    ToolAddMcp,
    ToolList,
    ToolRemove,
    Promote,
    Rollback,
    Deploy,
    ListDeployments,
    Undeploy,
    Stats,
    StatsReportAdd,
    StatsReports,
    StatsReportRemove,
    ScheduleAdd,
    ScheduleList,
    SchedulePause,
    ScheduleResume,
    ScheduleRemove,
    FollowUpAdd,
    FollowUpList,
    FollowUpRemove,
    GuardShow,
    GuardSet,
    BudgetShow,
    BudgetSet,
    HandoffShow,
    HandoffSet,
    Resume,
    Diff,
    History,
    MemoryShow,
    MemorySet,
    MemoryForget,
    Delete,
    SetRole,
    Invite,
    Join,
    SecretSet,
    SecretList,
    SecretRemove,
    *DATASET_COMMANDS,
    EvalRun,
    EvalRuns,
    EvalGateSet,
    EvalOnlineSet,
    ReviewList,
    ReviewAdd,
    ExportConversations,
    TraceShow,
    AbTestStart,
    AbTestStatus,
    AbTestStop,
    AbTestPromoteWinner,
    Help,
)


def tool_name(command: type[Command]) -> str:
    return command.name.replace(" ", "_")


@cache
def tool_schemas() -> tuple[dict[str, Any], ...]:
    """The commands the LLM may call, as OpenAI tool definitions generated from the models
    (built once: the models do not change)."""
    tools = []
    for command in COMMANDS:
        if not command.tool:
            continue
        schema = command.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": tool_name(command),
                    "description": f"{command.usage}: {command.summary}",
                    "parameters": schema,
                },
            }
        )
    return tuple(tools)


def command_for_tool(name: str) -> type[Command] | None:
    return next((c for c in COMMANDS if c.tool and tool_name(c) == name), None)
