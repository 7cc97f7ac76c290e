"""The offline grammar: one line typed to the Studio becomes one command from `studio.commands`.

Three layers, tried in order:
1. confirmations ("yes", "ok, do it", "no", "cancel") answer the pending question;
2. natural phrasings ("create a bot called faq-bot", "deploy it to telegram"): one small table of
   patterns, tried only when the line does not start with "/";
3. the slash commands of SPEC §3, with or without the slash (Slack refuses unknown slash commands,
   so people type `newbot faq-bot`); a leading `studio` word (`/studio newbot faq-bot`) is dropped.

`bot` is optional wherever the grammar allows it: a missing bot, or a pronoun ("it", "this bot"),
leaves `bot=None` and the engine uses the bot the user talked about last. Bot names pass through
lower-cased and unchecked; the engine knows the team's bots and suggests near names.

In a phrasing, "to"/"as" after a field is a connector ("set the model to gpt-4o"); after a slash
command the value is the rest of the line verbatim (`/set faq-bot prompt To the point.`).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar, cast, get_args

from annotated_types import Ge, Le
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from builders.dataset import DATASET_NAME
from builders.spec import MAX_FOLLOWUP_MINUTES, MAX_VERSION, NAME_PATTERN
from runtime.secrets import name_problem
from studio.commands import (
    COMMANDS,
    DATASET_COMMANDS,
    MAX_INPUT_CHARS,
    AbTestPromoteWinner,
    AbTestStart,
    AbTestStatus,
    AbTestStop,
    BudgetSet,
    BudgetShow,
    Command,
    Confirm,
    DatasetAdd,
    DatasetEvaluate,
    DatasetExpect,
    DatasetFromLast,
    DatasetFromTests,
    DatasetKind,
    DatasetList,
    DatasetRemove,
    DatasetShow,
    Delete,
    Deploy,
    Diff,
    Env,
    EvalGateSet,
    EvalOnlineSet,
    EvalRun,
    EvalRuns,
    ExportConversations,
    FlowAdd,
    FlowAsk,
    FlowLink,
    FlowRemove,
    FlowSet,
    FlowShow,
    FollowUpAdd,
    FollowUpList,
    FollowUpRemove,
    GuardSet,
    GuardShow,
    HandoffSet,
    HandoffShow,
    Help,
    History,
    Invite,
    Join,
    KnowledgeAdd,
    KnowledgeList,
    KnowledgeReindex,
    KnowledgeRemove,
    ListBots,
    ListDeployments,
    MemoryForget,
    MemorySet,
    MemoryShow,
    NewBot,
    ParamValue,
    Promote,
    Resume,
    ReviewAdd,
    ReviewList,
    Rollback,
    Route,
    ScheduleAdd,
    ScheduleList,
    SchedulePause,
    ScheduleRemove,
    ScheduleResume,
    SecretList,
    SecretRemove,
    SecretSet,
    SetField,
    SetRole,
    SettableField,
    ShowBot,
    Stats,
    StatsReportAdd,
    StatsReportRemove,
    StatsReports,
    TestAdd,
    TestList,
    TestRemove,
    TestRun,
    ToolAdd,
    ToolAddMcp,
    ToolList,
    ToolRemove,
    TraceShow,
    TryBot,
    Undeploy,
)

C = TypeVar("C", bound=Command)

_ENVS: tuple[str, ...] = get_args(Env)
_FIELDS: tuple[str, ...] = get_args(SettableField)
_FIELD_ALIASES = {
    "system prompt": "prompt",
    "persona": "prompt",
    "instructions": "prompt",
    "temp": "temperature",
    "welcome": "greeting",
    "welcome message": "greeting",
    "fallback message": "fallback",
}
_WORD_FIELDS = (
    "model",
    "temperature",
    "history",
    "voice",
    "knowledge.k",
    "knowledge.min_score",
)  # one-word values: no closing "." or "please"
_TEST_ACTIONS = ("add", "list", "remove", "run")
_KNOWLEDGE_ACTIONS = ("add", "list", "remove", "reindex")
_MEMORY_ACTIONS = ("set", "forget")
_PRONOUNS = frozenset({"it", "this", "that", "this bot", "that bot", "the bot", "my bot"})
# Typographic quotes (phones and Slack turn " and ' into these), spelt as escapes.
_LDQ, _RDQ, _LSQ, _RSQ = "\u201c", "\u201d", "\u2018", "\u2019"
_QUOTE_PAIRS = {'"': '"', "'": "'", _LDQ: _RDQ, _LSQ: _RSQ, "`": "`"}
_QUOTES = "".join(sorted({*_QUOTE_PAIRS, *_QUOTE_PAIRS.values()}))

_VERSION = re.compile(r"v?\d+", re.I)
_VERSION_REF = re.compile(r"v?\d+|draft|staging|production", re.I)
_PERIOD_LIKE = re.compile(r"\d+[a-z]*", re.I)
_LEADING_PRONOUN = re.compile(
    r"(?:(?:this|that|the|my)\s+bot|it|this|that)(?=[\s:,.?!]|$)[:,]?", re.I
)
_STUDIO_PREFIX = re.compile(r"/?studio(?:@\S+)?(?=\s|$)\s*", re.I)
_CLOSING_PLEASE = re.compile(r",?\s*please$", re.I)
_POLITE_PREFIX = re.compile(r"^(?:(?:please|pls|kindly|can you|could you|would you)[\s,]+)+", re.I)
# `"INPUT" expect KIND "VALUE"`, as `/test BOT add` and `/dataset BOT add` take it.
_EXPECTATION = (
    rf"[\"'{_LDQ}{_LSQ}](?P<input>.+?)[\"'{_RDQ}{_RSQ}]\s+expects?\s+(?P<kind>\S+)\s+"
    rf"[\"'{_LDQ}{_LSQ}](?P<value>.+)[\"'{_RDQ}{_RSQ}]"
)
_TEST_ADD = re.compile(_EXPECTATION, re.I | re.S)
# ... then `to NAME`: tried first, so that a quoted NAME is not taken into the VALUE.
_DATASET_ADD_TO = re.compile(
    rf"{_EXPECTATION}\s+(?:to|into)\s+[{_QUOTES}]?(?P<dataset>[^\s{_QUOTES}]+)[{_QUOTES}]?[.!]?",
    re.I | re.S,
)
_YES = re.compile(
    r"(?:yes|y|yep|yeah|yup|sure|ok|okay|confirm(?:ed)?|proceed|go ahead|do it)"
    r"(?: (?:do it|go ahead|confirm|sure|proceed))?"
)
_NO = re.compile(
    r"(?:no|n|nope|nah|cancel|stop|abort|don't|do not)(?: (?:cancel|thanks|thank you|don't|stop))?"
)

# Words people try that are not command names, for the "did you mean" of `not_understood`.
_SUGGESTION_ALIASES = {
    "create": "newbot",
    "new": "newbot",
    "make": "newbot",
    "list": "bots",
    "remove": "delete",
    "publish": "deploy",
    "release": "promote",
    "revert": "rollback",
    "undo": "rollback",
    "ask": "try",
    "chat": "try",
    "evaluate": "eval",
    "feedback": "review",
    "experiment": "abtest",
}


class GrammarError(Exception):
    """The text is a command but its arguments are wrong. `message` is a problem line, then the
    usage line; safe to show as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse(
    text: str, *, bots: Collection[str] = (), channels: Collection[str] = ()
) -> Command | None:
    """The command `text` asks for, or None when it is neither a command nor a known phrasing.

    `bots` are the names of the caller's team's bots; they settle whether a first word is a bot
    (`/try hello there` with no bot `hello` tries the current bot). `channels` are the kinds
    bots may be deployed to here; they settle it for `/deploy` and `/undeploy`. Raises
    `GrammarError`.
    """
    text = text.strip()
    if len(text) > MAX_INPUT_CHARS:
        raise GrammarError(
            f"That message is too long ({len(text)} characters); the limit is {MAX_INPUT_CHARS}."
        )
    body = _STUDIO_PREFIX.sub("", text, count=1)
    if not body:
        return Help() if text else None
    known = frozenset(name.lower() for name in bots)
    confirmation = _confirmation(body.lstrip("/"))
    if confirmation is not None:
        return confirmation
    if not body.startswith("/"):
        body = _POLITE_PREFIX.sub("", body, count=1)
        phrased = _phrased(body, known)
        if phrased is not None:
            return phrased
    return _command(body, known, frozenset(channels))


def not_understood(text: str) -> str:
    """A short reply for text the Studio did not understand: the closest commands, a few things
    to try, and /help."""
    word, _ = _first(_STUDIO_PREFIX.sub("", text.strip(), count=1).lstrip("/"))
    word = word.split("@", 1)[0].lower()
    candidates = {name: name for name in (*_PARSERS, *_CHANNEL_COMMANDS)} | _SUGGESTION_ALIASES
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    names = list(dict.fromkeys(f"/{candidates[match]}" for match in close))
    tries = 'Try "create a bot called faq-bot", /bots, or /help for every command.'
    if not names:
        return f"Sorry, I didn't understand that. {tries}"
    return f"Sorry, I didn't understand that. Did you mean {' or '.join(names)}?\n{tries}"


# --- helpers -------------------------------------------------------------------------------------


def _first(text: str) -> tuple[str, str]:
    """The first word and the rest, verbatim (inner spacing and newlines kept)."""
    parts = text.strip().split(None, 1)
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def _tokens(text: str) -> list[str]:
    """The words of `text`, without closing punctuation or a closing "please"."""
    return _CLOSING_PLEASE.sub("", text.strip().rstrip(".?!")).split()


def _name(word: str) -> str:
    """A bot name as typed: quotes and trailing punctuation dropped, lower-cased."""
    return " ".join(word.strip(_QUOTES).rstrip(".?!:,").lower().split())


def _bot_name(word: str, bots: frozenset[str]) -> str | None:
    name = _name(word)
    return None if name in _PRONOUNS and name not in bots else name


def _near_bot(name: str, bots: frozenset[str]) -> bool:
    """`name` looks like a mistyped bot name (`fqa-bot` for `faq-bot`): where a bot is optional it
    is taken as the bot, so the engine suggests the one meant instead of messaging the last."""
    return bool(NAME_PATTERN.fullmatch(name)) and bool(
        difflib.get_close_matches(name, bots, n=1, cutoff=0.75)
    )


def _field(word: str) -> str:
    name = " ".join(word.lower().split())
    return _FIELD_ALIASES.get(name, name)


def _value(field: str, text: str) -> str:
    """The VALUE for `field`: unquoted; a one-word value also loses closing punctuation."""
    value = _unquote(text)
    return " ".join(_tokens(value)) if field in _WORD_FIELDS else value


def _unquote(text: str) -> str:
    """`text` without surrounding quotes when the whole of it is quoted."""
    text = text.strip()
    if len(text) >= 2 and _QUOTE_PAIRS.get(text[0]) == text[-1]:
        return text[1:-1]
    return text


def _quote(text: str) -> str:
    """`text` on one line, clipped, in quotes: for echoing a wrong argument in an error."""
    text = " ".join(text.split())
    return f"'{text if len(text) <= 30 else text[:29] + '…'}'"


