"""The Studio's own Telegram bot: a python-telegram-bot `Application` (token
`TELEGRAM_BUILDER_TOKEN`; its bot, requests and lifecycle) whose updates this module turns into
the Studio's `IncomingMessage`s, and the `telegram-studio` channel that sends the Studio's
answers back as escaped HTML with inline keyboards.

Updates come by webhook on `/telegram/studio` (with a secret derived from the service's key) or,
without `STUDIO_PUBLIC_URL`, through the project's own `getUpdates` loop, which confirms a batch
only once it is recorded. The bot starts in the background, so `/healthz` never waits on Telegram.

Telegram has no workspace: a person talks to the team they joined last with `/join CODE` (a code
from `/invite` in any front). Strangers get an explanation and nothing else, unless
`STUDIO_TELEGRAM_OPEN_SIGNUP` gives them a personal team on `/start`; their messages are never
recorded. A BotFather token sent in the DM is deleted from the chat at once and handed to the
Studio sealed with the service's cipher, so it is never stored or logged in clear. So is the
next text after `/secret set NAME`: while a member's secret request is open, their next DM is the
secret's value (deleted from the chat, sealed, handed over), never a message to record.

When @BotFather lets the Studio's bot manage bots (Bot API 9.6), a token request also offers a
`t.me/newbot/...` link: the member creates the bot in Telegram, the Studio's bot receives a
`managed_bot` update, fetches the new bot's token with `getManagedBotToken` and hands it over
sealed, like a pasted one. Nobody copies a token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, ClassVar
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from adapters.plugin import built
from adapters.telegram.bots import MAX_RETRY_AFTER_S, POLL_TIMEOUT_S
from adapters.telegram.common import delivery, log_failure, poll_updates, said
from adapters.telegram.pacing import ChatPacer
from adapters.telegram.render import fits_button, full_text, split_html, to_html
from adapters.telegram.rooms import TelegramRooms
from adapters.telegram.tokens import MANAGED_BOT, token_action
from builders.tokens import redact_studio_input, typed_secret
from runtime.channel import Capabilities, DeploymentInfo, SendError, SendReceipt
from runtime.cipher import BOT_TOKEN, Cipher, redact_tokens
from runtime.handoff import RESUME
from runtime.messages import Address, FileRef, IncomingMessage, OutgoingMessage
from runtime.metrics import RATE_LIMITED
from runtime.runtime import Runtime
from studio.address import TELEGRAM_STUDIO, studio_address
from studio.commands import COMMANDS
from studio.confirmations import SECRET_REQUEST, Confirmations, Pending
from studio.errors import OperationError
from studio.handoff import RESUME_HERE
from studio.members import Members
from studio.replies import RUN_PREFIX, deploy_secret, secret_action

logger = logging.getLogger(__name__)
_stopped = log_failure(logger, "the Studio's Telegram bot stopped")

_RETRIES = 3
_UPDATES = ["message", "callback_query", "managed_bot"]
_GROUPS = ("group", "supergroup")
_NOT_A_MEMBER = (
    "Only members of a team can set where a bot hands over: send me /join CODE in a private "
    "chat first (an admin gets a code with /invite)."
)
_NOT_THE_TEAM = (
    "Only members of the bot's team in Chat Studio can answer here: what you write is not "
    "passed on."
)
_GROUP_TAKES = (
    "In a group I take only /handoff BOT to here, /schedule BOT … to here and /stats BOT … here. "
    "Send me {command} in a private chat."
)
_TEXT_ONLY = "Only text is passed on to the person: write it in words, please."
_BUTTONS_PER_ROW = 2
_STRANGER_UPDATES = 10_000
_STRANGER = (
    "Hi! I am the Chat Studio, where teams build and run chatbots. I only work for members of a "
    "team: ask an admin of yours for an invite code (they get one with /invite) and send it "
    "here as /join CODE."
)


def _import_ptb() -> Any:
    import telegram
    import telegram.error
    import telegram.ext

    return telegram


# What python-telegram-bot's `de_json` raises on an update of the wrong shape (an object where a
# number belongs, a date past the platform's clock): it checks no types, it just fails.
_MALFORMED = (AttributeError, KeyError, TypeError, ValueError, OverflowError)


class TelegramStudio:
    """The Studio on Telegram: inbound (webhook or polling) and the `telegram-studio` channel."""

    kind: ClassVar[str] = TELEGRAM_STUDIO
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, files=True, edits=True)

    def __init__(
        self,
        *,
        token: str,
        api_url: str,
        public_url: str | None,
        open_signup: bool,
        runtime: Runtime,
        members: Members,
        cipher: Cipher,
        pacer: ChatPacer | None = None,
    ) -> None:
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.public_url = (public_url or "").rstrip("/") or None
        self.open_signup = open_signup
        self.runtime = runtime
        self.members = members
        self.requests = Confirmations(runtime.db)  # open secret requests
        self.cipher = cipher
        self.pacer = pacer or ChatPacer()
        self.username: str | None = None
        self._ptb: Any = None
        self._app: Any = None
        self._ready = asyncio.Event()
        self._starting: asyncio.Task[None] | None = None
        # Strangers' updates are never recorded; a redelivery of one is recognised here (and
        # people outside a team who reply in a handoff's group, told once).
        self._strangers_seen: OrderedDict[Hashable, None] = OrderedDict()
        self.rooms = TelegramRooms(self)  # groups that take handed-over conversations

    @property
    def bot(self) -> Any:
        """python-telegram-bot's `Bot` (once `ready`)."""
        return self._app.bot

    @property
    def ptb(self) -> Any:
        """The python-telegram-bot package (once `ready`)."""
        return self._ptb

    @property
    def errors(self) -> Any:
        """python-telegram-bot's error classes (once `ready`)."""
        return self._ptb.error

    @property
    def secret(self) -> str:
        return self.cipher.derive("telegram-webhook:studio", length=32)

    def new_bot_offer(self, bot: str, secret: str, address: Address) -> str | None:
        """Beside the request for a Telegram deployment's token, in this bot's DM: the t.me
        link that creates a Telegram bot for `bot`, managed by the Studio's bot (its token then
        comes with a `managed_bot` update, `_on_managed_bot`); None elsewhere, or unless
        @BotFather lets this bot manage bots."""
        if secret != "token" or address.channel != TELEGRAM_STUDIO:
            return None
        if self._app is None or not self._app.bot.bot.can_manage_bots:
            return None
        link = f"https://t.me/newbot/{self.username}/{suggested_username(bot)}?name={quote(bot)}"
        return (
            f"Or create a new Telegram bot for it without any token: open {link} and confirm "
            "(within 5 minutes); Telegram gives me its token directly."
        )

    # -- start and stop --------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (getMe, the command menu, the webhook); every worker
        does, to send. In polling mode only the leader polls (`poll`)."""
        self._starting = asyncio.create_task(self._start())
        self._starting.add_done_callback(_stopped)

    async def _start(self) -> None:
        ptb = self._ptb = await asyncio.to_thread(_import_ptb)
        ext = ptb.ext
        app = (
            ext.Application.builder()
            .token(self.token)
            .base_url(f"{self.api_url}/bot")
            .base_file_url(f"{self.api_url}/file/bot")
            .updater(None)
            .build()
        )
        delay = 1.0
        while True:  # Telegram may be unreachable at start: keep trying, never block the rest
            try:
                await app.initialize()  # getMe
                await app.bot.set_my_commands(_menu(ptb))
                if self.public_url is None:
                    await app.bot.delete_webhook(drop_pending_updates=False)
                else:
                    await app.bot.set_webhook(
                        url=f"{self.public_url}/telegram/studio",
                        secret_token=self.secret,
                        allowed_updates=_UPDATES,
                    )
                break
            except ptb.error.InvalidToken:
                logger.error("TELEGRAM_BUILDER_TOKEN was refused by Telegram: check it")
                return
            except ptb.error.TelegramError as exc:
                logger.warning("the Studio's Telegram bot could not start: %s", said(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        self._app = app
        self.username = app.bot.username
        self._ready.set()

    async def stop(self) -> None:
        """Shutdown: a connection still being tried is given up."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)

    async def close(self) -> None:
        await self.stop()
        if self._app is not None:
            await self._app.shutdown()

    async def ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # -- inbound ---------------------------------------------------------------------------------

    async def receive(self, secret: str, update: dict[str, Any] | None) -> int:
        """A webhook delivery (None: the body is no JSON object): checked, recorded,
        acknowledged. Returns the HTTP status."""
        if not hmac.compare_digest(secret.encode(), self.secret.encode()):
            return 401
        if update is None:
            return 400
        if self._app is None:
            return 503  # still starting: Telegram delivers it again
        try:
            parsed = self._ptb.Update.de_json(update, self._app.bot)
        except _MALFORMED:
            logger.info("ignored a malformed Telegram update")
            return 200
        await self._dispatch(parsed)  # raises when it cannot be recorded: no 200, Telegram retries
        return 200

    async def poll(self) -> None:
        """On the cluster's leader only, in polling mode (`ChannelParts.lead`): the Studio's
        updates by long polling once connected, until Telegram refuses its token (Telegram
        refuses a second getUpdates loop, so one worker polls)."""
        await self._ready.wait()
        app = self._app
        assert app is not None
        errors = self._ptb.error

        async def fetch(offset: int | None) -> list[Any]:
            return list(
                await app.bot.get_updates(
                    offset=offset,
                    timeout=POLL_TIMEOUT_S,
                    read_timeout=POLL_TIMEOUT_S + 10,
                    allowed_updates=_UPDATES,
                )
            )

        await poll_updates(
            fetch,
            self._dispatch,
            refused=errors.InvalidToken,
            failed=errors.TelegramError,
            logger=logger,
        )
        logger.error("stopped polling: Telegram refused TELEGRAM_BUILDER_TOKEN")

    async def _dispatch(self, update: Any) -> None:
        """Route an update to its handler. Not `Application.process_update`: that swallows a
        handler's exception, and an update that could not be recorded must not be confirmed."""
        if update.callback_query is not None:
            await self._on_button(update)
        elif update.managed_bot is not None:
            await self._on_managed_bot(update)
        elif update.effective_chat is not None and update.effective_chat.type == "private":
            await self._on_message(update)
        elif update.effective_chat is not None and update.effective_chat.type in _GROUPS:
            await self._on_group_message(update)

    async def _on_message(self, update: Any) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        identity = f"telegram:{user.id}"
        text = message.text or message.caption or ""
        token = BOT_TOKEN.search(text)
        if token is not None or typed_secret(text):  # out of the chat before anything else
            await self._delete(message)
        text = _command_text(text)
        team_id = await self.members.home_team(identity)
        if team_id is None:
            if self._first_delivery(update.update_id):
                await self._stranger(message, identity, user, text, handed=token is not None)
            return
        address = studio_address(TELEGRAM_STUDIO, team_id, identity, thread=str(message.chat_id))
        dedupe = f"telegram-studio:{update.update_id}"
        request = await self._secret_request(team_id, identity, message, token=token is not None)
        if request is not None:  # the value of a secret: out of the chat, sealed, never recorded
            if token is None:
                await self._delete(message)
            wants_token = deploy_secret(request.command) == ("telegram", "token")
            value = token.group(0) if token is not None and wants_token else message.text
            incoming = IncomingMessage(
                address=address,
                action=secret_action(self.cipher, value, request=request.id),
                dedupe_key=dedupe,
            )
        elif token is not None:
            incoming = IncomingMessage(
                address=address, action=token_action(self.cipher, token.group(0)), dedupe_key=dedupe
            )
        else:
            incoming = IncomingMessage(
                address=address,
                text="help" if text == "/start" else redact_studio_input(text),
                files=_files(message),
                dedupe_key=dedupe,
            )
        await self.runtime.feed(incoming)

    async def _secret_request(
        self, team_id: int, identity: str, message: Any, *, token: bool
    ) -> Pending | None:
        """The open secret request a DM answers (None: an ordinary message): with its text, or
        with a bot token in a caption when a Telegram deployment waits for one."""
        if message.chat.type != "private" or not (message.text or token):
            return None
        request = await self.requests.waiting(
            team_id=team_id, identity=identity, kind=SECRET_REQUEST
        )
        if request is None or message.text:
            return request
        return request if deploy_secret(request.command) == ("telegram", "token") else None

    async def _on_group_message(self, update: Any) -> None:
        """In a group the Studio's bot is in: a reply to one of a handoff's messages (the team
        answering, or `/resume`), or a command about the group by a member of a team
        (`/handoff BOT to here`, `/schedule … to here`, `/stats BOT daily at 9:00 here`). The
        rest of the group's talk is not the Studio's business."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        text = _command_text(message.text or message.caption or "")
        chat = str(message.chat_id)
        replied = message.reply_to_message
        desk = self.runtime.handoffs
        team = None
        if replied is not None:
            team = await desk.team_in_room("telegram", chat, str(replied.message_id))
        if team is not None:
            if await self.members.role_of(team, f"telegram:{user.id}") is None:
                if self._first_delivery(("outsider", chat, user.id)):  # told once, not each time
                    await self._say(message.chat_id, _NOT_THE_TEAM, reply_to=message.message_id)
                return
            if not text.strip():  # a sticker, a photo: nothing to pass on, and they should know
                if self._first_delivery(update.update_id):
                    await self._say(message.chat_id, _TEXT_ONLY, reply_to=message.message_id)
                return
            await desk.from_team(
                kind="telegram",
                room=chat,
                thread=str(replied.message_id),
                user=f"telegram:{user.id}",
                text=redact_tokens(text),
                dedupe_key=f"telegram-studio:{update.update_id}",
            )
            return
        command = text.split(None, 1)[0].lower() if text else ""
        if command == RESUME[0]:
            if self._first_delivery(update.update_id):
                await self._say(message.chat_id, RESUME_HERE)
            return
        if not _for_the_group(command, text):
            addressed = self._addressed(message.text or message.caption or "")  # from the menu
            if addressed and self._first_delivery(update.update_id):
                reply = _GROUP_TAKES.format(command=command)
                await self._say(message.chat_id, reply, reply_to=message.message_id)
            return
        identity = f"telegram:{user.id}"
        team_id = await self.members.home_team(identity)
        if team_id is None:
            if self._first_delivery(update.update_id):
                await self._say(message.chat_id, _NOT_A_MEMBER)
            return
        address = studio_address(TELEGRAM_STUDIO, team_id, identity, thread=chat)
        await self.runtime.feed(
            IncomingMessage(
                address=address,
                text=redact_studio_input(text),
                dedupe_key=f"telegram-studio:{update.update_id}",
            )
        )

    def _addressed(self, text: str) -> bool:
        """A command named for this bot (`/bots@chat_studio_bot`, as a group's menu sends it)."""
        command = text.split(None, 1)[0] if text.startswith("/") else ""
        return bool(self.username) and command.lower().endswith(f"@{self.username}".lower())

    async def send_paced(self, chat_id: int, call: Any, *, permanent: bool) -> Any:
        """One Bot API call in `chat_id`, paced and with rate limits honoured (`_send`)."""
        return await self._send(chat_id, call, permanent=permanent)

    async def _on_button(self, update: Any) -> None:
        query, user = update.callback_query, update.effective_user
        if query is None or user is None:
            return
        await self._quietly(query.answer())  # stops the button's spinner
        identity = f"telegram:{user.id}"
        team_id = await self.members.home_team(identity)
        message = query.message
        if team_id is None or message is None or not query.data:
            return
        await self._quietly(message.edit_reply_markup(reply_markup=None))  # clicked once
        address = studio_address(TELEGRAM_STUDIO, team_id, identity, thread=str(message.chat.id))
        await self.runtime.feed(
            IncomingMessage(
                address=address,
                action=redact_tokens(query.data),  # a forged click is still never a stored token
                dedupe_key=f"telegram-studio:{update.update_id}",
            )
        )

    async def _on_managed_bot(self, update: Any) -> None:
        """A member created a bot through the Studio's link (or its token changed): fetch its
        token and hand it over sealed, as if they had pasted it. A transient failure raises, so
        the update is not confirmed and comes again."""
        creator, created = update.managed_bot.user, update.managed_bot.bot
        identity = f"telegram:{creator.id}"
        team_id = await self.members.home_team(identity)
        if team_id is None:
            logger.info("ignored a managed bot created by someone in no team")
            return
        errors = self._ptb.error
        try:
            token = await self._app.bot.get_managed_bot_token(user_id=created.id)
        except (errors.BadRequest, errors.Forbidden) as exc:
            await self._say(
                creator.id, f"Telegram did not give me @{created.username}'s token: {said(exc)}"
            )
            return
        address = studio_address(TELEGRAM_STUDIO, team_id, identity, thread=str(creator.id))
        request = await self.requests.waiting(
            team_id=team_id, identity=identity, kind=SECRET_REQUEST
        )
        if request is not None and deploy_secret(request.command) == ("telegram", "token"):
            action = secret_action(self.cipher, token, request=request.id)  # as if pasted
        else:
            action = token_action(self.cipher, token, how=MANAGED_BOT)
        await self.runtime.feed(
            IncomingMessage(
                address=address, action=action, dedupe_key=f"telegram-studio:{update.update_id}"
            )
        )

    def _first_delivery(self, update_id: Hashable) -> bool:
        """The first time an update (or another key) is seen of the last few thousand."""
        if update_id in self._strangers_seen:
            return False
        self._strangers_seen[update_id] = None
        if len(self._strangers_seen) > _STRANGER_UPDATES:
            self._strangers_seen.popitem(last=False)
        return True

    async def _stranger(
        self, message: Any, identity: str, user: Any, text: str, *, handed: bool
    ) -> None:
        """Someone in no team: `/join CODE`, open sign-up on `/start`, or an explanation."""
        command, _, rest = text.partition(" ")
        if command in ("/join", "join") and rest.strip():
            try:
                joined = await self.members.join(identity, rest.strip())
            except OperationError as exc:
                await self._say(message.chat_id, exc.message)
                return
            await self._say(
                message.chat_id,
                f"Welcome to *{joined.team}*! You joined as {joined.role.value}. "
                "Say /help to see what I can do.",
            )
            return
        if command == "/start" and self.open_signup:
            name = f"telegram-{user.id}"
            try:
                await self.members.personal_team(identity, name=name)
            except OperationError as exc:
                await self._say(message.chat_id, exc.message)
                return
            await self._say(
                message.chat_id,
                f"Welcome! Your personal team *{name}* is ready and you own it. Create a bot "
                "with `/newbot NAME`, or say /help. Someone's invite code (/join CODE) moves "
                "you to their team.",
            )
            return
        explanation = _STRANGER
        if self.open_signup:
            explanation += " Or send /start for a team of your own."
        if handed:
            explanation += " (I deleted the token you sent; nothing was kept.)"
        await self._say(message.chat_id, explanation)

    # -- the channel port ---------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        if not await self.ready(30.0):
            raise SendError("the Studio's Telegram bot is not connected yet")
        ptb = self._ptb
        chat_id = int(message.address.thread or 0)
        pieces = split_html(to_html(full_text(message))) or ([] if message.file else [" "])
        markup = _keyboard(ptb, message)
        sent: Any = None
        for number, piece in enumerate(pieces):
            last = number == len(pieces) - 1
            sent = await self._send(
                chat_id,
                lambda piece=piece, last=last: self._app.bot.send_message(
                    chat_id=chat_id,
                    text=piece,
                    parse_mode="HTML",
                    reply_markup=markup if last else None,
                ),
                permanent=number > 0,
            )
        if message.file is not None:
            file = message.file
            upload = ptb.InputFile(file.payload, filename=file.name)
            bot = self._app.bot
            shared = await self._send(
                chat_id,
                (lambda: bot.send_photo(chat_id=chat_id, photo=upload))
                if file.is_image
                else (lambda: bot.send_document(chat_id=chat_id, document=upload)),
                permanent=sent is not None,  # after the text, a retry would send it twice
            )
            sent = sent or shared
        return SendReceipt(platform_id=str(sent.message_id) if sent is not None else None)

    async def _send(self, chat_id: int, call: Any, *, permanent: bool) -> Any:
        """One Bot API call, paced per chat, with Telegram's `retry_after` honoured."""
        errors = self._ptb.error
        for attempt in range(1, _RETRIES + 1):
            await self.pacer.wait((TELEGRAM_STUDIO, chat_id))
            try:
                return await call()
            except errors.RetryAfter as exc:
                RATE_LIMITED.labels(TELEGRAM_STUDIO).inc()
                wait = _seconds(exc.retry_after)
                if attempt == _RETRIES or wait > MAX_RETRY_AFTER_S:
                    raise SendError("Telegram kept rate-limiting", permanent=permanent) from None
                await asyncio.sleep(wait)
            except (errors.BadRequest, errors.Forbidden, errors.InvalidToken) as exc:
                raise SendError(f"Telegram answered: {said(exc)}", permanent=True) from None
            except errors.TelegramError as exc:  # network, server errors: worth a retry
                raise SendError(
                    f"Telegram could not be reached: {said(exc)}", permanent=permanent
                ) from None
        raise AssertionError("unreachable")

    async def edit(self, message: OutgoingMessage, platform_id: str) -> None:
        """Replace the text of a message the Studio sent (a progress line)."""
        chat_id = int(message.address.thread or 0)
        text = (split_html(to_html(full_text(message))) or [" "])[0]
        await self._send(
            chat_id,
            lambda: self._app.bot.edit_message_text(
                chat_id=chat_id, message_id=int(platform_id), text=text, parse_mode="HTML"
            ),
            permanent=True,
        )

    async def fetch_file(self, file: FileRef, limit: int) -> bytes:
        """A document sent to the Studio's bot (Telegram serves bots files up to 20 MB)."""
        if not await self.ready(10.0):
            raise SendError("the Studio's Telegram bot is not connected yet")
        file_id = (file.url or "").removeprefix("telegram-file:")
        if not file_id or file_id == file.url:
            raise SendError("Telegram gave no id for the file", permanent=True)
        try:
            found = await self._app.bot.get_file(file_id)
            if found.file_size is not None and found.file_size > limit:
                raise SendError(f"the file is over {limit // (1024 * 1024)} MB", permanent=True)
            return bytes(await found.download_as_bytearray())
        except self._ptb.error.TelegramError as exc:
            raise SendError(f"Telegram answered: {said(exc)}") from None

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        raise SendError("the Studio's Telegram bot hosts no deployments", permanent=True)

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None

    # -- helpers -------------------------------------------------------------------------------

    async def _say(self, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
        """A direct answer to someone outside any team (nothing of theirs is recorded), as a
        reply to their message `reply_to` when given."""
        await self.pacer.wait((TELEGRAM_STUDIO, chat_id))  # a flood queues, not 429s
        reply = None
        if reply_to is not None:
            reply = self._ptb.ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        await self._quietly(
            self._app.bot.send_message(
                chat_id=chat_id, text=to_html(text), parse_mode="HTML", reply_parameters=reply
            )
        )

    async def _delete(self, message: Any) -> None:
        await self._quietly(message.delete())

    async def _quietly(self, call: Any) -> None:
        """A call worth one try: its failure is logged (and a 429 counted), never raised."""
        errors = self._ptb.error
        try:
            await call
        except errors.TelegramError as exc:
            if isinstance(exc, errors.RetryAfter):
                RATE_LIMITED.labels(TELEGRAM_STUDIO).inc()
            logger.warning("a Telegram call failed: %s", said(exc))


def suggested_username(bot: str) -> str:
    """A Telegram username for a Studio bot's name: 5 to 32 of [A-Za-z0-9_], starting with a
    letter and ending in "bot", as Telegram requires (the member may change it before creating
    the bot)."""
    base = re.sub(r"[^A-Za-z0-9]+", "_", bot).strip("_")
    if not base[:1].isalpha():
        base = f"my_{base}".rstrip("_")
    if not base.lower().endswith("bot"):
        base = f"{base}_bot"
    if len(base) > 32:
        base = base[:28].rstrip("_") + "_bot"
    return base


_HERE = re.compile(r"\bhere\b", re.IGNORECASE)


def _for_the_group(command: str, text: str) -> bool:
    """A command said in a group that the Studio takes there: a handoff, or a schedule or a
    stats report to that group (`here`)."""
    return command == "/handoff" or (
        command in ("/schedule", "/stats") and _HERE.search(text) is not None
    )


def _command_text(text: str) -> str:
    """`/newbot@studio_bot faq` (a command picked from the menu) as `/newbot faq`."""
    if not text.startswith("/"):
        return text
    command, _, rest = text.partition(" ")
    return command.split("@", 1)[0] + (f" {rest}" if rest else "")


def _files(message: Any) -> tuple[FileRef, ...]:
    document = message.document
    if document is not None:
        return (
            FileRef(
                name=document.file_name or "document",
                url=f"telegram-file:{document.file_id}",
                size=document.file_size,
                mime=document.mime_type,
            ),
        )
    if message.photo:
        return (FileRef(name="photo", url=f"telegram-file:{message.photo[-1].file_id}"),)
    return ()


def _keyboard(ptb: Any, message: OutgoingMessage) -> Any:
    """Buttons as an inline keyboard. A button whose action does not fit Telegram's 64 bytes of
    callback data is left out when it runs a command (the text names the command)."""
    buttons = [
        ptb.InlineKeyboardButton(text=b.label, callback_data=b.action)
        for b in message.buttons
        if fits_button(b.action)
    ]
    dropped = [b for b in message.buttons if not fits_button(b.action)]
    if dropped and not all(b.action.startswith(RUN_PREFIX) for b in dropped):
        logger.warning("a Studio button's action is too long for Telegram: %s", dropped[0].label)
    if not buttons:
        return None
    rows = [buttons[i : i + _BUTTONS_PER_ROW] for i in range(0, len(buttons), _BUTTONS_PER_ROW)]
    return ptb.InlineKeyboardMarkup(rows)


def _menu(ptb: Any) -> list[Any]:
    """The command menu: every Studio command with its one-line summary."""
    menu = [ptb.BotCommand(c.name, c.summary[:256]) for c in COMMANDS if c.name.isalnum()]
    return menu[:100]


def _seconds(value: Any) -> float:
    """python-telegram-bot gives `retry_after` as seconds or as a timedelta (by version)."""
    return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)


def router() -> APIRouter:
    """`POST /telegram/studio`: the webhook of the Studio's own bot."""
    routes = APIRouter()

    @routes.post("/telegram/studio", include_in_schema=False)
    async def telegram_studio(request: Request) -> Response:
        studio: TelegramStudio = built(request, TELEGRAM_STUDIO)
        secret, update = await delivery(request)
        return Response(status_code=await studio.receive(secret, update))

    return routes
