"""Generated bots on Telegram: one aiogram HTTP session, one `Bot` per deployed token. Updates
come by webhook on `/telegram/bots/{deployment_id}` (checked against a secret derived from the
service's key and the deployment id, so it survives restarts and is set once, at deploy time),
or, without `STUDIO_PUBLIC_URL` (development), through the project's own `getUpdates` loop: each
batch is recorded in the inbox before the offset confirms it, so a crash loses nothing (aiogram's
and python-telegram-bot's pollers confirm before their handlers finish).

aiogram is imported on first use, in a thread: it costs seconds, which `serve` does not pay at
start. Replies (a model's Markdown) go out as Telegram HTML, split at Telegram's 4,096 characters
(a piece whose HTML Telegram cannot parse goes again once, as plain text), with its 429
`retry_after` honoured; a revoked token (401) fails for good.

An answer is shown while it is written (`adapters.telegram.drafts`: drafts, or a message edited
where a bot's drafts are refused, in private chats; "typing" in groups). Where a preview
message shows it, the answer's first part replaces that message's text (no second copy): a
preview that shows it already ("message is not modified") is the answer; one the person deleted,
or that Telegram will not edit, gives way to a new message (and a stale one is deleted); the
network failing keeps the preview for the send's next attempt, which edits it again.

End users rate answers with message reactions (`message_reaction` updates, asked for alongside
messages): a send returns `ref` = "CHAT_ID:MESSAGE_ID" of its last piece, and a reaction to that
message rates the answer. A reaction is never answered nor recorded as a message.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from fastapi import APIRouter, Request, Response
from sqlmodel import select

from adapters.plugin import built
from adapters.telegram import drafts as drafts_module
from adapters.telegram.common import delivery, log_failure, poll_updates, said
from adapters.telegram.drafts import Drafts
from adapters.telegram.pacing import ChatPacer
from adapters.telegram.render import markdown_to_html, plain_text, split_html
from runtime.channel import (
    Capabilities,
    DeployForm,
    DeployInputError,
    DeploymentInfo,
    DeployPlan,
    Secret,
    SendError,
    SendReceipt,
)
from runtime.cipher import BOT_TOKEN, Cipher
from runtime.feedback import Rating
from runtime.llm import TextSink
from runtime.messages import Address, Attachment, FileRef, IncomingMessage, OutgoingMessage
from runtime.metrics import RATE_LIMITED
from runtime.net import format_size
from runtime.runtime import START_COMMAND, Runtime, UnknownDeploymentError
from runtime.voice import MAX_AUDIO_BYTES
from storage.tables import Deployment

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 30.0  # a longer wait is not worth holding the conversation for
POLL_TIMEOUT_S = 25  # long-poll wait of one getUpdates
RESCAN_EVERY_S = 3.0  # the polling leader looks for bots deployed or undeployed by other workers
_RETRIES = 3
_COMMANDS = (("start", "Start over and say hello"), ("reset", "Forget this conversation"))
_UNPARSABLE = "can't parse entities"  # Telegram's words for HTML it refuses
_NOT_MODIFIED = "message is not modified"  # an edit to what the message shows already
_GONE = "message to edit not found"  # the person deleted it
# Refused edits that say nothing of the bot's edits in general (those are remembered).
_THIS_MESSAGE = (_GONE, _UNPARSABLE, "message is too long", "text is empty", "MESSAGE_ID_INVALID")
PREVIEW_TIMEOUT_S = 10  # a preview's call waits no longer (the answer waits for it to land)
# What a generated bot asks Telegram for (a webhook's and getUpdates' `allowed_updates`).
_UPDATES = ["message", "message_reaction"]
# Reactions that rate an answer; any other is no rating (and leaves an earlier one as it was).
_UP = frozenset({"👍", "❤", "🔥", "🎉", "👏", "🤩", "👌", "💯", "🙏", "😁"})
_DOWN = frozenset({"👎", "💩", "🤮", "😢", "😡", "🤬"})


_R = TypeVar("_R")


# aiogram parametrises `Response[T]` with each method's result type on every call, and pydantic
# keeps such classes only weakly: whenever the collector has freed one, the next call builds it
# again (~2 ms; it happened on a third of the sends under load). Held here, they stay built.
_RESPONSE_TYPES: list[type] = []


def _import_aiogram() -> ModuleType:
    import aiogram
    import aiogram.client.session.aiohttp
    import aiogram.client.telegram
    import aiogram.exceptions
    import aiogram.types
    from aiogram.methods import EditMessageText, GetMe, GetUpdates, SendMessage, SetWebhook
    from aiogram.methods.base import Response

    _RESPONSE_TYPES[:] = [
        Response[method.__returning__]  # type: ignore[name-defined]
        for method in (SendMessage, GetUpdates, GetMe, SetWebhook, EditMessageText)
    ]  # SetWebhook: every bool
    return aiogram


async def _count_rate_limits(
    refused: type[Exception], make_request: Any, bot: Any, method: Any
) -> Any:
    """aiogram's request middleware on both sessions: each 429 (`refused`, aiogram's
    `TelegramRetryAfter`) a generated bot's call gets is counted once as it arrives, whatever
    the call (a send, getUpdates, a deploy's set-up), and whether or not a retry follows."""
    try:
        return await make_request(bot, method)
    except refused:
        RATE_LIMITED.labels(TelegramBots.kind).inc()
        raise


class TelegramBots:
    """The `telegram` channel for generated bots."""

    kind: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        edits=True, broadcast_per_s=25.0, streams=True
    )
    title: ClassVar[str] = "Telegram"
    form: ClassVar[DeployForm] = DeployForm(
        secrets=(Secret("token", "the bot's token from @BotFather"),)
    )

    def __init__(
        self, *, runtime: Runtime, cipher: Cipher, api_url: str, public_url: str | None
    ) -> None:
        self.runtime = runtime
        self.cipher = cipher
        self.api_url = api_url.rstrip("/")
        self.public_url = (public_url or "").rstrip("/") or None
        self._lib: ModuleType | None = None
        self._session: Any = None
        self._poll_session: Any = None  # long polls apart: they must not starve the sends
        self._bots: dict[str, Any] = {}  # deployment id -> aiogram Bot
        # deployment id -> (the token polled with, encrypted as stored; its getUpdates loop)
        self._pollers: dict[str, tuple[bytes, asyncio.Task[None]]] = {}
        self._leading = False  # `lead` runs here: this process polls every deployed bot
        self._loading = asyncio.Lock()
        self.pacer = ChatPacer()
        # Told when Telegram refuses a deployment's token for good (the Studio marks it broken
        # and tells its team); called in the background, never holding up a send.
        self.on_revoked: Callable[[str, str], Coroutine[Any, Any, None]] | None = None
        self._reports: set[asyncio.Task[None]] = set()
        self.drafts = Drafts(
            draft=self._send_draft,
            typing=self._typing,
            post=self._post_preview,
            edit=self._edit_preview,
        )

    @property
    def polling(self) -> bool:
        return self.public_url is None

    # -- the library, the session, the bots -------------------------------------------------

    async def _aiogram(self) -> ModuleType:
        async with self._loading:  # one import, one pair of sessions, however many callers
            if self._lib is None:
                lib = await asyncio.to_thread(_import_aiogram)
                server = lib.client.telegram.TelegramAPIServer.from_base(self.api_url)
                sessions = lib.client.session.aiohttp
                self._session = sessions.AiohttpSession(api=server)
                self._poll_session = sessions.AiohttpSession(api=server, limit=1000)
                counted = partial(_count_rate_limits, lib.exceptions.TelegramRetryAfter)
                for session in (self._session, self._poll_session):
                    session.middleware(counted)
                self._lib = lib
        return self._lib

    async def warm(self) -> None:
        """Load aiogram and open the sessions now, so the first update does not wait on them."""
        await self._aiogram()

    async def _bot_with(self, token: str) -> Any:
        lib = await self._aiogram()
        return lib.Bot(token, session=self._session)

    async def _token(self, deployment_id: str) -> str:
        async with self.runtime.db.read() as session:
            row = await session.get(Deployment, deployment_id)
        if row is None or row.credentials is None:
            raise SendError(f"no Telegram token for deployment {deployment_id}", permanent=True)
        return self.cipher.decrypt(row.credentials)

    async def _bot(self, deployment_id: str) -> Any:
        bot = self._bots.get(deployment_id)
        if bot is None:
            bot = await self._bot_with(await self._token(deployment_id))
            self._bots[deployment_id] = bot
        return bot

    def webhook_secret(self, deployment_id: str) -> str:
        return self.cipher.derive(f"telegram-webhook:{deployment_id}", length=32)

    # -- the Channel port ----------------------------------------------------------------------

    def plan(
        self, *, target: str | None, secrets: Mapping[str, str], options: Mapping[str, str]
    ) -> DeployPlan:
        """The bot its token names (a token already deployed is recognised by it); one
        deployment per Telegram bot, whatever Studio bot it serves."""
        token = (secrets.get("token") or "").strip()
        match = BOT_TOKEN.fullmatch(token)
        if match is None:
            raise DeployInputError(
                "give the bot's token from @BotFather (it looks like 123456789:AA...); "
                "it is stored encrypted and never shown again"
            )
        return DeployPlan(
            target=match.group(1),
            credentials=token,
            exclusive="that Telegram bot (token) already serves another deployment: make a "
            "new bot with @BotFather for this one",
        )

    def details(self, deployment_id: str) -> Mapping[str, str]:
        return {}

    def link(self, deployment_id: str, stored: str | None) -> str | None:
        return stored

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        """Check the token with getMe, set the webhook (or start polling), the commands and
        the description; the bot's t.me link."""
        if deployment.credentials is None:
            raise SendError("a Telegram deployment needs the bot's token", permanent=True)
        lib = await self._aiogram()
        bot = await self._bot_with(self.cipher.decrypt(deployment.credentials))
        try:
            me = await bot.get_me()
            if self.polling:
                await bot.delete_webhook(drop_pending_updates=False)  # getUpdates needs none
            else:
                await bot.set_webhook(
                    url=f"{self.public_url}/telegram/bots/{deployment.id}",
                    secret_token=self.webhook_secret(deployment.id),
                    allowed_updates=_UPDATES,
                    drop_pending_updates=False,
                )
            await bot.set_my_commands(
                [lib.types.BotCommand(command=c, description=d) for c, d in _COMMANDS]
            )
            about = deployment.description or deployment.bot_name
            await bot.set_my_short_description(short_description=about[:120])
            if deployment.description:  # shown in the empty chat before /start
                await bot.set_my_description(description=deployment.description[:512])
        except lib.exceptions.TelegramUnauthorizedError:
            raise SendError(
                "Telegram refused that token: check it with @BotFather", permanent=True
            ) from None
        except lib.exceptions.TelegramAPIError as exc:
            raise SendError(f"Telegram answered: {said(exc)}", permanent=True) from None
        self._bots[deployment.id] = bot
        if self._leading:  # else the leader finds it at its next rescan
            self._poll(deployment.id, deployment.credentials)
        return f"https://t.me/{me.username}"

    async def teardown(self, deployment: DeploymentInfo) -> None:
        polled = self._pollers.pop(deployment.id, None)
        if polled is not None:
            polled[1].cancel()
            await asyncio.gather(polled[1], return_exceptions=True)
        bot = self._bots.pop(deployment.id, None)
        if bot is None and deployment.credentials is not None:
            bot = await self._bot_with(self.cipher.decrypt(deployment.credentials))
        if bot is not None:
            lib = await self._aiogram()
            try:
                await bot.delete_webhook()
            except lib.exceptions.TelegramAPIError as exc:
                logger.warning("deleteWebhook failed: %s", said(exc))

    def shows_after(self) -> float:
        return drafts_module.PREVIEW_AFTER_S  # read now: tests shorten it

    def stream(self, address: Address) -> TextSink | None:
        """The answer shown while it is written (`adapters.telegram.drafts`): a draft or an
        edited message in private chats, "typing" in groups; nothing in forum topics."""
        if _topic(address.conversation) is not None:
            return None
        return self.drafts.open(address.deployment_id, int(address.thread or address.conversation))

    async def download(self, deployment_id: str, file: FileRef) -> bytes:
        """The bytes of a voice note a person sent (`FileRef.url` is its Telegram file id):
        `getFile`, then the file itself, at most `MAX_AUDIO_BYTES` (the Bot API serves 20 MB)."""
        errors = (await self._aiogram()).exceptions
        import aiohttp  # loaded with aiogram; its download reports aiohttp's own errors

        if not file.url:
            raise SendError("Telegram named no file to fetch", permanent=True)
        if file.size is not None and file.size > MAX_AUDIO_BYTES:
            raise SendError(f"the voice note is {format_size(file.size)}: too long", permanent=True)
        bot = await self._bot(deployment_id)
        try:
            found = await bot.get_file(file.url)
            if not found.file_path:
                raise SendError("Telegram gave no path for the file", permanent=True)
            data = await bot.download_file(found.file_path)
        except errors.TelegramBadRequest as exc:  # too big for bots, or no such file
            raise SendError(f"Telegram answered: {said(exc)}", permanent=True) from None
        except (errors.TelegramAPIError, errors.ClientDecodeError) as exc:
            raise SendError(f"Telegram answered: {said(exc)}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:  # the file's own download
            raise SendError(f"the file could not be fetched: {type(exc).__name__}") from None
        audio = data.read() if data is not None else b""
        if len(audio) > MAX_AUDIO_BYTES:
            raise SendError("the voice note is too long", permanent=True)
        return audio

    # -- previews: each call only shows something, and a failure never holds up the answer ----

    async def _send_draft(self, deployment: str, chat: int, draft_id: int, text: str) -> bool:
        lib = await self._aiogram()
        method = lib.methods.SendMessageDraft(chat_id=chat, draft_id=draft_id, text=text)
        _, refused = await self._try(deployment, method)
        if refused is not None and refused.kind == "refused":
            # the server has no drafts (or not for this bot): answers are shown by editing a
            # message of their own from now on
            logger.warning(
                "Telegram refused a draft; this bot's answers will be shown by editing a "
                "message instead: %s",
                refused.said,
                extra={"deployment": deployment},
            )
            self.drafts.refused.add(deployment)
        return refused is None

    async def _typing(self, deployment: str, chat: int) -> bool:
        lib = await self._aiogram()
        method = lib.methods.SendChatAction(chat_id=chat, action="typing")
        _, refused = await self._try(deployment, method)
        return refused is None

    async def _post_preview(self, deployment: str, chat: int, text: str) -> int | None:
        """The answer so far as a message of its own (plain text), paced with the chat's
        other sends; its id."""
        lib = await self._aiogram()
        await self.pacer.wait((deployment, chat))
        method = lib.methods.SendMessage(chat_id=chat, text=text)
        sent, refused = await self._try(deployment, method)
        if refused is not None:  # this chat, this time (blocked, a rate limit): no preview
            extra = {"deployment": deployment}
            logger.info("a preview was not sent: %s", refused.said, extra=extra)
            return None
        return int(sent.message_id)

    async def _edit_preview(self, deployment: str, chat: int, message_id: int, text: str) -> bool:
        """The preview message shows `text` now (paced with the chat's other sends)."""
        lib = await self._aiogram()
        await self.pacer.wait((deployment, chat))
        method = lib.methods.EditMessageText(chat_id=chat, message_id=message_id, text=text)
        _, refused = await self._try(deployment, method)
        if refused is None or _NOT_MODIFIED in refused.said:
            return True
        if refused.kind == "refused":
            self._edits_refused(deployment, refused.said)
        return False

    def _edits_refused(self, deployment: str, refused: str) -> None:
        """Telegram refused to edit a preview: unless that was about this message alone,
        the bot's answers are no longer previewed by editing (it gets "typing" instead)."""
        if any(reason in refused for reason in _THIS_MESSAGE):
            return
        logger.warning(
            "Telegram refused to edit a preview; this bot's answers will arrive whole: %s",
            refused,
            extra={"deployment": deployment},
        )
        self.drafts.edits_refused.add(deployment)

    async def _try(self, deployment: str, method: Any) -> tuple[Any, _Refusal | None]:
        """One call that only shows something (a draft, typing, a preview): its result, or why
        Telegram did not take it; a failure never holds up the answer, which is sent whole
        anyway (and it waits `PREVIEW_TIMEOUT_S` at most)."""
        lib = await self._aiogram()
        errors = lib.exceptions
        try:
            bot = await self._bot(deployment)
            return await bot(method, request_timeout=PREVIEW_TIMEOUT_S), None
        except (errors.TelegramBadRequest, errors.TelegramNotFound) as exc:
            return None, _Refusal("refused", said(exc))
        except errors.TelegramAPIError as exc:  # a rate limit, the network: this time only
            return None, _Refusal("failed", said(exc))
        except (UnknownDeploymentError, SendError) as exc:
            return None, _Refusal("failed", str(exc))

    # -- the answer ----------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        """The answer in Telegram HTML, split at 4,096 characters. Where a preview message
        shows it while it was written, the first part replaces that message's text (with what
        a send would carry) instead of coming as a second copy."""
        deployment = message.address.deployment_id
        chat_id = int(message.address.thread or message.address.conversation)
        # No preview after the answer; the message showing it, if any, becomes the answer.
        preview = await self.drafts.finish(deployment, chat_id)
        bot = await self._bot(deployment)
        topic = _topic(message.address.conversation)  # a forum topic answers in that topic
        pieces = split_html(markdown_to_html(message.text))
        stale: int | None = None  # a preview message left showing part of the answer
        last: int | None = None
        if message.file is not None and message.file.mime.startswith("audio/"):
            last = await self._send_voice(bot, deployment, chat_id, topic, message.file)
        for number, piece in enumerate(pieces):
            if number == 0 and preview is not None:
                last, stale = await self._replace(bot, deployment, chat_id, preview, piece)
                if last is not None:
                    continue
            # Once a piece is out, a retry of the whole reply would repeat it: fail for good.
            last = await self._send_piece(bot, deployment, chat_id, topic, piece, number > 0)
        if not pieces:  # nothing to show: the preview of it goes
            stale = preview
        if stale is not None:
            await self._delete(deployment, chat_id, stale)
        if last is None:
            return SendReceipt()
        # A reaction names the message by chat and id: the last piece's (where a reader ends).
        return SendReceipt(platform_id=str(last), ref=f"{chat_id}:{last}")

    async def _send_voice(
        self, bot: Any, deployment: str, chat_id: int, topic: int | None, file: Attachment
    ) -> int:
        """An answer spoken (`runtime.hearing.spoken`): a voice note for Ogg Opus, else an
        audio file; its id. Telegram refusing it fails the send for good."""
        lib = await self._aiogram()
        upload = lib.types.BufferedInputFile(file.payload, filename=file.name)
        as_voice = file.mime == "audio/ogg"
        send = bot.send_voice if as_voice else bot.send_audio
        call = partial(send, chat_id, upload, message_thread_id=topic)
        try:
            sent = await self._api(deployment, chat_id, call, permanent=False)
        except (lib.exceptions.TelegramBadRequest, lib.exceptions.TelegramForbiddenError) as exc:
            raise SendError(f"Telegram answered: {said(exc)}", permanent=True) from None
        return int(sent.message_id)

    async def _send_piece(
        self, bot: Any, deployment: str, chat_id: int, topic: int | None, piece: str, out: bool
    ) -> int:
        """One part of the answer as a new message (`out`: an earlier part is out already);
        its id. HTML Telegram cannot parse goes again once, as the plain text it shows."""
        errors = (await self._aiogram()).exceptions
        for text, parse_mode in ((piece, "HTML"), (plain_text(piece), None)):
            try:
                sent = await self._api(
                    deployment,
                    chat_id,
                    partial(
                        bot.send_message,
                        chat_id=chat_id,
                        text=text,
                        parse_mode=parse_mode,
                        message_thread_id=topic,
                    ),
                    permanent=out,
                )
                return int(sent.message_id)
            except (errors.TelegramBadRequest, errors.TelegramForbiddenError) as exc:
                if not (parse_mode and _UNPARSABLE in said(exc)):
                    raise SendError(f"Telegram answered: {said(exc)}", permanent=True) from None
                logger.warning("Telegram refused a reply's HTML; sent as plain text")
        raise AssertionError("unreachable: plain text has no entities to parse")

    async def _replace(
        self, bot: Any, deployment: str, chat_id: int, preview: int, piece: str
    ) -> tuple[int | None, int | None]:
        """The preview message's text replaced by the answer's first part: (its id, None) once
        it shows it; (None, the preview if it is still there) when the part must come as a new
        message instead (the person deleted the preview, Telegram will not edit it). A failure
        worth another attempt raises `SendError`, and the preview is kept for that attempt: an
        edit is idempotent, so the answer never shows twice."""
        if deployment in self.drafts.edits_refused:
            return None, preview
        errors = (await self._aiogram()).exceptions
        for text, parse_mode in ((piece, "HTML"), (plain_text(piece), None)):
            try:
                await self._api(
                    deployment,
                    chat_id,
                    partial(
                        bot.edit_message_text,
                        chat_id=chat_id,
                        message_id=preview,
                        text=text,
                        parse_mode=parse_mode,
                    ),
                    permanent=False,
                )
                return preview, None
            except SendError as exc:
                if not exc.permanent:
                    self.drafts.keep(deployment, chat_id, preview)
                raise
            except (errors.TelegramBadRequest, errors.TelegramForbiddenError) as exc:
                refused = said(exc)
                if _NOT_MODIFIED in refused:  # the preview shows exactly the answer already
                    return preview, None
                if parse_mode and _UNPARSABLE in refused:
                    logger.warning("Telegram refused a reply's HTML; shown as plain text")
                    continue
                logger.warning(
                    "the answer could not replace its preview (%s); sent as a new message",
                    refused,
                    extra={"deployment": deployment},
                )
                if _GONE in refused:
                    return None, None
                if isinstance(exc, errors.TelegramBadRequest):
                    self._edits_refused(deployment, refused)  # remembered, as a preview's is
                return None, preview
        raise AssertionError("unreachable: plain text has no entities to parse")

    async def _api(
        self, deployment: str, chat_id: int, call: Callable[[], Awaitable[_R]], *, permanent: bool
    ) -> _R:
        """One Bot API call of an answer, paced per chat, Telegram's 429 `retry_after` honoured,
        a revoked token failing for good. Telegram's refusals (aiogram's `TelegramBadRequest`,
        `TelegramForbiddenError`) are raised as they come; the network or a server error as a
        `SendError`, `permanent` when a retry of the whole reply would repeat what is out."""
        errors = (await self._aiogram()).exceptions
        await self.pacer.wait((deployment, chat_id))
        for attempt in range(1, _RETRIES + 1):
            try:
                return await call()
            except errors.TelegramRetryAfter as exc:
                if attempt == _RETRIES or exc.retry_after > MAX_RETRY_AFTER_S:
                    raise SendError("Telegram kept rate-limiting", permanent=permanent) from None
                await asyncio.sleep(exc.retry_after)
            except errors.TelegramUnauthorizedError:
                self._bots.pop(deployment, None)
                self._revoked(deployment)
                raise SendError(
                    "Telegram refused the bot's token (revoked?): deploy it again with a "
                    "new token from @BotFather",
                    permanent=True,
                ) from None
            except (errors.TelegramBadRequest, errors.TelegramForbiddenError):
                raise
            except errors.TelegramAPIError as exc:  # network, server errors: worth a retry
                raise SendError(
                    f"Telegram could not be reached: {said(exc)}", permanent=permanent
                ) from None
        raise AssertionError("unreachable")

    async def _delete(self, deployment: str, chat_id: int, message_id: int) -> None:
        """A preview message the answer did not replace goes (best effort: the answer is out)."""
        lib = await self._aiogram()
        _, refused = await self._try(
            deployment, lib.methods.DeleteMessage(chat_id=chat_id, message_id=message_id)
        )
        if refused is not None:
            logger.info("a stale preview stays: %s", refused.said, extra={"deployment": deployment})

    def _revoked(self, deployment_id: str) -> None:
        if self.on_revoked is None:
            return
        report = asyncio.create_task(
            self.on_revoked(deployment_id, "Telegram refused its token (revoked at @BotFather?)")
        )
        report.add_done_callback(log_failure(logger, "telling the Studio failed"))
        self._reports.add(report)
        report.add_done_callback(self._reports.discard)

    async def close(self) -> None:
        await self.drafts.close_all()
        for session in (self._session, self._poll_session):
            if session is not None:
                await session.close()

    # -- long polling (no public URL) ------------------------------------------------------------

    async def lead(self) -> None:
        """On the cluster's leader only, in polling mode (`ChannelParts.lead`): every deployed
        bot is polled from this process, one getUpdates loop per bot across the workers
        (Telegram refuses a second). Bots deployed, given another token or undeployed on
        another worker are found at the next rescan. Cancelled: the pollers stop (what they
        recorded is answered)."""
        self._leading = True
        try:
            while True:
                try:
                    await self._rescan()
                except Exception:  # the database is away: the pollers go on, ask again
                    logger.warning("looking for Telegram bots to poll failed", exc_info=True)
                await asyncio.sleep(RESCAN_EVERY_S)
        finally:
            self._leading = False
            tasks = [task for _, task in self._pollers.values()]
            self._pollers.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _rescan(self) -> None:
        """Poll each deployed bot with its stored token; stop the pollers of bots undeployed or
        given another token. A poller started since the read (a deploy here) is left alone."""
        known = dict(self._pollers)
        query = select(Deployment.id, Deployment.credentials).where(Deployment.channel == self.kind)
        async with self.runtime.db.read() as session:
            deployed = {i: c for i, c in (await session.exec(query)).all() if c is not None}
        stopped = []
        for deployment_id, (credentials, task) in known.items():
            if deployed.get(deployment_id) != credentials:
                if self._pollers.get(deployment_id) == (credentials, task):
                    del self._pollers[deployment_id]
                task.cancel()
                stopped.append(task)
        await asyncio.gather(*stopped, return_exceptions=True)
        for deployment_id, credentials in deployed.items():
            if deployment_id not in self._pollers:
                self._poll(deployment_id, credentials)

    def _poll(self, deployment_id: str, credentials: bytes | None) -> None:
        """Poll with this token (a poller with another one stops; a refused one starts again)."""
        if credentials is None:
            return
        running = self._pollers.get(deployment_id)
        if running is not None:
            if running[0] == credentials and not running[1].done():
                return
            running[1].cancel()
        task = asyncio.create_task(self._poll_loop(deployment_id, credentials))
        task.add_done_callback(log_failure(logger, "a Telegram poller stopped"))
        self._pollers[deployment_id] = (credentials, task)

    async def _poll_loop(self, deployment_id: str, credentials: bytes) -> None:
        """The deployment's updates by long polling, until Telegram refuses its token."""
        lib = await self._aiogram()
        errors = lib.exceptions
        bot = lib.Bot(self.cipher.decrypt(credentials), session=self._poll_session)
        extra = {"deployment": deployment_id}

        async def fetch(offset: int | None) -> list[Any]:
            return list(
                await bot.get_updates(
                    offset=offset,
                    timeout=POLL_TIMEOUT_S,
                    allowed_updates=_UPDATES,
                    request_timeout=POLL_TIMEOUT_S + 10,
                )
            )

        async def record(update: Any) -> None:
            await self._record(deployment_id, update)

        await poll_updates(
            fetch,
            record,
            refused=errors.TelegramUnauthorizedError,
            failed=errors.TelegramAPIError,
            logger=logger,
            extra=extra,
        )
        async with self.runtime.db.read() as session:
            row = await session.get(Deployment, deployment_id)
        if row is None or row.credentials != credentials:
            return  # undeployed or given another token meanwhile: that token is not in use
        logger.warning("stopped polling: Telegram refused the token", extra=extra)
        self._revoked(deployment_id)

    # -- inbound -----------------------------------------------------------------------------

    async def receive(self, deployment_id: str, secret: str, update: dict[str, Any] | None) -> int:
        """An update for a deployment (None: the body is no JSON object): recorded
        (deduplicated by update_id) before the 200. Returns the HTTP status."""
        if not hmac.compare_digest(secret.encode(), self.webhook_secret(deployment_id).encode()):
            return 401  # checked first: costs no database read, tells nothing about the id
        if update is None:
            return 400
        try:
            target = await self.runtime.target(deployment_id)
        except UnknownDeploymentError:
            return 404
        if target.channel != self.kind:
            return 404
        lib = await self._aiogram()
        try:
            parsed = lib.types.Update.model_validate(update)
        except ValueError:
            logger.info("ignored a malformed Telegram update")
            return 200
        await self._record(deployment_id, parsed)
        return 200

    async def _record(self, deployment_id: str, parsed: Any) -> None:
        """An update (an aiogram `Update`) into the runtime: a message recorded, deduplicated by
        `update_id`, answered in the background; a reaction rates the answer it is on."""
        if parsed.message_reaction is not None:
            await self._react(deployment_id, parsed.message_reaction)
            return
        message = parsed.message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return  # edits, channel posts, other bots: nothing to answer
        text = message.text or message.caption or ""
        if not (text or message.document or message.photo or message.voice or message.audio):
            return  # joins, leaves, pins: service messages say nothing to the bot
        if text.startswith("/"):  # `/start@some_bot` from a group's command menu
            command, _, rest = text.partition(" ")
            command = command.split("@", 1)[0]
            # `/start PAYLOAD` is a deep link (t.me/BOT?start=PAYLOAD) opening the chat: a start.
            keep = rest and command != START_COMMAND
            text = command + (f" {rest}" if keep else "")
        chat = str(message.chat.id)
        in_topic = message.is_topic_message and message.message_thread_id
        topic = f":{message.message_thread_id}" if in_topic else ""
        address = Address(
            channel=self.kind,
            deployment_id=deployment_id,
            conversation=chat + topic,
            user=f"telegram:{message.from_user.id}",
            thread=chat,
        )
        files: tuple[FileRef, ...] = ()
        speech = message.voice or message.audio  # heard as words (`runtime.hearing`)
        if speech is not None:
            name = getattr(speech, "file_name", None) or "voice note"
            mime = speech.mime_type or "audio/ogg"
            files = (
                FileRef(
                    name=name, url=speech.file_id, mime=mime, size=speech.file_size, voice=True
                ),
            )
        elif message.document is not None:
            files = (FileRef(name=message.document.file_name or "document"),)
        elif message.photo:
            files = (FileRef(name="photo"),)
        await self.runtime.feed(
            IncomingMessage(
                address=address,
                text=text if (message.text or not files) else "",
                files=files,
                dedupe_key=f"telegram:{deployment_id}:{parsed.update_id}",
            )
        )

    async def _react(self, deployment_id: str, reaction: Any) -> None:
        """A person's reactions to a message changed (an aiogram `MessageReactionUpdated`): when
        the message is an answer this deployment sent, their rating of it is set or taken back.
        Anonymous group admins (`actor_chat`) and bots are not people whose rating counts."""
        person = reaction.user
        if person is None or person.is_bot or reaction.actor_chat is not None:
            return
        rating = reaction_rating([getattr(r, "emoji", "") for r in reaction.new_reaction])
        if rating is None:
            return
        await self.runtime.ratings.by_ref(
            deployment_id=deployment_id,
            ref=f"{reaction.chat.id}:{reaction.message_id}",
            user=f"telegram:{person.id}",
            channel=self.kind,
            rating=rating,
        )