def _one_of(values: Collection[str]) -> str:
    quoted = [f"'{value}'" for value in values]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def _error(usage: str, problem: str) -> GrammarError:
    return GrammarError(f"{problem}\nUsage: {usage}")


def _unexpected(usage: str, words: Collection[str]) -> GrammarError:
    return _error(usage, f"I didn't expect {_quote(' '.join(words))}.")


_PLACEHOLDERS = {
    "number": "N",
    "version": "vN",
    "a": "vA",
    "b": "vB",
    "to": "ENV",
    "max_input": "N",
    "monthly_usd": "$N",
    "per_user_per_minute": "N",
    "count": "N",
    "max_ms": "MS",
    "max_usd": "USD",
    "min_score": "MIN-SCORE",
    "run": "ID",
    "ids": "IDs",
    "versions": "versions",
}


def _problem(error: ErrorDetails) -> str:
    """One short line for a pydantic error, in the words of the usage line."""
    loc = str(error["loc"][0]) if error["loc"] else "value"
    name = _PLACEHOLDERS.get(loc, loc.upper())
    ctx = error.get("ctx", {})
    given = _quote(str(error.get("input", "")))
    match error["type"]:
        case "literal_error":
            return f"{name} must be {ctx['expected']}, not {given}."
        case "int_parsing":
            return f"{name} must be a number, not {given}."
        case "greater_than":
            return f"{name} must be more than {_limit(ctx['gt'])}."
        case "greater_than_equal":
            return f"{name} must be at least {_limit(ctx['ge'])}."
        case "less_than_equal":
            return f"{name} must be at most {_limit(ctx['le'])}."
        case "missing" | "string_too_short":
            return f"{name} is missing."
        case "string_too_long":
            return f"{name} is too long (at most {ctx['max_length']} characters)."
        case "too_long":
            return f"Give at most {ctx['max_length']} {name}."
        case _:
            return f"{name} is not valid."


def _limit(value: float) -> str:
    """A bound as people write it: 100, not 100.0."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _build(command: type[C], /, **fields: object) -> C:
    """`command(**fields)`, with a validation error turned into a `GrammarError`."""
    try:
        return command(**fields)
    except ValidationError as error:
        raise _error(command.usage, _problem(error.errors()[0])) from None


def _lead_bot(
    rest: str, bots: frozenset[str], is_keyword: Callable[[str], bool]
) -> tuple[str | None, str]:
    """Split an optional leading BOT off `rest`: a known bot, else a pronoun (bot None), else a
    word that is not one of the command's keywords."""
    word, tail = _first(rest)
    name = _name(word)
    if not name or name in bots:
        return (name or None), tail
    pronoun = _LEADING_PRONOUN.match(rest.strip())
    if pronoun:
        return None, rest.strip()[pronoun.end() :].strip()
    if is_keyword(name):
        return None, rest
    return name, tail


def _confirmation(text: str) -> Confirm | None:
    words = re.sub(r"[\s,.!]+", " ", text.lower().replace(_RSQ, "'")).split()
    said = " ".join(word for word in words if word != "please")
    if _YES.fullmatch(said):
        return Confirm(accept=True)
    if _NO.fullmatch(said):
        return Confirm(accept=False)
    return None


# --- natural phrasings ---------------------------------------------------------------------------

_Q = f"[{_QUOTES}]?"  # an optional quote around a name
_S = f"['{_RSQ}]s"  # a possessive 's
_BOT = rf"{_Q}(?P<bot>(?:this|that|the|my) bot|[a-z0-9][\w-]*){_Q}"
_NAME = rf"{_Q}(?P<bot>[a-z0-9][\w-]*){_Q}"
_FIELD = "(?P<field>{})".format("|".join([*_FIELDS, *_FIELD_ALIASES]).replace(".", r"\."))
# A model id: has a digit, '/' or ':', or names a known family ("make it use emojis" is not one).
_MODEL = (
    r"(?P<value>(?=[\w.:/-]*[\d/:]|offline|gpt|claude|gemini|llama|mistral|mixtral|qwen|deepseek)"
    r"[a-z][\w.:/-]*\w)"
)
_SET = "(?:set|change|update)"
_VALUE = "(?P<value>.+)"
_MESSAGE = "(?P<message>.+)"
_VERSION_NUMBER = r"(?:v|version )?(?P<version>\d+)"
_END_USER = rf"(?P<user>[^\s{_QUOTES}]*[^\s{_QUOTES}?.!,])"  # telegram:42, not its "?"
_END = r"(?:,?\s*please)?\s*[?.!]*"  # a greedy value keeps its own "." and "please"
_TEXT_GROUPS = ("value", "message", "description", "user")  # kept as typed
_ASK_FOR = (
    r"ask (?:(?:them|people|users|everyone|each person|the user|customers) )?for "
    r"(?:their |the |an? |your )?"
)
_REMEMBER = r",? and (?:remember|save|store|keep|note) (?:it|that|them)"
_AB = r"(?:a/b|a-b|ab|split)(?:-| )?test"
_DATASET = rf"{_Q}(?P<dataset>[a-z0-9][a-z0-9-]*){_Q}"
_ON_DATASET = rf"(?: (?:on|with|against|using) (?:the )?{_DATASET}(?: dataset)?)?"
_REF = r"(?:(?:v|version )?\d+|draft|staging|production)"
_REFS = rf"(?P<versions>{_REF}(?:(?:,|,? and| with| to| vs\.?| versus| against) {_REF})+)"


@dataclass(frozen=True, slots=True)
class _Phrase:
    """A pattern (spaces match any whitespace) and the command its named groups fill."""

    pattern: re.Pattern[str]
    command: type[Command]
    fixed: Mapping[str, str] = field(default_factory=dict)
    known_bot: bool = False  # only when the bot is one of the team's (when those are known)


def _phrase(
    pattern: str, command: type[Command], *, known_bot: bool = False, **fixed: str
) -> _Phrase:
    spaced = pattern.replace(" ", r"\s+")
    regex = re.compile(rf"(?:{spaced}){_END}", re.I | re.S)
    return _Phrase(regex, command, fixed, known_bot)


