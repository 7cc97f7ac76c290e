"""`/export BOT [csv|json] [24h|7d|30d]` and `GET /api/v1/bots/{bot}/export?format=csv|json`:
a bot's real conversations of a period as a file (admins).

Both read the same pages (`storage.exports`: a short read each, keyset on conversation and
message) and encode them the same way, a page at a time off the event loop: REST streams them
as they come, so memory stays flat however long the period; chat collects them into a file
attached to the answer, up to what a chat message carries (`MAX_ATTACHMENT_BYTES`). A bigger
export is refused in chat with the REST call to make instead, and a period without traffic is
said in a sentence, never sent as an empty file. `/try` conversations are never exported.

CSV: one row per message, with a header. JSON: one document, the period and the bot's
conversations, each with its messages, oldest first. A message is kept as it was stored (with
the bot's PII guard on, what end users wrote was masked before it was kept).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from runtime.messages import MAX_ATTACHMENT_BYTES, Attachment
from runtime.net import format_size
from storage import exports as export_store
from storage.exports import ExportedMessage, ExportTotals
from storage.tables import utcnow
from studio.commands import Command, ExportConversations
from studio.errors import BadRequestError
from studio.operations import PERIODS, Operations
from studio.presenters import period_words, plural
from studio.replies import Answer
from studio.roles import Caller, Role

EXPORT_COMMANDS: tuple[type[Command], ...] = (ExportConversations,)
# Each format's media type, as the file and the REST answer declare it.
MEDIA_TYPES = {"csv": "text/csv", "json": "application/json"}
PAGE = 1000
# What the JSON export says of a conversation and of each of its messages; a CSV row is the
# two together.
CONVERSATION_FIELDS = ("id", "channel", "user", "started_at")
MESSAGE_FIELDS = (
    "id",
    "at",
    "role",
    "text",
    "version",
    "ab_test_id",
    "variant",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "error",
    "ratings_up",
    "ratings_down",
    "voice_s",
)
CSV_COLUMNS = ("conversation_id", *CONVERSATION_FIELDS[1:], "message_id", *MESSAGE_FIELDS[1:])


@dataclass(frozen=True, slots=True)
class ConversationExport:
    """One export, checked and counted: what it covers, before a byte of it is encoded."""

    bot: str
    bot_id: int
    format: str
    period: str
    since: datetime
    until: datetime
    totals: ExportTotals

    @property
    def filename(self) -> str:
        return f"{self.bot}-conversations-{self.period}.{self.format}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


class ExportFeature:
    """Conversation exports for chat (`run`) and REST (`prepare`, then `chunks`)."""

    def __init__(
        self, *, ops: Operations, max_bytes: int = MAX_ATTACHMENT_BYTES, page: int = PAGE
    ) -> None:
        self.ops = ops
        self.max_bytes = max_bytes  # the biggest file sent in chat
        self.page = page  # messages read (and encoded) at a time

    async def prepare(
        self, caller: Caller, bot: str, *, format: str, period: str
    ) -> ConversationExport:
        """The export of `bot`'s conversations of `period` as `format` (admins): checked, and
        what it holds counted."""
        if format not in MEDIA_TYPES:
            raise BadRequestError(
                f"format must be csv or json (or yaml for the bot's spec), not '{format}'"
            )
        if period not in PERIODS:
            raise BadRequestError(f"period must be one of {', '.join(PERIODS)}, not '{period}'")
        caller.require(Role.ADMIN, "Exporting conversations")
        draft = await self.ops.draft(caller, bot)
        until = utcnow()
        since = until - PERIODS[period]
        async with self.ops.db.read_conn() as conn:
            totals = await export_store.totals(conn, draft.bot_id, since=since, until=until)
        return ConversationExport(draft.name, draft.bot_id, format, period, since, until, totals)

    async def chunks(self, export: ConversationExport) -> AsyncGenerator[bytes, None]:
        """The file, a page of messages at a time: each page its own short read, encoded in a
        worker thread so that a big export never holds up the event loop."""
        encoder: _Encoder = _Csv() if export.format == "csv" else _Json(export)
        yield encoder.head()
        first = export.totals.first_conversation
        after = (first, 0) if first is not None else None
        while after is not None:
            async with self.ops.db.read_conn() as conn:
                page = await export_store.page(
                    conn,
                    export.bot_id,
                    since=export.since,
                    until=export.until,
                    after=after,
                    limit=self.page,
                )
            if page:
                yield await asyncio.to_thread(encoder.rows, page)
            after = page[-1].key if len(page) == self.page else None
        yield encoder.tail()

    async def run(self, caller: Caller, bot: str, command: Command) -> Answer:
        """`/export`: the file, or why there is none."""
        assert isinstance(command, ExportConversations)
        export = await self.prepare(caller, bot, format=command.format, period=command.period)
        if not export.totals.messages:
            return Answer(
                f"*{export.bot}* had no conversations in the last {period_words(export.period)}: "
                "there is nothing to export."
            )
        data = await self._file(export)
        if data is None:
            return too_big(export, self.rest_url(export), self.max_bytes)
        file = Attachment(name=export.filename, mime=export.media_type, data=data, private=True)
        return Answer(summary(export), file=file)

    async def _file(self, export: ConversationExport) -> bytes | None:
        """The whole file, or None once it grows past what a chat message carries."""
        data = bytearray()
        async with aclosing(self.chunks(export)) as chunks:
            async for chunk in chunks:
                data += chunk
                if len(data) > self.max_bytes:
                    return None
        return bytes(data)

    def rest_url(self, export: ConversationExport) -> str:
        """The REST call that streams the export (on the service's public URL when it has one)."""
        base = (self.ops.settings.public_url or "").rstrip("/")
        return (
            f"{base}/api/v1/bots/{export.bot}/export?format={export.format}&period={export.period}"
        )


# -- encoding -------------------------------------------------------------------------------------


def _iso(at: datetime) -> str:
    """A stored time in ISO 8601, UTC (SQLite gives it back without its zone)."""
    if at.tzinfo is None:
        return f"{at.isoformat()}Z"
    return f"{at.astimezone(UTC).replace(tzinfo=None).isoformat()}Z"


class _Encoder(Protocol):
    def head(self) -> bytes: ...
    def rows(self, page: list[ExportedMessage]) -> bytes: ...
    def tail(self) -> bytes: ...


def _conversation(row: ExportedMessage) -> tuple[Any, ...]:
    """The values of `CONVERSATION_FIELDS`."""
    return row.conversation_id, row.channel, row.user, _iso(row.started_at)


def _message(row: ExportedMessage) -> tuple[Any, ...]:
    """The values of `MESSAGE_FIELDS`."""
    m = row.message
    return (
        m.id,
        _iso(m.created_at),
        m.role,
        m.text,
        m.version,
        row.ab_test_id,
        m.variant,
        m.latency_ms,
        m.prompt_tokens,
        m.completion_tokens,
        m.cost_usd,
        m.error,
        m.ratings_up,
        m.ratings_down,
        m.voice_s,
    )


# What a spreadsheet takes for the start of a formula when a cell begins with it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """A cell a spreadsheet shows as text: what end users wrote (`=HYPERLINK(…)`) must never run
    as a formula when an admin opens the file (OWASP's CSV injection). Such a cell gets a
    leading `'`, which spreadsheets hide; the JSON export keeps the text exactly."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class _Csv:
    """One row per message (its conversation's fields, then its own), after a header row
    (RFC 4180: quoted where needed, CRLF; an empty cell for no value)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._conversation: tuple[Any, ...] = (None,)  # the last row's, worked out once

    def _taken(self, rows: Iterable[Iterable[Any]]) -> bytes:
        self._writer.writerows(rows)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def head(self) -> bytes:
        return self._taken([CSV_COLUMNS])

    def rows(self, page: list[ExportedMessage]) -> bytes:
        return self._taken((*self._of(row), *map(_inert, _message(row))) for row in page)

    def _of(self, row: ExportedMessage) -> tuple[Any, ...]:
        if self._conversation[0] != row.conversation_id:
            self._conversation = tuple(map(_inert, _conversation(row)))
        return self._conversation

    def tail(self) -> bytes:
        return b""


class _Json:
    """`{"bot", "period", "since", "until", "conversations": [{"id", "channel", "user",
    "started_at", "messages": [...]}]}`, written as the pages come: the pages keep a
    conversation's messages together, so each conversation is opened once and closed when the
    next one begins."""

    def __init__(self, export: ConversationExport) -> None:
        self._export = export
        self._current: int | None = None  # the conversation whose messages are being written

    def head(self) -> bytes:
        export = self._export
        about = {
            "bot": export.bot,
            "period": export.period,
            "since": _iso(export.since),
            "until": _iso(export.until),
        }
        return _opened(about, "conversations").encode()

    def rows(self, page: list[ExportedMessage]) -> bytes:
        parts: list[str] = []
        for row in page:
            if row.conversation_id == self._current:
                parts.append(", ")
            else:
                if self._current is not None:
                    parts.append("]}, ")
                conversation = dict(zip(CONVERSATION_FIELDS, _conversation(row), strict=True))
                parts.append(_opened(conversation, "messages"))
                self._current = row.conversation_id
            message = dict(zip(MESSAGE_FIELDS, _message(row), strict=True))
            parts.append(json.dumps(message, ensure_ascii=False))
        return "".join(parts).encode()

    def tail(self) -> bytes:
        return b"]}]}" if self._current is not None else b"]}"


def _opened(fields: dict[str, Any], key: str) -> str:
    """`fields` as a JSON object left open after `"key": [`, for the list to follow."""
    return json.dumps(fields, ensure_ascii=False)[:-1] + f', "{key}": ['


# -- presenters ---------------------------------------------------------------------------------


def _counts(export: ConversationExport) -> str:
    totals = export.totals
    return f"{plural(totals.conversations, 'conversation')}, {plural(totals.messages, 'message')}"


def summary(export: ConversationExport) -> str:
    return (
        f"*{export.bot}*: {_counts(export)} in the last {period_words(export.period)}, "
        f"as {export.format.upper()} ({export.filename})."
    )


def too_big(export: ConversationExport, url: str, max_bytes: int) -> Answer:
    return Answer(
        f"*{export.bot}*'s export of the last {period_words(export.period)} "
        f"({_counts(export)}) is over {format_size(max_bytes)}, too big for a file in chat. "
        f"Download it through the REST API instead: `GET {url}` with an admin API key "
        "(`Authorization: Bearer KEY`)."
    )