def reaction_rating(emojis: list[str]) -> Rating | None:
    """The rating a person's reactions (emoji, "" for a custom one) give: none left is taken
    back (0); else the last that rates counts; None when none of them rates."""
    if not emojis:
        return 0
    for emoji in reversed(emojis):
        emoji = emoji.replace("\ufe0f", "")  # "❤️" as some clients send it is "❤"
        if emoji in _UP:
            return 1
        if emoji in _DOWN:
            return -1
    return None


@dataclass(frozen=True, slots=True)
class _Refusal:
    kind: str  # "refused": Telegram said no (bad request, no such method); "failed": this time
    said: str


def _topic(conversation: str) -> int | None:
    """The forum topic of a conversation `"{chat}:{topic}"`; None for a chat as a whole."""
    _, _, topic = conversation.partition(":")
    return int(topic) if topic.isdigit() else None


def router() -> APIRouter:
    """`POST /telegram/bots/{deployment_id}`: the webhook of every generated bot."""
    routes = APIRouter()

    @routes.post("/telegram/bots/{deployment_id}", include_in_schema=False)
    async def telegram_update(deployment_id: str, request: Request) -> Response:
        bots: TelegramBots = built(request, TelegramBots.kind)
        secret, update = await delivery(request)
        return Response(status_code=await bots.receive(deployment_id, secret, update))

    return routes