# First match wins, so the more specific pattern comes first. What the bare command grammar
# already reads the same way ("delete it", "test faq-bot", "promote faq-bot") is left to it.
_PHRASES = (
    _phrase(
        rf"(?:(?:create|make|build|add)(?: me)? )?(?:a |an )?(?:new )?bot (?:called|named) {_NAME}"
        r"(?:,? (?:that|which|who|to|for) (?P<description>.+))?",
        NewBot,
    ),
    _phrase(
        r"(?:list|show)(?: me)?(?: all)?(?: (?:of )?(?:my|our|the))? bots"
        r"|(?:what|which) bots (?:do|have) (?:i|we)(?: have| got)?|my bots",
        ListBots,
    ),
    _phrase(
        rf"(?:set|add|save|store|enter) (?:the |a |my |our )?(?:team )?secret "
        rf"(?:called |named )?{_Q}(?P<name>[a-z0-9][\w-]*){_Q}",
        SecretSet,
    ),
    _phrase(
        r"(?:list|show)(?: me)?(?: all)?(?: (?:of )?(?:my|our|the))?(?: team)? secrets"
        r"|(?:what|which) secrets (?:do|have) (?:i|we)(?: have| got)?",
        SecretList,
    ),
    _phrase(
        rf"(?:remove|delete|forget) (?:the )?(?:team )?secret {_Q}(?P<name>[a-z0-9][\w-]*){_Q}",
        SecretRemove,
    ),
    _phrase(rf"make {_BOT} use (?:the )?(?:model )?{_MODEL}", SetField, field="model"),
    _phrase(rf"use {_MODEL} (?:for|in|with|on) {_BOT}", SetField, field="model"),
    _phrase(rf"switch {_BOT} (?:over )?to {_MODEL}", SetField, field="model"),
    _phrase(rf"{_SET} {_BOT}{_S} {_FIELD} (?:to|as) {_VALUE}", SetField),
    _phrase(rf"{_SET} (?:the )?{_FIELD} (?:of|for) {_BOT} (?:to|as) {_VALUE}", SetField),
    _phrase(rf"{_SET} (?:the |its )?{_FIELD} (?:to|as) {_VALUE}", SetField),
    _phrase(rf"{_SET} {_BOT} {_FIELD} (?:to|as) {_VALUE}", SetField),
    _phrase(
        rf"(?:(?:start|run|begin|launch|set up|create) )?(?:an? )?{_AB} (?:(?:of|for|on|with) )?"
        rf"{_BOT} (?:v|version )?(?P<a>\d+) (?:vs\.?|versus|against|and|with|to) "
        r"(?:v|version )?(?P<b>\d+),?(?: (?:at|with|for|on|sending|giving))? "
        r"(?P<percent>\d+)(?:\s*(?:%|percent))?"
        r"(?: (?:of|to) (?:the )?(?:end users|users|traffic|people|visitors))?"
        r"(?: (?:in|on) (?P<env>staging|production))?",
        AbTestStart,
    ),
    _phrase(
        rf"how(?: is|{_S}) (?:the |my |our |its )?{_AB}(?: (?:of|for|on) {_BOT})? (?:doing|going)",
        AbTestStatus,
    ),
    _phrase(rf"how(?: is|{_S}) {_BOT}{_S} {_AB} (?:doing|going)", AbTestStatus),
    _phrase(
        rf"(?:(?:show|what is|what{_S})(?: me)? )?(?:the )?(?:status|results?) of (?:the |its )?"
        rf"{_AB}(?: (?:of|for|on) {_BOT})?",
        AbTestStatus,
    ),
    _phrase(
        rf"(?:show (?:me )?)?(?:the )?{_AB} (?:status|results?)(?: (?:of|for|on) {_BOT})?",
        AbTestStatus,
    ),
    _phrase(
        rf"(?:stop|end|cancel|abort|finish) (?:the |my |our |its )?{_AB}"
        rf"(?: (?:of|for|on) {_BOT})?",
        AbTestStop,
    ),
    _phrase(rf"(?:stop|end|cancel|abort|finish) {_BOT}{_S} {_AB}", AbTestStop),
    _phrase(
        rf"promote (?:the )?winner(?: of (?:the |its )?{_AB})?(?: (?:of|for|on) {_BOT})?",
        AbTestPromoteWinner,
    ),
    _phrase(
        rf"(?:evaluate|run an? (?:eval|evaluation) (?:of|for|on)) {_BOT}{_ON_DATASET}", EvalRun
    ),
    _phrase(rf"compare {_REFS} (?:of|for|in) {_BOT}{_ON_DATASET}", EvalRun),
    _phrase(rf"compare {_BOT}(?:{_S})? {_REFS}{_ON_DATASET}", EvalRun),
    _phrase(
        r"(?:make|create|build|collect) (?:a |the )?dataset (?:from|of|with) (?:the |its )?"
        r"(?:last|latest) (?P<count>\d+) (?:turns|conversations|messages|questions|answers)"
        rf"(?: (?:of|from|for|in|with) {_BOT})?(?: (?:called|named|as) {_DATASET})?",
        DatasetFromLast,
    ),
    _phrase(rf"promote {_BOT} (?:to|in|into) (?P<to>\w+)", Promote),
    _phrase(
        rf"roll back {_BOT}(?: (?:in|on) (?P<env>\w+))?(?: to {_VERSION_NUMBER})?",
        Rollback,
    ),
    _phrase(rf"rollback {_BOT} (?:in|on) (?P<env>\w+)(?: to {_VERSION_NUMBER})?", Rollback),
    _phrase(
        rf"(?:deploy|publish) {_BOT} (?:to|on) (?:the )?(?P<channel>\w+)"
        r"(?: (?:in|from|for) (?P<env>\w+))?",
        Deploy,
    ),
    _phrase(rf"put {_BOT} on (?:the )?(?P<channel>[a-z]+)", Deploy),
    _phrase(rf"(?:undeploy|take|remove) {_BOT} (?:off|from) (?:the )?(?P<channel>\w+)", Undeploy),
    _phrase(rf"how(?: is|{_S}) {_BOT} doing", Stats),
    _phrase(r"how are (?:my|our|the|all(?: my)?) bots doing", Stats),
    _phrase(rf"(?:show (?:me )?)?(?:the )?stats (?:for|of|on) {_BOT}", Stats),
    _phrase(
        rf"(?:(?:list|show)(?: me)?|what are) (?:the |its )?(?:scheduled messages|schedules)"
        rf"(?: (?:of|for) {_BOT})?",
        ScheduleList,
    ),
    _phrase(
        rf"(?:list|show)(?: me)? (?:the |its )?follow-?ups(?: (?:of|for) {_BOT})?", FollowUpList
    ),
    _phrase(
        rf"(?:list|show)(?: me)? (?:the |its )?stats reports(?: (?:of|for) {_BOT})?", StatsReports
    ),
    _phrase(
        rf"pause (?:the )?schedule {_Q}(?P<id>[a-z0-9][\w-]*){_Q}(?: (?:of|for|on|in) {_BOT})?",
        SchedulePause,
    ),
    _phrase(
        rf"(?:resume|unpause) (?:the )?schedule {_Q}(?P<id>[a-z0-9][\w-]*){_Q}"
        rf"(?: (?:of|for|on|in) {_BOT})?",
        ScheduleResume,
    ),
    _phrase(
        r"(?:when|if|whenever) (?:someone|somebody|anyone|people|they|a user|the user|users"
        r"|a customer|customers|a person|the person) (?:asks?|talks?|writes?|says?|mentions?"
        r"|wants?|needs?|types?)(?: about| for)? (?P<value>.+?),? (?:then )?(?:send|route|pass"
        r"|forward|hand|transfer|direct) (?:them|it|those|that|these|the message)(?: over| on)? "
        rf"to (?:the )?{_Q}(?P<step>[a-z][\w-]*){_Q}(?: step| bot)?(?: (?:in|for|on) {_BOT})?",
        Route,
        match="keyword",
    ),
    _phrase(
        rf"{_ASK_FOR}(?P<field>e-?mail(?: address)?|phone(?: number)?)(?:{_REMEMBER})?"
        rf"(?: (?:in|for|on) {_BOT})?",
        FlowAsk,
    ),
    _phrase(rf"{_ASK_FOR}(?P<field>[a-z]\w*){_REMEMBER}(?: (?:in|for|on) {_BOT})?", FlowAsk),
    _phrase(
        r"(?:(?:show|draw|display)(?: me)? |what(?: is|'s|\u2019s) )?(?:the |its )?"
        rf"(?:flow|pipeline|steps) (?:of|for|in) {_BOT}",
        FlowShow,
    ),
    _phrase(rf"(?:(?:show|draw|display)(?: me)? )?{_BOT}{_S} (?:flow|pipeline|steps)", FlowShow),
    _phrase(r"(?:show|draw|display)(?: me)? (?:the |its )?(?:flow|pipeline|steps)", FlowShow),
    _phrase(rf"show me {_BOT}", ShowBot),
    _phrase(rf"what does {_BOT} look like", ShowBot),
    _phrase(rf"describe {_BOT}", ShowBot),
    _phrase(rf"(?:show (?:me )?)?(?:the )?history (?:of|for) {_BOT}", History),
    _phrase(
        rf"what does {_BOT} (?:remember|know) about {_Q}{_END_USER}{_Q}",
        MemoryShow,
    ),
    _phrase(rf"remove {_BOT}", Delete),
    _phrase(rf"run (?:the |all )?tests(?: (?:of|for|on) {_BOT})?", TestRun),
    _phrase(rf"try {_BOT}: {_MESSAGE}", TryBot, known_bot=True),
    _phrase(rf"ask {_BOT}: {_MESSAGE}", TryBot),
    _phrase(rf"ask {_BOT} {_MESSAGE}", TryBot, known_bot=True),
    _phrase(
        r"help(?: me)?|what can you do|what can i (?:do|say|ask)|how does (?:this|it) work"
        r"|(?:what are|list|show me)(?: the)? commands|commands",
        Help,
    ),
)


def _phrased(text: str, bots: frozenset[str]) -> Command | None:
    for phrase in _PHRASES:
        match = phrase.pattern.fullmatch(text)
        if match is None:
            continue
        fields: dict[str, object] = dict(phrase.fixed)
        for key, value in match.groupdict().items():
            if value is None:
                continue
            if key == "bot":
                fields[key] = _bot_name(value, bots)
            elif key == "field":
                fields[key] = _field(value)
            elif key == "versions":
                words = value.replace(",", " ").split()
                fields[key] = [ref for word in words if (ref := _version_ref(word))]
            else:
                fields[key] = _unquote(value) if key in _TEXT_GROUPS else value.lower()
        if phrase.command is SetField:
            fields["value"] = _value(str(fields["field"]), match["value"])
        if phrase.command is FlowAsk:
            fields["field"] = _ask_field(match["field"])
        if phrase.command is Route:
            fields["step"] = _name(match["step"])
        if phrase.command is AbTestStart:
            fields["a"], fields["b"] = _ab_versions(match["a"], match["b"])
            fields["percent"] = _whole(AbTestStart, "percent", "PERCENT", match["percent"])
        if phrase.command is DatasetFromLast:
            fields["count"] = _whole(DatasetFromLast, "count", "N", match["count"])
        bot = fields.get("bot")
        known = bot is None or bot in bots or _near_bot(str(bot), bots)
        if phrase.known_bot and bots and not known:
            continue
        return _build(phrase.command, **fields)
    return None


# --- slash commands ------------------------------------------------------------------------------

_Parser = Callable[[str, frozenset[str]], Command]


def _command(text: str, bots: frozenset[str], channels: frozenset[str]) -> Command | None:
    word, rest = _first(text.lstrip("/"))
    word = word.split("@", 1)[0].lower()  # Telegram's /newbot@StudioBot
    if word in _CHANNEL_COMMANDS:
        return _channel_command(_CHANNEL_COMMANDS[word], rest, bots, channels)
    parser = _PARSERS.get(word)
    return parser(rest, bots) if parser else None


def _bare(command: type[Command]) -> _Parser:
    """A command without arguments."""

    def parse_bare(rest: str, bots: frozenset[str]) -> Command:
        if _tokens(rest):
            raise _unexpected(command.usage, _tokens(rest))
        return command()

    return parse_bare


def _one_bot(command: type[Command]) -> _Parser:
    """A command whose only argument is an optional BOT."""

    def parse_one_bot(rest: str, bots: frozenset[str]) -> Command:
        bot, tail = _lead_bot(rest, bots, lambda word: False)
        if _tokens(tail):
            raise _unexpected(command.usage, _tokens(tail))
        return _build(command, bot=bot)

    return parse_one_bot


def _newbot(rest: str, bots: frozenset[str]) -> Command:
    name, description = _first(rest)
    if not _name(name):
        raise _error(NewBot.usage, "Give the new bot a name, e.g. faq-bot.")
    return _build(NewBot, bot=_name(name), description=_unquote(description))


def _set(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda word: _field(word) in _FIELDS)
    word, value = _first(tail)
    if _field(word) not in _FIELDS:
        given = f", not {_quote(word)}" if word else ""
        raise _error(SetField.usage, f"FIELD must be {_one_of(_FIELDS)}{given}.")
    if not value:
        raise _error(SetField.usage, f"Give the new {_field(word)} after the field name.")
    return _build(SetField, bot=bot, field=_field(word), value=_value(_field(word), value))


def _try(rest: str, bots: frozenset[str]) -> Command:
    word, tail = _first(rest)
    name = _name(word)
    if name == "--new":
        return TryBot(new=True)
    # With the team's bots known, only one of them is a bot; else the grammar's BOT MESSAGE.
    is_bot = (
        name in bots or _near_bot(name, bots) or (not bots and bool(tail) and name not in _PRONOUNS)
    )
    bot, message = (name, tail) if is_bot else (None, rest.strip())
    if message.lower() == "--new":
        return _build(TryBot, bot=bot, new=True)
    if not message:
        raise _error(TryBot.usage, "Say what to send to the bot.")
    return _build(TryBot, bot=bot, message=_unquote(message))


def _test(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda word: word in _TEST_ACTIONS)
    action, args = _first(tail)
    if action.lower() == "add":
        return _test_add(bot, args)
    action, *more = _tokens(tail) or [""]
    match action.lower():
        case "" | "run":
            if more:
                raise _unexpected(TestRun.usage, more)
            return _build(TestRun, bot=bot)
        case "list":
            if more:
                raise _unexpected(TestList.usage, more)
            return _build(TestList, bot=bot)
        case "remove":
            number = " ".join(more).lstrip("#")
            if not (number.isascii() and number.isdigit()):
                given = f", not {_quote(number)}" if number else ""
                raise _error(TestRemove.usage, f"N must be a number from /test list{given}.")
            return _build(TestRemove, bot=bot, number=int(number))
        case _:
            usages = " | ".join(c.usage for c in (TestRun, TestList, TestRemove, TestAdd))
            raise _error(usages, f"I don't know the test action {_quote(action)}.")


def _knowledge(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda word: word.lower() in _KNOWLEDGE_ACTIONS)
    action, args = _first(tail)
    match action.lower():
        case "add":
            if not args.strip():
                raise _error(KnowledgeAdd.usage, "Give the text or the URL to add.")
            return _build(KnowledgeAdd, bot=bot, source=_unquote(args))
        case "" | "list":
            if args.strip():
                raise _unexpected(KnowledgeList.usage, _tokens(args))
            return _build(KnowledgeList, bot=bot)
        case "remove":
            if not args.strip():
                raise _error(KnowledgeRemove.usage, "Name the source, as /knowledge list shows it.")
            return _build(KnowledgeRemove, bot=bot, source=_unquote(args))
        case "reindex":
            if args.strip():
                raise _unexpected(KnowledgeReindex.usage, _tokens(args))
            return _build(KnowledgeReindex, bot=bot)
        case _:
            usages = " | ".join(
                c.usage for c in (KnowledgeAdd, KnowledgeList, KnowledgeRemove, KnowledgeReindex)
            )
            raise _error(usages, f"I don't know the knowledge action {_quote(action)}.")


