"""Knowledge operations: adding, listing and removing a bot's sources (chat and REST both call
these). A source changes the draft only; a version answers from the sources it was promoted with.

Adding writes the vectors first, then the draft's reference (what makes the source visible), so a
crash in between leaves only vectors that nothing refers to, which `collect_orphans` removes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import select

from builders.spec import MAX_SOURCES, BotSpec, KnowledgeRef
from builders.tokens import TOKEN_REFUSAL, has_token
from runtime.knowledge.extract import Document, KnowledgeInputError, from_text
from runtime.knowledge.gateway import KnowledgeGateway, Progress, Reindexed, document_id
from runtime.locks import AbstractLock
from storage.tables import Bot, BotVersion
from studio.errors import (
    ConflictError,
    InvalidError,
    NotAvailableError,
    NotFoundError,
    UpstreamError,
)
from studio.operations import Operations
from studio.roles import Caller, Role
from studio.views import Added, SourceView

logger = logging.getLogger(__name__)

_Reader = Callable[[], Awaitable[Document]]

_ATTACH_ATTEMPTS = 3
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
# One word that names another scheme (`file:///etc/passwd`, `ftp://…`, `javascript:…`): a link
# that is not fetched, never kept as a note either.
_OTHER_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|(?:javascript|data|file|vbscript):)\S*$", re.I)
_WORD = re.compile(r"[a-z0-9]+")


def note_name(text: str) -> str:
    """The name of a source typed in chat: its first words ("refunds-take-5-days.txt")."""
    words = _WORD.findall(text.lower())[:6]
    return ("-".join(words) or "note")[:60] + ".txt"


class KnowledgeOperations:
    def __init__(self, *, ops: Operations, gateway: KnowledgeGateway | None) -> None:
        self.ops = ops
        self.gateway = gateway
        self._reindexing: dict[int, tuple[int, int]] = {}  # bot id: (passages done, in all)

    def _lock(self, bot_id: int) -> AbstractLock:
        """One change at a time to a bot's knowledge (adding, removing, sweeping), across every
        worker: the leader's sweep never takes an ingest's vectors, stored on another worker
        and not referred to yet, for orphans."""
        return self.ops.runtime.locks.hold(f"knowledge\x00{bot_id}")

    def _gateway(self) -> KnowledgeGateway:
        if self.gateway is None:
            raise NotAvailableError("Knowledge is not available in this service")
        return self.gateway

    async def add_text(self, caller: Caller, bot: str, text: str) -> Added:
        """`/knowledge BOT add TEXT|URL`: a URL is fetched, anything else is a note."""
        text = text.strip()
        if not text:
            raise InvalidError("What should the bot know? /knowledge BOT add TEXT|URL")
        if _URL.match(text) or _OTHER_URL.match(text):
            return await self.add_url(caller, bot, text)
        return await self.add(
            caller, bot, lambda: _ready(from_text(name=note_name(text), text=text))
        )

    async def add_url(self, caller: Caller, bot: str, url: str) -> Added:
        """A web page (http or https only) fetched into the bot's knowledge."""
        url = url.strip()
        if not _URL.match(url):
            raise InvalidError(
                f"only http:// and https:// links can be added, not '{url[:60]}'; "
                "to add text, send it as text"
            )
        return await self.add(caller, bot, lambda: self._gateway().read_url(url))

    async def add_file(
        self,
        caller: Caller,
        bot: str,
        *,
        name: str,
        content: bytes,
        content_type: str | None = None,
        progress: Progress | None = None,
    ) -> Added:
        gateway = self._gateway()
        return await self.add(
            caller,
            bot,
            lambda: gateway.read_file(name=name, content=content, content_type=content_type),
            progress=progress,
        )

    async def add(
        self, caller: Caller, bot: str, read: _Reader, *, progress: Progress | None = None
    ) -> Added:
        """Read the source, store its vectors, then point the draft at it (same name: replaced).
        Bad input is one line and changes nothing."""
        caller.require(Role.EDITOR, "Adding knowledge")
        gateway = self._gateway()
        draft = await self.ops.draft(caller, bot)  # the bot exists before any work is done
        try:
            document = await read()
        except KnowledgeInputError as exc:
            raise InvalidError(str(exc)) from None
        ident = await asyncio.to_thread(_storable_id, document)
        async with self._lock(draft.bot_id):  # no sweep runs between the vectors and the ref
            current = await self.ops.draft(caller, draft.name)
            same = next((r for r in current.spec.knowledge if r.name == document.name), None)
            if same is not None and same.id == ident:
                stored = await gateway.chunk_count(bot_id=draft.bot_id, source_ids=[ident])
                if stored[ident]:
                    return Added(
                        bot=draft.name,
                        name=document.name,
                        chunks=stored[ident],
                        replaced=False,
                        unchanged=True,
                    )
            if same is None and len(current.spec.knowledge) >= MAX_SOURCES:
                raise InvalidError(f"{draft.name} has {MAX_SOURCES} sources, the most it can have")
            try:
                ingested = await gateway.ingest(
                    bot_id=draft.bot_id, document=document, progress=progress
                )
            except KnowledgeInputError as exc:
                raise InvalidError(str(exc)) from None
            ref = KnowledgeRef(id=ingested.source_id, name=ingested.name[:200])
            await self._attach(caller, draft.name, ref)
        return Added(
            bot=draft.name,
            name=document.name,
            chunks=ingested.chunks,
            replaced=same is not None,
            unchanged=False,
        )

    async def _attach(self, caller: Caller, bot: str, ref: KnowledgeRef) -> None:
        """Point the draft at `ref` (replacing a source of the same name). The draft may have
        been edited while the file was read: adding a reference commutes, so read it again."""
        for attempt in range(_ATTACH_ATTEMPTS):
            draft = await self.ops.draft(caller, bot)
            refs = [r for r in draft.spec.knowledge if r.name != ref.name] + [ref]
            try:
                await self.ops.edit_draft(
                    caller,
                    bot,
                    {"knowledge": [r.model_dump() for r in refs]},
                    revision=draft.revision,
                )
                return
            except ConflictError:
                if attempt == _ATTACH_ATTEMPTS - 1:
                    raise

    async def list(self, caller: Caller, bot: str) -> list[SourceView]:
        draft = await self.ops.draft(caller, bot)
        refs = draft.spec.knowledge
        if not refs:
            return []
        counts = await self._gateway().chunk_count(
            bot_id=draft.bot_id, source_ids=[r.id for r in refs]
        )
        return [SourceView(name=r.name, id=r.id, chunks=counts.get(r.id, 0)) for r in refs]

    async def remove(self, caller: Caller, bot: str, name: str) -> str:
        """Take a source out of the draft (versions that use it keep it); the name removed."""
        caller.require(Role.EDITOR, "Removing knowledge")
        draft = await self.ops.draft(caller, bot)
        async with self._lock(draft.bot_id):
            refs = list(draft.spec.knowledge)
            match = (
                [r for r in refs if r.name == name]
                or [r for r in refs if r.name.lower().startswith(name.lower())]
                or [r for r in refs if _id_matches(r.id, name)]
            )
            if not match:
                known = ", ".join(r.name for r in refs[:10]) or "none"
                raise NotFoundError(f"{draft.name} has no source '{name}'. Its sources: {known}")
            if len(match) > 1:
                raise InvalidError(f"'{name}' matches {len(match)} sources: give the full name")
            gone = match[0]
            await self.ops.edit_draft(
                caller,
                draft.name,
                {"knowledge": [r.model_dump() for r in refs if r != gone]},
                revision=draft.revision,
            )
            await self._collect(draft.bot_id)
        return gone.name

    async def reindex(
        self, caller: Caller, bot: str, *, progress: Progress | None = None
    ) -> Reindexed:
        """`/knowledge BOT reindex`: the bot's stored sources cut again, with keywords; every
        version keeps answering meanwhile."""
        caller.require(Role.EDITOR, "Re-indexing knowledge")
        self._gateway()
        draft = await self.ops.draft(caller, bot)
        under_way = self._reindexing.get(draft.bot_id)
        if under_way is not None:
            done, total = under_way
            raise ConflictError(
                f"{draft.name}'s knowledge is being re-indexed already ({done} of {total} "
                "passages): /knowledge BOT list shows how far"
            )
        async with self._lock(draft.bot_id):
            try:
                return await self._reindex(draft.bot_id, progress)
            except KnowledgeInputError as exc:  # the embedding model failed
                raise UpstreamError(str(exc)) from None

    def reindexing(self, bot_id: int) -> tuple[int, int] | None:
        """(passages done, passages in all) while the bot's knowledge is being re-indexed."""
        return self._reindexing.get(bot_id)

    async def _reindex(self, bot_id: int, progress: Progress | None) -> Reindexed:
        assert self.gateway is not None

        async def track(done: int, total: int) -> None:
            self._reindexing[bot_id] = (done, total)
            if progress is not None:
                await progress(done, total)

        self._reindexing[bot_id] = (0, 0)
        try:
            return await self.gateway.reindex(bot_id=bot_id, progress=track)
        finally:
            self._reindexing.pop(bot_id, None)

    async def upgrade(self) -> int:
        """At start, in the background: knowledge stored before keywords is re-indexed, a bot
        at a time (each keeps answering, by meaning only, until its turn is done); how many
        bots were. A provider's embedding model is paid per text, so with one nothing is
        embedded unasked: the log says which bots want `/knowledge BOT reindex`."""
        gateway = self.gateway
        if gateway is None:
            return 0
        upgraded = 0
        for bot_id in await self._bot_ids():
            try:
                async with self._lock(bot_id):
                    if not await gateway.has_legacy(bot_id):
                        continue
                    if not gateway.embedder.local:
                        logger.warning(
                            "knowledge stored before keywords is searched by meaning only until "
                            "/knowledge BOT reindex embeds it again (%s is paid per text)",
                            gateway.embedder.id,
                            extra={"bot": bot_id},
                        )
                        continue
                    done = await self._reindex(bot_id, None)
            except Exception:  # one bot's failure (a store error) leaves the others to do
                logger.exception("re-indexing knowledge failed", extra={"bot": bot_id})
                continue
            logger.info(
                "re-indexed knowledge with keywords",
                extra={"bot": bot_id, "sources": done.sources, "chunks": done.chunks},
            )
            upgraded += 1
        return upgraded

    async def collect(self, bot_id: int) -> int:
        """Drop the vectors of sources that neither the draft nor any version refers to."""
        async with self._lock(bot_id):
            return await self._collect(bot_id)

    async def _collect(self, bot_id: int) -> int:
        if self.gateway is None:
            return 0
        async with self.ops.db.read() as session:
            bot = await session.get(Bot, bot_id)
            query = select(BotVersion.spec).where(BotVersion.bot_id == bot_id)
            specs = list(await session.exec(query))
        if bot is None:
            await self.gateway.drop_bot(bot_id)
            return 0
        keep = _references([bot.draft, *(dict(spec) for spec in specs)])
        return await self.gateway.collect(bot_id=bot_id, keep=keep)

    async def collect_orphans(self) -> int:
        """At start: every bot's unreferenced vectors go (an interrupted ingest leaves some),
        and the knowledge of bots deleted while it was being written (an ingest or re-index
        under way when the bot went)."""
        if self.gateway is None:
            return 0
        removed = 0
        bots = await self._bot_ids()
        for bot_id in bots:
            removed += await self.collect(bot_id)
        for gone in await self.gateway.stored_bots() - set(bots):
            async with self._lock(gone):  # a bot made meanwhile writes under the same lock
                if gone not in await self._bot_ids():
                    await self.gateway.drop_bot(gone)
        return removed

    async def _bot_ids(self) -> tuple[int, ...]:
        async with self.ops.db.read() as session:
            return tuple(i for i in await session.exec(select(Bot.id)) if i is not None)


def _storable_id(document: Document) -> str:
    """The document's id; a document holding a bot token is refused before it is stored."""
    texts = (text for s in document.sections for text in (s.text, s.heading or ""))
    if any(has_token(text) for text in texts):
        raise InvalidError(f"{document.name}: {TOKEN_REFUSAL}")
    return document_id(document)


async def _ready(document: Document) -> Document:
    return document


def _references(specs: list[dict[str, Any]]) -> set[str]:
    keep: set[str] = set()
    for data in specs:
        try:
            keep.update(ref.id for ref in BotSpec.model_validate(data).knowledge)
        except ValueError:
            logger.warning("a stored spec no longer validates; its knowledge is kept")
            knowledge = data.get("knowledge")
            if isinstance(knowledge, list):
                keep.update(str(k.get("id")) for k in knowledge if isinstance(k, dict))
    return keep


def _id_matches(source_id: str, given: str) -> bool:
    """`given` is the source's id as `/knowledge BOT list` shows it (its first 12 hex digits), or
    longer, with or without `sha256:`."""
    digits = source_id.removeprefix("sha256:")
    given = given.lower().removeprefix("sha256:")
    return len(given) >= 12 and digits.startswith(given)