def _test_add(bot: str | None, args: str) -> Command:
    match = _TEST_ADD.fullmatch(args.strip())
    if match is None:
        raise _error(TestAdd.usage, "Put the INPUT and the VALUE in quotes.")
    kind = match["kind"].lower()
    return _build(TestAdd, bot=bot, input=match["input"], kind=kind, value=match["value"])


def _promote(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda w: w in _ENVS or w.startswith("--") or w == "to")
    words = [word.lower() for word in _tokens(tail) if word.lower() != "to"]
    fields: dict[str, object] = {"bot": bot, "force": "--force" in words}
    words = [word for word in words if word != "--force"]
    if len(words) > 1:
        raise _unexpected(Promote.usage, words[1:])
    if words:
        fields["to"] = words[0]
    return _build(Promote, **fields)


def _rollback(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda w: w in _ENVS or bool(_VERSION.fullmatch(w)))
    words = [word for word in _tokens(tail) if word.lower() != "to"]
    fields: dict[str, object] = {"bot": bot}
    if words and not _VERSION.fullmatch(words[0]):
        fields["env"] = words.pop(0).lower()
    if words:
        fields["version"] = words.pop(0).lower().removeprefix("v")
    if words:
        raise _unexpected(Rollback.usage, words)
    return _build(Rollback, **fields)


def _channel_command(
    command: type[Deploy] | type[Undeploy],
    rest: str,
    bots: frozenset[str],
    channels: frozenset[str],
) -> Command:
    """/deploy: [BOT] CHANNEL [TARGET] [NAME=VALUE ...] [--env ENV]; /undeploy: [BOT] CHANNEL
    [--env ENV]."""
    bot, tail = _lead_bot(
        rest, bots, lambda w: w in channels or w.startswith("--") or w in ("to", "on")
    )
    words: list[str] = []
    options: dict[str, str] = {}
    fields: dict[str, object] = {"bot": bot}
    tokens = iter(_tokens(tail))
    for word in tokens:
        if word.lower() == "--env":
            fields["env"] = next(tokens, "").lower()
        elif word.lower().startswith("--env="):
            fields["env"] = word.lower().removeprefix("--env=")
        elif command is Deploy and _OPTION.fullmatch(word):
            name, _, value = word.partition("=")
            options[name.lower()] = _unquote(value)
        elif word.lower() not in ("to", "on"):
            words.append(word)
    if not words:
        which = _one_of(sorted(channels)) if channels else "the channel's name"
        raise _error(command.usage, f"Say which channel: {which}.")
    fields["channel"] = words.pop(0).lower()
    if command is Deploy:
        if words:
            fields["target"] = words.pop(0)
        if options:
            fields["options"] = options
    if words:
        raise _unexpected(command.usage, words)
    return _build(command, **fields)


_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}=\S+")
_CHANNEL_COMMANDS: dict[str, type[Deploy] | type[Undeploy]] = {
    "deploy": Deploy,
    "undeploy": Undeploy,
}


def _stats(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(
        rest, bots, lambda w: bool(_PERIOD_LIKE.fullmatch(w)) or w in _REPORT_WORDS
    )
    words = _tokens(tail)
    if words and words[0].lower() in _REPORT_WORDS:
        return _stats_report(bot, words)
    if len(words) > 1:
        raise _unexpected(Stats.usage, words[1:])
    period = {"period": words[0].lower()} if words else {}
    return _build(Stats, bot=bot, **period)


_EXPORT_FORMATS = ("csv", "json")


def _export(rest: str, bots: frozenset[str]) -> Command:
    """/export [BOT] [csv|json] [24h|7d|30d]: the two words in either order; a word that is
    not a period (as /stats takes them) is the format."""
    bot, tail = _lead_bot(
        rest, bots, lambda w: w in _EXPORT_FORMATS or bool(_PERIOD_LIKE.fullmatch(w))
    )
    fields: dict[str, object] = {"bot": bot}
    for word in _tokens(tail):
        field = "period" if _PERIOD_LIKE.fullmatch(word) else "format"
        if field in fields:
            raise _unexpected(ExportConversations.usage, [word])
        fields[field] = word.lower()
    return _build(ExportConversations, **fields)


def _diff(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda w: bool(_VERSION_REF.fullmatch(w)))
    words = _tokens(tail)
    if len(words) > 2:
        raise _unexpected(Diff.usage, words[2:])
    refs = [_version_ref(word) for word in words]
    for word, ref in zip(words, refs, strict=True):
        if ref is None:
            raise _error(
                Diff.usage, f"vA and vB are v3, draft, staging or production; not {_quote(word)}."
            )
    return _build(Diff, bot=bot, **dict(zip(("a", "b"), refs, strict=False)))


def _version_ref(word: str) -> str | None:
    """A version as typed (3, V3, draft, Staging) the way commands take it (v3, draft), or None
    when `word` is not one."""
    if not _VERSION_REF.fullmatch(word):
        return None
    lowered = word.lower()
    return lowered if lowered.isalpha() else f"v{int(lowered.removeprefix('v'))}"


def _memory(rest: str, bots: frozenset[str]) -> Command:
    """/memory [BOT] USER [set KEY VALUE | forget]: USER is required, so a first word followed
    by something other than an action is the bot."""
    usages = " | ".join(c.usage for c in (MemoryShow, MemorySet, MemoryForget))
    first, tail = _first(rest)
    second, after = _first(tail)
    if _name(first) in bots or (second and second.lower() not in _MEMORY_ACTIONS):
        bot, user, tail = _bot_name(first, bots), _unquote(second), after
    else:
        bot, user = None, _unquote(first)
    if not user or user.lower() in _MEMORY_ACTIONS:
        raise _error(usages, "Name the end user: CHANNEL:ID (e.g. telegram:12345) or ID.")
    action, args = _first(tail)
    match action.lower():
        case "":
            return _build(MemoryShow, bot=bot, user=user)
        case "set":
            key, value = _first(args)
            if not value.strip():
                raise _error(MemorySet.usage, "Give the KEY and the VALUE to remember.")
            return _build(MemorySet, bot=bot, user=user, key=key, value=value.strip())
        case "forget":
            if _tokens(args):
                raise _unexpected(MemoryForget.usage, _tokens(args))
            return _build(MemoryForget, bot=bot, user=user)
        case _:
            raise _error(usages, f"I don't know the memory action {_quote(action)}.")


def _role(rest: str, bots: frozenset[str]) -> Command:
    words = [word for word in _tokens(rest) if word.lower() not in ("to", "as")]
    if len(words) != 2:
        raise _error(SetRole.usage, "Name the member, then the role.")
    return _build(SetRole, user=words[0], role=words[1].lower())


def _join(rest: str, bots: frozenset[str]) -> Command:
    words = _tokens(rest)
    if len(words) != 1:
        raise _error(Join.usage, "Give the code from /invite, and nothing else.")
    return _build(Join, code=words[0])


_SECRET_ACTIONS: dict[str, type[SecretSet | SecretRemove]] = {
    "set": SecretSet,
    "remove": SecretRemove,
    "delete": SecretRemove,
}
_SECRET_USAGES = " | ".join(c.usage for c in (SecretSet, SecretList, SecretRemove))


def _secret(rest: str, bots: frozenset[str]) -> Command:
    """`/secret set NAME | list | remove NAME`. Nothing typed after the command is echoed: a
    value typed by mistake must not come back in the answer."""
    action, *words = rest.split()[:3] or [""]
    action = action.lower()
    if action in ("", "list"):
        if words:
            raise _error(SecretList.usage, "/secret list takes nothing more.")
        return SecretList()
    command = _SECRET_ACTIONS.get(action)
    if command is None:
        raise _error(_SECRET_USAGES, "I know these secret actions only:")
    if not words:
        raise _error(command.usage, "Name the secret, e.g. acme-crm.")
    if len(words) > 1:
        if command is SecretSet:
            raise GrammarError(
                "Never type a secret's value in a chat: /secret set NAME alone, and I ask for "
                "the value privately. Nothing was saved; if that was a real value, replace it "
                "where it was issued."
            )
        raise _error(command.usage, "Give only the secret's name.")
    problem = name_problem(words[0])
    if problem:
        raise _error(command.usage, f"{problem[0].upper()}{problem[1:]}.")
    return command(name=words[0])


_GUARD_SWITCHES = ("pii", "moderation")
_GUARD_TERMS = ("block", "unblock")
_GUARD_LIMIT = "max-input"
_GUARD_WORDS = (*_GUARD_SWITCHES, *_GUARD_TERMS, _GUARD_LIMIT)
_ON_OFF = {"on": True, "off": False}
_MONTHLY = re.compile(
    r"\$?\s*(?P<amount>\d+(?:\.\d+)?)\s*(?:\$|usd|dollars?)?\s*"
    r"(?:(?:per|a|an|/|each)\s*month|monthly)",
    re.I,
)
_PER_MINUTE = re.compile(
    r"(?P<count>\d+)\s*(?:messages?\s*)?(?:per|a|an|/|each)\s*min(?:ute)?"
    r"(?:\s*(?:per|a|an|/|each|for each)\s*(?:end\s*)?user)?",
    re.I,
)


def _guard(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda word: word in _GUARD_WORDS)
    setting, value = _first(tail)
    setting = setting.lower()
    if not setting:
        return _build(GuardShow, bot=bot)
    if setting in _GUARD_SWITCHES:
        words = [word.lower() for word in _tokens(value)]
        if len(words) != 1 or words[0] not in _ON_OFF:
            raise _error(GuardSet.usage, f"Say {setting} on or {setting} off.")
        return _build(GuardSet, bot=bot, **{setting: _ON_OFF[words[0]]})
    if setting in _GUARD_TERMS:
        term = " ".join(_unquote(value).split())
        if not term:
            raise _error(GuardSet.usage, f'Give the term to {setting} in quotes, e.g. "password".')
        return _build(GuardSet, bot=bot, **{setting: term})
    if setting == _GUARD_LIMIT:
        number = " ".join(_tokens(value))
        if not (number.isascii() and number.isdigit()):
            given = f", not {_quote(number)}" if number else ""
            raise _error(GuardSet.usage, f"N must be a number of characters{given}.")
        return _build(GuardSet, bot=bot, max_input=int(number))
    known = _one_of(_GUARD_WORDS)
    raise _error(GuardSet.usage, f"I don't know the guardrail {_quote(setting)}; use {known}.")


def _budget(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(
        rest, bots, lambda word: word == "off" or word[:1] == "$" or word[:1].isdigit()
    )
    said = " ".join(_tokens(tail))
    if not said:
        return _build(BudgetShow, bot=bot)
    if said.lower() == "off":
        return _build(BudgetSet, bot=bot, off=True)
    if monthly := _MONTHLY.fullmatch(said):
        return _build(BudgetSet, bot=bot, monthly_usd=float(monthly["amount"]))
    if per_minute := _PER_MINUTE.fullmatch(said):
        return _build(BudgetSet, bot=bot, per_user_per_minute=int(per_minute["count"]))
    raise _error(BudgetSet.usage, f"I didn't understand {_quote(said)} as a budget.")


_HANDOFF_WORDS = ("to", "timeout", "tool", "off")
_MINUTE_WORDS = ("m", "min", "mins", "minute", "minutes")
_MINUTES = re.compile(r"(?P<count>\d{1,6})\s*(?:m|min|mins|minutes?)?", re.I)


def _handoff(rest: str, bots: frozenset[str]) -> Command:
    """`/handoff BOT [to TARGET] [timeout N] [tool on|off]`, `/handoff BOT off`."""
    bot, tail = _lead_bot(rest, bots, lambda word: word in _HANDOFF_WORDS)
    words = _tokens(tail)
    if not words:
        return _build(HandoffShow, bot=bot)
    if [word.lower() for word in words] == ["off"]:
        return _build(HandoffSet, bot=bot, off=True)
    fields: dict[str, object] = {"bot": bot}
    while words:
        word = words.pop(0).lower()
        if word == "to" and words and words[0].lower() not in _HANDOFF_WORDS:
            fields["target"] = words.pop(0)
        elif word == "timeout" and words and (minutes := _MINUTES.fullmatch(words[0])):
            words.pop(0)
            if words and words[0].lower() in _MINUTE_WORDS:
                words.pop(0)
            fields["timeout_minutes"] = int(minutes["count"])
        elif word == "tool" and words and words[0].lower() in _ON_OFF:
            fields["by_model"] = _ON_OFF[words.pop(0).lower()]
        else:
            hints = {
                "to": "Say where: to #CHANNEL, or to here in a Telegram group.",
                "timeout": "Say timeout N, N in minutes.",
                "tool": "Say tool on or tool off.",
            }
            raise _error(HandoffSet.usage, hints.get(word, f"I didn't expect {_quote(word)}."))
    return _build(HandoffSet, **fields)


def _resume(rest: str, bots: frozenset[str]) -> Command:
    """`/resume` that reaches the Studio was said outside a handoff's thread."""
    return Resume()


def _help(rest: str, bots: frozenset[str]) -> Command:
    topic = " ".join(_tokens(rest)).lower().lstrip("/")
    if not topic:
        return Help()
    if " " not in topic or topic in {c.name for c in COMMANDS}:
        return _build(Help, command=topic)
    return Help()  # "help me with this": the overview


# -- flows ------------------------------------------------------------------------------------

_FLOW_ACTIONS = ("add", "set", "link", "remove", "ask")
_PARAM_KEY = re.compile(r"[a-z_][a-z0-9_]{0,39}", re.I)
_INT = re.compile(r"[+-]?\d{1,15}")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)")
_ASK_FIELDS = {"e-mail": "email", "email address": "email", "phone number": "phone"}
_ROUTE_TAIL = re.compile(
    rf"\s*to\s+{_Q}(?P<step>[^\s{_QUOTES}]+){_Q}(?:\s+in\s+(?P<router>\S+?))?{_END}", re.I
)
_ROUTE_REGEX = re.compile(r"/(?P<value>.+)/(?P<tail>\s+to\s+.*)", re.S)
_ROUTE_BARE = re.compile(r"(?P<value>.+?)(?P<tail>\s+to\s+\S+(?:\s+in\s+\S+)?\s*)", re.I | re.S)


def _ask_field(text: str) -> str:
    field = " ".join(text.lower().split())
    return _ASK_FIELDS.get(field, field)


def _enclosed(text: str, start: int) -> int:
    """The index just past the quoted part or the bracketed JSON opening at `start`."""
    opener = text[start]
    if opener in _QUOTE_PAIRS:
        closer = _QUOTE_PAIRS[opener]
        at = start + 1
        while True:
            at = text.find(closer, at)
            if at < 0:
                raise GrammarError(f"A quote opened at {_quote(text[start:])} is not closed.")
            if text[at - 1] != "\\":
                return at + 1
            at += 1
    depth, at, in_string = 0, start, False
    while at < len(text):
        char = text[at]
        if in_string:
            in_string = not (char == '"' and text[at - 1] != "\\")
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return at + 1
        at += 1
    raise GrammarError(f"A bracket opened at {_quote(text[start:])} is not closed.")


def _words(text: str) -> list[str]:
    """`text` split at whitespace; a quoted part or bracketed JSON at the start of a word or
    right after its `=` stays whole (`text="Hi there"`, `routes=[{"keyword": "a", ...}]`)."""
    words: list[str] = []
    current = ""
    at = 0
    while at < len(text):
        char = text[at]
        if char.isspace():
            if current:
                words.append(current)
            current, at = "", at + 1
        elif (not current or current.endswith("=")) and (char in _QUOTE_PAIRS or char in "[{"):
            end = _enclosed(text, at)
            current, at = current + text[at:end], end
        else:
            current, at = current + char, at + 1
    if current:
        words.append(current)
    return words


def _param_value(raw: str) -> ParamValue:
    """A typed value: quoted text as it is, JSON in brackets, true/false, numbers, else text;
    nothing at all (`key=`) is None (the key is removed)."""
    if not raw:
        return None
    if len(raw) >= 2 and _QUOTE_PAIRS.get(raw[0]) == raw[-1]:
        inner = raw[1:-1]
        return inner.replace('\\"', '"') if raw[0] == '"' else inner
    if raw[0] in "[{":
        try:
            value: ParamValue = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            if raw[0] == "{" or raw[-1] != "]":
                raise GrammarError(f"{_quote(raw)} is not valid JSON.") from None
            return [_param_value(item.strip()) for item in raw[1:-1].split(",") if item.strip()]
        return value
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def _step_words(usage: str, text: str) -> tuple[list[str], dict[str, ParamValue]]:
    """The plain words (lower-cased names) and the `key=value` settings of a /flow line."""
    plain: list[str] = []
    params: dict[str, ParamValue] = {}
    try:
        words = _words(text)
    except GrammarError as exc:
        raise _error(usage, exc.message) from None
    for word in words:
        key, equals, raw = word.partition("=")
        if equals and _PARAM_KEY.fullmatch(key):
            try:
                params[key.lower()] = _param_value(raw)
            except GrammarError as exc:
                raise _error(usage, exc.message) from None
        elif equals:
            raise _error(usage, f"{_quote(key)} is not a setting name (letters, digits and _).")
        else:
            plain.append(_name(word))
    return plain, params


def _flow(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda word: word in _FLOW_ACTIONS)
    action, args = _first(tail)
    match action.lower():
        case "":
            return _build(FlowShow, bot=bot)
        case "add":
            return _flow_add(bot, args)
        case "set":
            words, params = _step_words(FlowSet.usage, args)
            if len(words) > 1 and params:
                raise _stray(FlowSet.usage, words[1:], params)
            if len(words) != 1:
                raise _error(FlowSet.usage, "Name one step, then its key=value settings.")
            if not params:
                raise _error(FlowSet.usage, "Give key=value settings after the step's id.")
            return _build(FlowSet, bot=bot, id=words[0], params=params)
        case "link":
            words = [w for w in (_name(word) for word in _tokens(args)) if w != "to"]
            if len(words) != 2:
                raise _error(FlowLink.usage, "Name the step, then the step it goes on to.")
            return _build(FlowLink, bot=bot, id=words[0], next=words[1])
        case "remove":
            words = [_name(word) for word in _tokens(args)]
            if len(words) != 1:
                raise _error(FlowRemove.usage, "Name the one step to remove.")
            return _build(FlowRemove, bot=bot, id=words[0])
        case "ask":
            return _flow_ask(bot, args)
        case _:
            usages = " | ".join(
                c.usage for c in (FlowShow, FlowAdd, FlowSet, FlowLink, FlowRemove, FlowAsk)
            )
            raise _error(usages, f"I don't know the flow action {_quote(action)}.")


# -- tools ----------------------------------------------------------------------------------

_TOOL_ACTIONS = ("add", "add-mcp", "list", "remove")
_TOOL_FLAGS = ("--auth", "--name")


def _tool(rest: str, bots: frozenset[str]) -> Command:
    bot, tail = _lead_bot(rest, bots, lambda word: word in _TOOL_ACTIONS)
    action, args = _first(tail)
    words = _tokens(args)
    match action.lower():
        case "" | "list":
            if words:
                raise _unexpected(ToolList.usage, words)
            return _build(ToolList, bot=bot)
        case "remove":
            if len(words) != 1:
                raise _error(ToolRemove.usage, "Name the one tool to remove (see /tool BOT list).")
            return _build(ToolRemove, bot=bot, tool_name=_name(words[0]))
        case "add" | "add-mcp" as adding:
            command: type[ToolAdd | ToolAddMcp] = ToolAdd if adding == "add" else ToolAddMcp
            return _tool_add(command, bot, words)
        case _:
            usages = " | ".join(c.usage for c in (ToolAdd, ToolAddMcp, ToolList, ToolRemove))
            raise _error(usages, f"I don't know the tool action {_quote(action)}.")


def _tool_add(command: type[ToolAdd | ToolAddMcp], bot: str | None, words: list[str]) -> Command:
    if not words:
        what = "its OpenAPI document" if command is ToolAdd else "its MCP endpoint"
        raise _error(command.usage, f"Give the URL of {what}.")
    url, *rest = words
    fields: dict[str, object] = {}
    wanted: list[str] = []
    at = 0
    while at < len(rest):
        word = rest[at]
        if word.lower() in _TOOL_FLAGS:
            if at + 1 >= len(rest):
                raise _error(command.usage, f"Give a value after {word}.")
            key = "auth" if word.lower() == "--auth" else "tool_name"
            fields[key] = _name(rest[at + 1])
            at += 2
            continue
        if word.lower() == "--allow-changes":
            fields["allow_changes"] = True
        elif word.startswith("--"):
            raise _error(command.usage, f"I don't know the option {_quote(word)}.")
        else:
            wanted.append(word.strip(_QUOTES).rstrip(","))
        at += 1
    return _build(command, bot=bot, url=_unquote(url).strip("<>"), operations=wanted, **fields)


def _stray(usage: str, words: list[str], params: dict[str, ParamValue]) -> GrammarError:
    """Words left over on a /flow line: with settings given, most likely an unquoted value."""
    if not params:
        return _unexpected(usage, words)
    return _error(
        usage,
        f"I didn't expect {_quote(' '.join(words))}: put a value with spaces in quotes "
        '(text="Thanks for asking").',
    )


def _flow_add(bot: str | None, args: str) -> Command:
    words, params = _step_words(FlowAdd.usage, args)
    after = None
    if len(words) >= 2 and words[-2] == "after":
        after, words = words[-1], words[:-2]
    if len(words) < 2:
        raise _error(FlowAdd.usage, "Give the kind of step, then its id (e.g. template thanks).")
    if len(words) > 2:
        raise _stray(FlowAdd.usage, words[2:], params)
    return _build(FlowAdd, bot=bot, kind=words[0], id=words[1], params=params, after=after)


def _flow_ask(bot: str | None, args: str) -> Command:
    try:
        words = _words(args)
    except GrammarError as exc:
        raise _error(FlowAsk.usage, exc.message) from None
    if not words:
        raise _error(FlowAsk.usage, "Name what to ask for, e.g. email.")
    two = _ask_field(" ".join(words[:2]))
    taken = 2 if two in _ASK_FIELDS.values() and len(words) > 1 else 1
    field = two if taken == 2 else _ask_field(words[0])
    question = _unquote(" ".join(words[taken:])) or None
    return _build(FlowAsk, bot=bot, field=field, question=question)


def _route(rest: str, bots: frozenset[str]) -> Command:
    text = rest.strip()
    word, tail = _first(text)
    bot: str | None = None
    if word and not _opens_condition(text):
        name = _name(word)
        pronoun = _LEADING_PRONOUN.match(text)
        if pronoun and name not in bots:
            text = text[pronoun.end() :].strip()
        elif (
            name in bots
            or _opens_condition(tail)
            or (not bots and not _ROUTE_TAIL.fullmatch(" " + tail))
        ):
            bot, text = name, tail.strip()
    match, value, after = _route_condition(text)
    found = _ROUTE_TAIL.fullmatch(after)
    if not value.strip():
        raise _error(Route.usage, 'Say what to match: "KEYWORD", /REGEX/ or intent "DESCRIPTION".')
    if found is None:
        raise _error(Route.usage, "Say where the messages go: to STEP (or to another bot).")
    router = _name(found["router"]) if found["router"] else None
    return _build(
        Route, bot=bot, match=match, value=value, step=_name(found["step"]), router=router
    )


def _opens_condition(text: str) -> bool:
    """`text` starts with a route's condition: a quote, a /regex/ or the word intent."""
    return text[:1] in _QUOTES or text.startswith("/") or _first(text)[0].lower() == "intent"


def _route_condition(text: str) -> tuple[str, str, str]:
    """(keyword|regex|intent, what to match, the rest: `to STEP ...`)."""
    match = "keyword"
    word, tail = _first(text)
    if word.lower() == "intent":
        match, text = "intent", tail
    if text[:1] in _QUOTE_PAIRS:
        try:
            end = _enclosed(text, 0)
        except GrammarError as exc:
            raise _error(Route.usage, exc.message) from None
        return match, text[1 : end - 1], text[end:]
    if text.startswith("/") and match == "keyword":
        regex = _ROUTE_REGEX.fullmatch(text)
        if regex is None:
            raise _error(Route.usage, "Close the regular expression with / before `to STEP`.")
        return "regex", regex["value"], regex["tail"]
    bare = _ROUTE_BARE.fullmatch(text)
    if bare is None:
        return match, text, ""
    return match, bare["value"], bare["tail"]


# -- schedules, follow-ups, stats reports ------------------------------------------------------

_SCHEDULE_ACTIONS: dict[str, type[SchedulePause | ScheduleResume | ScheduleRemove]] = {
    "pause": SchedulePause,
    "resume": ScheduleResume,
    "remove": ScheduleRemove,
    "delete": ScheduleRemove,
}
_SCHEDULE_USAGES = " | ".join(
    c.usage for c in (ScheduleAdd, ScheduleList, SchedulePause, ScheduleResume, ScheduleRemove)
)
_FOLLOWUP_USAGES = " | ".join(c.usage for c in (FollowUpAdd, FollowUpList, FollowUpRemove))
_REPORT_USAGES = " | ".join(c.usage for c in (StatsReportAdd, StatsReports, StatsReportRemove))
_DURATION_PART = re.compile(
    r"(?P<count>\d{1,6})\s*(?P<unit>minutes?|mins?|m|hours?|hrs?|h|days?|d)\s*", re.I
)
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}
_REPORT_WORDS = ("daily", "weekly", "report", "reports")
_CLOCK = re.compile(r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<half>am|pm)?", re.I)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _quoted_word(word: str) -> str | None:
    """The inside of a word that is quoted whole (as `_words` keeps it), else None."""
    if len(word) >= 2 and _QUOTE_PAIRS.get(word[0]) == word[-1]:
        return word[1:-1].replace('\\"', '"') if word[0] == '"' else word[1:-1]
    return None


def _split_words(usage: str, text: str) -> list[str]:
    try:
        return _words(text)
    except GrammarError as exc:
        raise _error(usage, exc.message) from None


def _flag(
    usage: str, words: list[str], flag: str, what: str, example: str
) -> tuple[list[str], str | None]:
    """`words` without a `--FLAG VALUE` (or `--FLAG=VALUE`), and the value; any other option is
    refused. `what` and `example` say what the value is when it is missing."""
    kept: list[str] = []
    value: str | None = None
    at = 0
    while at < len(words):
        word = words[at]
        if word.lower() == f"--{flag}":
            if at + 1 >= len(words):
                raise _error(usage, f"Give {what} after --{flag}, e.g. --{flag} {example}.")
            value, at = words[at + 1], at + 2
            continue
        if word.lower().startswith(f"--{flag}="):
            value = word[len(flag) + 3 :]
        elif word.startswith("--"):
            raise _error(usage, f"I don't know the option {_quote(word)}.")
        else:
            kept.append(word)
        at += 1
    return kept, value


def _flag_tz(usage: str, words: list[str]) -> tuple[list[str], str | None]:
    """`words` without a `--tz ZONE` (or `--tz=ZONE`), and the zone."""
    return _flag(usage, words, "tz", "a time zone", "Europe/Lisbon")


def _schedule(rest: str, bots: frozenset[str]) -> Command:
    """`/schedule BOT "CRON" "MESSAGE" [to TARGET] [--tz ZONE]`, `/schedule BOT list`,
    `pause ID`, `resume ID`, `remove ID`."""
    text = rest.strip()
    if text[:1] in _QUOTES:
        bot: str | None = None
    else:
        bot, text = _lead_bot(text, bots, lambda w: w in _SCHEDULE_ACTIONS or w == "list")
    action, args = _first(text)
    command = _SCHEDULE_ACTIONS.get(action.lower())
    if command is not None:
        words = _tokens(args)
        if len(words) != 1:
            raise _error(command.usage, "Name the one schedule (its id, from /schedule BOT list).")
        return _build(command, bot=bot, id=_name(words[0]))
    if action.lower() in ("", "list"):
        if _tokens(args):
            raise _unexpected(ScheduleList.usage, _tokens(args))
        return _build(ScheduleList, bot=bot)
    words, zone = _flag_tz(ScheduleAdd.usage, _split_words(ScheduleAdd.usage, text))
    quoted = [_quoted_word(word) for word in words[:2]]
    if len(words) < 2 or quoted[0] is None or quoted[1] is None:
        if action[:1] not in (*_QUOTES, "*") and not action[:1].isdigit():
            raise _error(_SCHEDULE_USAGES, f"I don't know the schedule action {_quote(action)}.")
        raise _error(
            ScheduleAdd.usage,
            'Put the CRON and the MESSAGE in quotes: "0 9 * * MON-FRI" "Good morning!"',
        )
    fields: dict[str, object] = {"bot": bot, "cron": quoted[0], "message": quoted[1], "tz": zone}
    tail = words[2:]
    if tail and tail[0].lower() == "to":
        if len(tail) < 2:
            raise _error(ScheduleAdd.usage, "Say where after to: #channel, here, a chat id.")
        fields["to"] = _unquote(tail[1])
        tail = tail[2:]
    if tail:
        raise _unexpected(ScheduleAdd.usage, tail)
    return _build(ScheduleAdd, **fields)


def _minutes(text: str, usage: str) -> int:
    """A DURATION (30m, 2h, 1d, 1h30m, 90 minutes) in minutes, from 1 minute to 30 days:
    what `presenters.duration` shows reads back."""
    said = text.strip()
    minutes, at = 0, 0
    while at < len(said) and (part := _DURATION_PART.match(said, at)):
        minutes += int(part["count"]) * _UNIT_MINUTES[part["unit"][0].lower()]
        at = part.end()
    if not said or at < len(said):
        raise _error(
            usage, f"DURATION is a number with m, h or d (30m, 2h, 1h30m), not {_quote(text)}."
        )
    if not 1 <= minutes <= MAX_FOLLOWUP_MINUTES:
        raise _error(usage, "DURATION must be from 1 minute to 30 days.")
    return minutes


def _followup(rest: str, bots: frozenset[str]) -> Command:
    """`/followup BOT after DURATION "MESSAGE" [times N]`, `list`, `remove ID`."""
    bot, text = _lead_bot(rest, bots, lambda w: w in ("after", "list", "remove", "delete"))
    action, args = _first(text)
    match action.lower():
        case "" | "list":
            if _tokens(args):
                raise _unexpected(FollowUpList.usage, _tokens(args))
            return _build(FollowUpList, bot=bot)
        case "remove" | "delete":
            words = _tokens(args)
            if len(words) != 1:
                raise _error(FollowUpRemove.usage, "Name the one follow-up (its id).")
            return _build(FollowUpRemove, bot=bot, id=_name(words[0]))
        case "after":
            return _followup_add(bot, args)
        case _:
            raise _error(_FOLLOWUP_USAGES, f"I don't know the follow-up action {_quote(action)}.")


def _followup_add(bot: str | None, args: str) -> Command:
    usage = FollowUpAdd.usage
    words = _split_words(usage, args)
    quoted = next((at for at, word in enumerate(words) if _quoted_word(word) is not None), None)
    if quoted is None or quoted == 0:
        raise _error(
            usage, 'Give the DURATION, then the MESSAGE in quotes: after 30m "Still there?"'
        )
    minutes = _minutes(" ".join(words[:quoted]), usage)
    fields: dict[str, object] = {
        "bot": bot,
        "after_minutes": minutes,
        "message": _quoted_word(words[quoted]),
    }
    tail = [word.lower() for word in words[quoted + 1 :]]
    if tail and tail[0] == "times" and len(tail) == 2:
        fields["times"] = tail[1]
    elif len(tail) == 2 and tail[1] == "times":  # "2 times"
        fields["times"] = tail[0]
    elif tail:
        raise _unexpected(usage, tail)
    return _build(FollowUpAdd, **fields)


def _stats_report(bot: str | None, words: list[str]) -> Command:
    """`/stats BOT daily|weekly [on DAY] at HH:MM [in PLACE] [--tz ZONE]`, `reports`,
    `reports remove ID`."""
    first = words[0].lower()
    if first in ("report", "reports"):
        rest = [word.lower() for word in words[1:]]
        if not rest:
            return _build(StatsReports, bot=bot)
        if rest[0] in ("remove", "delete", "stop") and len(rest) == 2:
            number = rest[1].lstrip("#")
            if not (number.isascii() and number.isdigit()):
                raise _error(StatsReportRemove.usage, "ID is the number /stats BOT reports shows.")
            return _build(StatsReportRemove, bot=bot, id=int(number))
        raise _error(_REPORT_USAGES, f"I didn't expect {_quote(' '.join(rest))}.")
    usage = StatsReportAdd.usage
    rest, zone = _flag_tz(usage, words[1:])
    fields: dict[str, object] = {"bot": bot, "every": first, "tz": zone}
    while rest:
        word = rest.pop(0).lower()
        if word == "on" and rest and first == "weekly":
            fields["day"] = _weekday(rest.pop(0), usage)
        elif word == "at" and rest:
            fields["at"] = _clock(rest, usage)
        elif word == "in" and rest:
            fields["place"] = rest.pop(0)
        elif word == "here":
            fields["place"] = word
        else:
            raise _unexpected(usage, [word, *rest])
    if "at" not in fields:
        raise _error(usage, "Say when: at 9:00 (24-hour clock, or 9am).")
    return _build(StatsReportAdd, **fields)


def _weekday(word: str, usage: str) -> str:
    name = word.lower().rstrip("s,")
    found = [day for day in _WEEKDAYS if len(name) >= 3 and day.startswith(name)]
    if len(found) != 1:
        raise _error(usage, f"DAY is a day of the week (monday … sunday), not {_quote(word)}.")
    return found[0]


def _clock(words: list[str], usage: str) -> str:
    """HH:MM from `9:00`, `9`, `9am`, `9 pm` (taken off the front of `words`)."""
    text = words.pop(0)
    if words and words[0].lower() in ("am", "pm"):
        text += words.pop(0)
    found = _CLOCK.fullmatch(text)
    hour = int(found["hour"]) if found else 99
    minute = int(found["minute"] or 0) if found else 99
    if found and found["half"]:
        hour = hour % 12 + (12 if found["half"].lower() == "pm" else 0) if hour <= 12 else 99
    if hour > 23 or minute > 59:
        raise _error(usage, f"Say the time as HH:MM (9:00, 17:30) or 9am, not {_quote(text)}.")
    return f"{hour:02d}:{minute:02d}"


# -- evaluation: datasets, evaluation runs, review, live A/B ---------------------------------

_DATASET_ACTIONS = (
    "from-last",
    "from-tests",
    "from",
    "add",
    "list",
    "show",
    "expect",
    "evaluate",
    "remove",
    "delete",
)
_EXPECT_KINDS: tuple[str, ...] = get_args(DatasetKind)
_INTO = ("as", "to", "into")  # before the NAME a dataset is made under
_LATENCY = re.compile(
    r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>ms|milliseconds?|s|secs?|seconds?)?", re.I
)
_USD = re.compile(r"\$?\s*(?P<amount>\d*\.?\d+)\s*(?:\$|usd|dollars?)?", re.I)
_PERCENT = re.compile(r"(?P<amount>\d*\.?\d+)\s*%?")
_EVAL_ACTIONS = ("runs", "show", "gate", "online")
_ABTEST_ACTIONS: dict[str, type[AbTestStatus | AbTestStop | AbTestPromoteWinner]] = {
    "status": AbTestStatus,
    "stop": AbTestStop,
    "promote-winner": AbTestPromoteWinner,
    "promote winner": AbTestPromoteWinner,
}
_ENV_OPTION = " [--env staging|production]"
_ABTEST_USAGES = (  # /abtest BOT vA vB PERCENT [--env …] | /abtest BOT status|stop|… [--env …]
    f"{AbTestStart.usage} | /abtest BOT "
    + "|".join(
        c.usage.removeprefix("/abtest BOT ").removesuffix(_ENV_OPTION)
        for c in (AbTestStatus, AbTestStop, AbTestPromoteWinner)
    )
    + _ENV_OPTION
)


def _dataset_name(word: str, usage: str, label: str = "NAME") -> str:
    """A dataset's name as typed: quotes and closing punctuation dropped, lower-cased, checked."""
    name = _name(word)
    if not re.fullmatch(DATASET_NAME, name):
        raise _error(
            usage,
            f"{label} is 1-40 of a-z, 0-9 and '-' (starting with a letter or digit), "
            f"not {_quote(word)}.",
        )
    return name


def _whole(command: type[Command], field: str, label: str, word: str) -> int:
    """`word` as a whole number within the bounds `command` sets for `field`."""
    bounds = command.model_fields[field].metadata
    low = next(cast(int, bound.ge) for bound in bounds if isinstance(bound, Ge))
    high = next(cast(int, bound.le) for bound in bounds if isinstance(bound, Le))
    if not (word.isascii() and word.isdigit() and low <= int(word) <= high):
        raise _error(command.usage, f"{label} must be from {low} to {high}, not {_quote(word)}.")
    return int(word)


def _merge_percent_signs(words: list[str]) -> list[str]:
    """`80 %` as one word, `80%`."""
    merged: list[str] = []
    for word in words:
        if word == "%" and merged:
            merged[-1] += word
        else:
            merged.append(word)
    return merged


def _dataset(rest: str, bots: frozenset[str]) -> Command:
    """`/dataset BOT from-last N [as NAME]`, `from-tests [as NAME]`, `add "INPUT" expect KIND
    "VALUE" [to NAME]`, `list`, `show NAME`, `expect NAME ROW "VALUE" [KIND]`, `evaluate NAME
    ...`, `remove NAME`."""
    bot, tail = _lead_bot(rest, bots, lambda word: word in _DATASET_ACTIONS)
    action, args = _first(tail)
    action = action.lower()
    if action == "from":  # from last 50, from tests
        source, args = _first(args)
        action = f"from-{source.lower()}"
    match action:
        case "" | "list":
            if _tokens(args):
                raise _unexpected(DatasetList.usage, _tokens(args))
            return _build(DatasetList, bot=bot)
        case "from-last":
            words = _tokens(args)
            if not words:
                raise _error(DatasetFromLast.usage, "Say how many recent turns: from-last 50.")
            count = _whole(DatasetFromLast, "count", "N", words[0])
            name = _into(DatasetFromLast.usage, words[1:])
            return _build(DatasetFromLast, bot=bot, count=count, dataset=name)
        case "from-tests":
            name = _into(DatasetFromTests.usage, _tokens(args))
            return _build(DatasetFromTests, bot=bot, dataset=name)
        case "add":
            return _dataset_add(bot, args)
        case "show" | "remove" | "delete":
            command = DatasetShow if action == "show" else DatasetRemove
            words = _tokens(args)
            if len(words) != 1:
                raise _error(command.usage, "Name the one dataset (see /dataset BOT list).")
            return _build(command, bot=bot, dataset=_dataset_name(words[0], command.usage))
        case "expect":
            return _dataset_expect(bot, args)
        case "evaluate":
            return _dataset_evaluate(bot, args)
        case _:
            # all the usages would make a long reply: the actions, and where they are explained
            known = _one_of([c.name.split()[1] for c in DATASET_COMMANDS])
            raise GrammarError(
                f"I don't know the dataset action {_quote(action)}; the actions are {known} "
                "(/help dataset explains each)."
            )


def _into(usage: str, words: list[str]) -> str | None:
    """The NAME of `[as NAME]` at the end of a /dataset line, if given."""
    if not words:
        return None
    if len(words) == 2 and words[0].lower() in _INTO:
        return _dataset_name(words[1], usage)
    raise _unexpected(usage, words)


def _dataset_add(bot: str | None, args: str) -> Command:
    usage = DatasetAdd.usage
    found = _DATASET_ADD_TO.fullmatch(args.strip()) or _TEST_ADD.fullmatch(args.strip())
    if found is None:
        raise _error(usage, 'Put the INPUT and the VALUE in quotes: add "refund?" expect ...')
    named = found.groupdict().get("dataset")
    return _build(
        DatasetAdd,
        bot=bot,
        input=found["input"],
        kind=found["kind"].lower(),
        value=found["value"],
        dataset=_dataset_name(named, usage) if named else None,
    )


def _dataset_expect(bot: str | None, args: str) -> Command:
    """`expect NAME ROW "VALUE" [KIND]`: a one-word VALUE needs no quotes."""
    usage = DatasetExpect.usage
    words = _split_words(usage, args)
    if len(words) < 3:
        raise _error(usage, 'Name the dataset and the row, then the VALUE: expect golden 3 "..."')
    name, row, said, *kind = words
    number = row.lstrip("#")
    if not (number.isascii() and number.isdigit()):
        raise _error(usage, f"ROW is a row number from /dataset BOT show NAME, not {_quote(row)}.")
    value = _quoted_word(said)
    if len(kind) > 1 or (value is None and kind and kind[0].lower() not in _EXPECT_KINDS):
        raise _error(usage, 'Put a VALUE of several words in quotes: "30 days".')
    return _build(
        DatasetExpect,
        bot=bot,
        dataset=_dataset_name(name, usage),
        row=int(number),
        value=said if value is None else value,
        kind=kind[0].lower() if kind else None,
    )


def _dataset_evaluate(bot: str | None, args: str) -> Command:
    """`evaluate NAME KIND ["VALUE"]`, `latency MS`, `cost USD`, `simulated "PERSONA" "RUBRIC"
    [turns N]`, `off KIND`."""
    usage = DatasetEvaluate.usage
    name, after = _first(args)
    kind, value = _first(after)
    kind = kind.lower()
    if not kind:
        raise _error(usage, 'Name the dataset, then the evaluator: evaluate golden judge "..."')
    fields: dict[str, object] = {"bot": bot, "dataset": _dataset_name(name, usage), "kind": kind}
    match kind:
        case "off":
            words = [word.lower() for word in _tokens(value)]
            if len(words) != 1:
                raise _error(usage, "Say which evaluator to stop using: off judge.")
            fields |= {"kind": words[0], "off": True}
        case "latency":
            fields["max_ms"] = _milliseconds(usage, " ".join(_tokens(value)))
        case "cost":
            fields["max_usd"] = _dollars(usage, " ".join(_tokens(value)))
        case "simulated":
            fields |= _simulated(usage, value)
        case _:
            fields["value"] = _unquote(value) or None
    return _build(DatasetEvaluate, **fields)


def _milliseconds(usage: str, said: str) -> float:
    found = _LATENCY.fullmatch(said)
    if found is None:
        raise _error(
            usage, f"MS is the slowest answer that passes: 2000, 2000ms or 2s; not {_quote(said)}."
        )
    seconds = (found["unit"] or "ms").lower() not in ("ms", "millisecond", "milliseconds")
    return float(found["amount"]) * (1000 if seconds else 1)


def _dollars(usage: str, said: str) -> float:
    found = _USD.fullmatch(said)
    if found is None:
        raise _error(
            usage, f"USD is the dearest answer that passes: 0.01 or $0.01; not {_quote(said)}."
        )
    return float(found["amount"])


def _simulated(usage: str, text: str) -> dict[str, object]:
    """`"PERSONA" "RUBRIC" [turns N]` of a simulated-user evaluator."""
    words = _split_words(usage, text)
    quoted = [_quoted_word(word) for word in words[:2]]
    if len(words) < 2 or quoted[0] is None or quoted[1] is None:
        raise _error(
            usage,
            'Put the PERSONA and the RUBRIC in quotes: simulated "an angry customer" '
            '"stays calm and helps"',
        )
    fields: dict[str, object] = {"persona": quoted[0], "value": quoted[1]}
    tail = [word.lower() for word in words[2:]]
    if len(tail) == 2 and "turns" in tail:
        fields["turns"] = tail[1 - tail.index("turns")]  # turns 3, 3 turns
    elif tail:
        raise _unexpected(usage, tail)
    return fields


def _eval(rest: str, bots: frozenset[str]) -> Command:
    """`/eval BOT [DATASET] [VERSION ...]`, `runs`, `show ID`, `gate [DATASET MIN-SCORE% | off]`,
    `online [PERCENT% "RUBRIC" | off]`."""
    bot, text = _eval_bot(rest, bots)
    action, args = _first(text)
    match action.lower():
        case "runs":
            if _tokens(args):
                raise _unexpected(EvalRuns.usage, _tokens(args))
            return _build(EvalRuns, bot=bot)
        case "show":
            words = _tokens(args)
            number = words[0].lstrip("#") if len(words) == 1 else ""
            if not (number.isascii() and number.isdigit()):
                raise _error(EvalRuns.usage, "ID is the number /eval BOT runs shows.")
            return _build(EvalRuns, bot=bot, run=int(number))
        case "gate":
            return _eval_gate(bot, _merge_percent_signs(_tokens(args)))
        case "online":
            return _eval_online(bot, args)
        case _:
            return _eval_run(bot, _tokens(text.replace(",", " ")))


def _eval_bot(rest: str, bots: frozenset[str]) -> tuple[str | None, str]:
    """The optional BOT of an /eval line. With the team's bots known, a first word that is none
    of them (nor close to one) is the DATASET, unless another word that is not a version follows:
    then it is `/eval BOT DATASET`."""
    word, tail = _first(rest)
    name = _name(word)
    if name in bots or _LEADING_PRONOUN.match(rest.strip()):
        return _lead_bot(rest, bots, lambda word: False)
    if not name or name in _EVAL_ACTIONS or _version_ref(name):
        return None, rest
    more = [w for w in _tokens(tail) if _version_ref(w) is None]
    if bots and not more and not _near_bot(name, bots):
        return None, rest
    return name, tail


def _eval_run(bot: str | None, words: list[str]) -> Command:
    usage = EvalRun.usage
    dataset: str | None = None
    versions: list[str] = []
    for word in words:
        ref = _version_ref(word)
        if ref is None:
            if dataset is not None:
                raise _error(
                    usage,
                    f"Name one DATASET; {_quote(word)} is not a version either "
                    "(draft, staging, production or vN).",
                )
            dataset = _dataset_name(word, usage, "DATASET")
        elif ref[0] == "v" and not 1 <= int(ref[1:]) <= MAX_VERSION:
            raise _error(usage, f"There is no version {_quote(word)}.")
        elif ref not in versions:
            versions.append(ref)
    return _build(EvalRun, bot=bot, dataset=dataset, versions=versions)


def _eval_gate(bot: str | None, words: list[str]) -> Command:
    """`gate` (show), `gate off`, `gate DATASET MIN-SCORE%` (either order); the score is a
    percentage: 80, 80% and 80.5% are, and 0.8% is 0.8%; a bare 0.8 (a fraction, surely) is
    refused with the percentage it likely means."""
    usage = EvalGateSet.usage
    if not words:
        return _build(EvalGateSet, bot=bot)
    if [word.lower() for word in words] == ["off"]:
        return _build(EvalGateSet, bot=bot, off=True)
    if len(words) == 2 and not _PERCENT.fullmatch(words[1]) and _PERCENT.fullmatch(words[0]):
        words = words[::-1]
    score = _PERCENT.fullmatch(words[-1])
    if len(words) != 2 or score is None:
        raise _error(usage, "Name the DATASET, then the lowest score that passes: gate golden 80%.")
    amount = score["amount"]
    if not words[-1].endswith("%") and 0 < Decimal(amount) <= 1:
        meant = format((Decimal(amount) * 100).normalize(), "f")
        raise GrammarError(f"MIN-SCORE is a percentage: did you mean {meant}%?")
    dataset = _dataset_name(words[0], usage, "DATASET")
    return _build(EvalGateSet, bot=bot, dataset=dataset, min_score=float(amount))


def _eval_online(bot: str | None, args: str) -> Command:
    """`online` (show), `online off`, `online PERCENT% "RUBRIC"`."""
    usage = EvalOnlineSet.usage
    words = _tokens(args)
    if not words:
        return _build(EvalOnlineSet, bot=bot)
    if [word.lower() for word in words] == ["off"]:
        return _build(EvalOnlineSet, bot=bot, off=True)
    said, rubric = _first(args)
    if rubric.startswith("%"):
        said, rubric = said + "%", rubric[1:]
    percent = _PERCENT.fullmatch(said)
    if percent is None:
        raise _error(
            usage, f"PERCENT is the share of live answers to judge, e.g. 10%; not {_quote(said)}."
        )
    if not _unquote(rubric):
        raise _error(usage, 'Give the RUBRIC after the percentage: online 10% "Is it correct?"')
    return _build(EvalOnlineSet, bot=bot, percent=float(percent["amount"]), rubric=_unquote(rubric))


def _evals(rest: str, bots: frozenset[str]) -> Command:
    """`/evals BOT` lists the runs (a plural does not start one); else as /eval."""
    command = _eval(rest, bots)
    if isinstance(command, EvalRun) and command.dataset is None and not command.versions:
        return _build(EvalRuns, bot=command.bot)
    return command


def _review(rest: str, bots: frozenset[str]) -> Command:
    """`/review BOT`, `/review BOT add ID [ID ...] to DATASET` (ids as /review shows them)."""
    bot, tail = _lead_bot(rest, bots, lambda word: word in ("add", "list"))
    action, args = _first(tail)
    match action.lower():
        case "" | "list":
            if _tokens(args):
                raise _unexpected(ReviewList.usage, _tokens(args))
            return _build(ReviewList, bot=bot)
        case "add":
            return _review_add(bot, _tokens(args.replace(",", " ")))
        case _:
            usages = f"{ReviewList.usage} | {ReviewAdd.usage}"
            raise _error(usages, f"I don't know the review action {_quote(action)}.")


def _trace(rest: str, bots: frozenset[str]) -> Command:
    """`/trace BOT [last | CONVERSATION]` (a conversation id as the conversations API lists)."""
    bot, tail = _lead_bot(rest, bots, lambda word: word.lower() == "last" or word.isdigit())
    words = _tokens(tail)
    if len(words) > 1:
        raise _unexpected(TraceShow.usage, words[1:])
    if not words or words[0].lower() == "last":
        return _build(TraceShow, bot=bot)
    if not words[0].isdigit():
        raise _error(
            TraceShow.usage,
            f"Say `last` or a conversation's number (as GET …/conversations lists), "
            f"not {_quote(words[0])}.",
        )
    return _build(TraceShow, bot=bot, conversation=int(words[0]))


def _review_add(bot: str | None, words: list[str]) -> Command:
    usage = ReviewAdd.usage
    into = next((at for at, word in enumerate(words) if word.lower() in ("to", "into")), None)
    if into is None or into + 2 != len(words):
        raise _error(usage, "Say which dataset they go to: add 12 13 to golden.")
    if into == 0:
        raise _error(usage, "Give the ids /review shows: add 12 13 to golden.")
    ids: list[int] = []
    for word in words[:into]:
        number = word.lstrip("#")
        if not (number.isascii() and number.isdigit()):
            raise _error(usage, f"ID is a number /review shows, not {_quote(word)}.")
        if int(number) not in ids:
            ids.append(int(number))
    dataset = _dataset_name(words[into + 1], usage, "DATASET")
    return _build(ReviewAdd, bot=bot, ids=ids, dataset=dataset)


def _abtest(rest: str, bots: frozenset[str]) -> Command:
    """`/abtest BOT vA vB PERCENT [--env ENV]`, `status` (also bare), `stop`, `promote-winner`."""
    bot, tail = _lead_bot(
        rest,
        bots,
        lambda w: (
            w in _ABTEST_ACTIONS or w == "promote" or w[:2] == "--" or bool(_VERSION.fullmatch(w))
        ),
    )
    typed = _merge_percent_signs(_tokens(tail))
    words, env = _flag(_abtest_usage(typed), typed, "env", "the environment", "staging")
    fields: dict[str, object] = {"env": env.lower()} if env else {}
    said = " ".join(words).lower()
    if not said or said in _ABTEST_ACTIONS:
        return _build(_ABTEST_ACTIONS.get(said, AbTestStatus), bot=bot, **fields)
    action = _ABTEST_ACTIONS.get(words[0].lower())
    if action is not None:
        raise _unexpected(action.usage, words[1:])
    if len(words) == 3:
        a, b = _ab_versions(words[0], words[1])
        percent = _whole(AbTestStart, "percent", "PERCENT", words[2].removesuffix("%"))
        return _build(AbTestStart, bot=bot, a=a, b=b, percent=percent, **fields)
    if not _VERSION.fullmatch(words[0]):
        raise _error(_ABTEST_USAGES, f"I don't know the A/B test action {_quote(said)}.")
    raise _error(
        AbTestStart.usage, "Give vA (what runs now), vB and the PERCENT of end users for vB."
    )


def _abtest_usage(typed: list[str]) -> str:
    """The usage of the `/abtest` action `typed` starts with (status when it names none)."""
    first = typed[0].lower() if typed else ""
    if not first or first.startswith("--"):
        return AbTestStatus.usage
    named = _ABTEST_ACTIONS.get(" ".join(typed[:2]).lower()) or _ABTEST_ACTIONS.get(first)
    return named.usage if named is not None else AbTestStart.usage


def _ab_versions(a: str, b: str) -> tuple[int, int]:
    """vA and vB of an A/B test: version numbers (v3 or 3), two different ones."""
    for word in (a, b):
        if not _VERSION.fullmatch(word):
            raise _error(
                AbTestStart.usage, f"vA and vB are version numbers (v3 or 3), not {_quote(word)}."
            )
    first, second = (int(word.lower().removeprefix("v")) for word in (a, b))
    if first == second:
        raise _error(AbTestStart.usage, "vA and vB must be two different versions.")
    return first, second


_PARSERS: dict[str, _Parser] = {
    "newbot": _newbot,
    "bots": _bare(ListBots),
    "show": _one_bot(ShowBot),
    "set": _set,
    "try": _try,
    "test": _test,
    "knowledge": _knowledge,
    "promote": _promote,
    "rollback": _rollback,
    "deployments": _one_bot(ListDeployments),
    "stats": _stats,
    "export": _export,
    "guard": _guard,
    "budget": _budget,
    "handoff": _handoff,
    "resume": _resume,
    "diff": _diff,
    "history": _one_bot(History),
    "memory": _memory,
    "delete": _one_bot(Delete),
    "role": _role,
    "invite": _bare(Invite),
    "join": _join,
    "secret": _secret,
    "secrets": _secret,
    "help": _help,
    "flow": _flow,
    "route": _route,
    "tool": _tool,
    "tools": _tool,
    "schedule": _schedule,
    "schedules": _schedule,
    "followup": _followup,
    "followups": _followup,
    "follow-up": _followup,
    "dataset": _dataset,
    "datasets": _dataset,
    "eval": _eval,
    "evals": _evals,
    "abtest": _abtest,
    "ab-test": _abtest,
    "review": _review,
    "trace": _trace,
}
