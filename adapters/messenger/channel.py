"""The `messenger` channel: generated bots on a Facebook Page through the Messenger Platform,
one deployment per Page, each with its Page access token and the app secret of its Meta app.

Inbound (`adapters.meta.webhook`): Meta posts to `/messenger/{deployment_id}` once the app is
subscribed to the Page (`setup`); a signed post's messages and postbacks are recorded through
`Runtime.feed` (deduplicated by mid: Meta redelivers until it gets a 200) and answered in the
background; deliveries are reported to the runtime, which keeps each send by the mid it
returned, and a read (a watermark: everything before it) reports the delivered messages it
covers; a reaction rates the answer it is on.

Outbound (`POST /{page-id}/messages`): a reply (a model's Markdown) as plain text in pieces of
2,000 characters, buttons as quick replies on its last message, a file uploaded with the
message that carries it; "typing" while a slower answer is written (`adapters.messenger.typing`).
Messenger lets a Page write freely for 24 hours after the person's last message (the standard
messaging window, `messaging_type: RESPONSE`); outside it there are no templates, only a message
tag for what the tag allows (`MESSAGE_TAG` with the deployment's `tag`), and without one a
proactive message fails for good, saying how to set one. Meta's own verdict (#10, subcode
2018278) is the safety net when the window was thought open.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.messenger import render
from adapters.messenger import typing as typing_module
from adapters.messenger.media import upload_of
from adapters.messenger.payloads import (
    KIND,
    Delivery,
    Entry,
    Event,
    Reaction,
    WebhookPost,
    incoming,
    rating,
)
from adapters.meta.accounts import MetaAccount, MetaCredentials, deploy_secrets
from adapters.meta.channel import MetaChannel
from adapters.meta.graph import GraphError, failure
from adapters.meta.media import Upload
from adapters.meta.text import numbered
from adapters.meta.webhook import first_problem
from runtime.channel import (
    Capabilities,
    DeployForm,
    DeployInputError,
    DeploymentInfo,
    DeployPlan,
    Option,
    Secret,
    SendError,
    SendReceipt,
)
from runtime.cipher import Cipher
from runtime.llm import TextSink
from runtime.messages import Address, OutgoingMessage
from runtime.runtime import Runtime

logger = logging.getLogger(__name__)

# Meta's message tags a Page may still use (the others were retired in 2020). HUMAN_AGENT (a
# person of the business answering, within 7 days) needs the Human Agent permission.
TAGS = ("ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "HUMAN_AGENT")
OUTSIDE_WINDOW = 10  # (#10) "This message is sent outside of allowed window"
OUTSIDE_WINDOW_SUBCODE = 2018278
# What the app is told of the Page: messages (and quick replies), postbacks, deliveries, reads
# and reactions; echoes of the Page's own messages are not asked for.
SUBSCRIBED_FIELDS = (
    "messages,messaging_postbacks,message_deliveries,message_reads,message_reactions"
)
# Meta publishes no per-second figure for the Send API (its Page limits count calls a day, by
# the people the Page talks to, and throttle with #613 or #32): a schedule's fan-out paced at
# this leaves room for the live conversations it runs beside.
BROADCAST_PER_S = 20.0
DELIVERED_KEPT = 20  # per person: the delivered messages a read report may still cover
PEOPLE_KEPT = 10_000  # people whose delivered messages are kept in memory
REF_CHARS = 120  # what a sent answer's reference may hold (`storage.tables.SentRef.ref`)
_PAGE_ID = re.compile(r"\d{5,20}")


class _WindowClosed(Exception):
    """Meta refused a message outside the window (#10, 2018278) before any of it was out."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Sent(_Answer):
    message_id: str


class _Page(_Answer):
    id: str = ""
    username: str | None = None


@dataclass(frozen=True, slots=True)
class _Part:
    """One message of a reply: its `message` object, and the file it uploads, if any."""

    message: dict[str, Any]
    upload: Upload | None = None


class MessengerChannel(MetaChannel):
    """The `messenger` channel (a `DeployableChannel` that shows typing while it answers), and
    the adapter its routes reach."""

    kind: ClassVar[str] = KIND
    title: ClassVar[str] = "Messenger"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True,
        files=True,
        typing=True,
        streams=True,  # the stream only keeps "typing" showing: no text is shown before
        receipts=True,
        broadcast_per_s=BROADCAST_PER_S,
    )
    form: ClassVar[DeployForm] = DeployForm(
        target="required",
        target_hint="the Page id (the Page's About > Page transparency, or Meta Business Suite "
        "> Settings > Page info)",
        secrets=(
            Secret("token", "the Page access token (the Meta app's Messenger > Settings)"),
            Secret("app_secret", "the app secret from App settings > Basic"),
        ),
        options=(
            Option(
                "tag",
                "the message tag (" + ", ".join(TAGS) + ") that carries a message outside "
                "Messenger's 24-hour window",
            ),
        ),
    )

    def __init__(
        self, *, runtime: Runtime, cipher: Cipher, api_url: str, public_url: str | None
    ) -> None:
        super().__init__(runtime=runtime, cipher=cipher, api_url=api_url, public_url=public_url)
        self.typing = typing_module.Typing(self._typing_on)
        # (deployment, psid) -> [(mid, delivery watermark in ms)]: what a read report covers
        self._delivered: OrderedDict[tuple[str, str], list[tuple[str, int]]] = OrderedDict()

    # -- deploying -----------------------------------------------------------------------------

    def plan(
        self, *, target: str | None, secrets: Mapping[str, str], options: Mapping[str, str]
    ) -> DeployPlan:
        """The Page the id names, with its token and app secret (kept encrypted, with the tag);
        one deployment per Page, whatever bot it serves."""
        page = (target or "").strip()
        if not _PAGE_ID.fullmatch(page):
            raise DeployInputError(
                "give the Page id (digits, not the Page's name or address): the Page's About > "
                "Page transparency shows it"
            )
        token, app_secret = deploy_secrets(
            secrets,
            token="the Page access token",
            source="from the Meta app's Messenger > Settings",
        )
        chosen: tuple[tuple[str, str], ...] = ()
        tag = (options.get("tag") or "").strip().upper()
        if tag:
            if tag not in TAGS:
                raise DeployInputError(
                    f"tag must be one of {', '.join(TAGS)}: the message tag Meta allows for what "
                    "the bot sends outside the 24-hour window"
                )
            chosen = (("tag", tag),)
        credentials = MetaCredentials(token=token, app_secret=app_secret, options=chosen)
        return DeployPlan(
            target=page,
            credentials=credentials.dumps(),
            exclusive="that Page already serves another deployment: undeploy it first, or use "
            "another Page",
        )

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        """Check the token and the Page with Meta (`GET /{page-id}`) and subscribe the app to
        the Page's messages (`POST /{page-id}/subscribed_apps`): without that Meta posts
        nothing, whatever the app's webhook says. The Page's m.me link."""
        account = self.deployments.given(deployment)
        token = account.credentials.token
        try:
            answer = await self.graph.call(
                "GET", account.target, token=token, params={"fields": "id,name,username"}
            )
            await self.graph.call(
                "POST",
                f"{account.target}/subscribed_apps",
                token=token,
                params={"subscribed_fields": SUBSCRIBED_FIELDS},
            )
        except GraphError as error:
            raise SendError(_refusal(error, account.target), permanent=True) from None
        self.deployments.remember(account)
        page = _Page.model_validate(answer)
        return f"https://m.me/{page.username or account.target}"

    async def teardown(self, deployment: DeploymentInfo) -> None:
        """Unsubscribe the app from the Page (Meta stops posting its messages); a failure is
        logged, never raised: the deployment goes anyway, and a post for it is answered 404."""
        self.deployments.forget(deployment.id)
        extra = {"deployment": deployment.id}
        try:
            account = self.deployments.given(deployment)
        except SendError as exc:
            logger.warning("not unsubscribed from the Page: %s", exc, extra=extra)
            return
        try:
            await self.graph.call(
                "DELETE", f"{account.target}/subscribed_apps", token=account.credentials.token
            )
        except GraphError as error:
            logger.warning(
                "unsubscribing the app from Page %s failed: %s",
                account.target,
                error.reason,
                extra=extra,
            )

    # -- inbound -------------------------------------------------------------------------------

    async def handle(self, account: MetaAccount, body: bytes) -> None:
        """A signed post: each message and postback recorded (and answered in the background),
        each report and reaction passed on. What cannot be read is logged and skipped; events
        of another Page of the same Meta app (one webhook URL serves all its Pages) go to its
        deployment."""
        extra = {"deployment": account.deployment_id}
        try:
            post = WebhookPost.model_validate_json(body)
        except ValidationError as exc:
            logger.info(
                "ignored a post that is not Messenger's: %s", first_problem(exc), extra=extra
            )
            return
        for item in post.entry:
            try:
                entry = Entry.model_validate(item)
            except ValidationError as exc:
                logger.info("ignored an unreadable entry: %s", first_problem(exc), extra=extra)
                continue
            serving = await self.deployments.serving(account, entry.id)
            if serving is None:
                logger.warning(
                    "ignored events of Page %s, which no deployment of this Meta app serves",
                    entry.id[:40],
                    extra=extra,
                )
                continue
            if entry.standby:  # another app of the Page has these conversations (handover)
                logger.info("ignored %d standby event(s)", len(entry.standby), extra=extra)
            for found in entry.messaging:
                try:
                    event = Event.model_validate(found)
                except ValidationError as exc:
                    logger.info("ignored an unreadable event: %s", first_problem(exc), extra=extra)
                    continue
                await self._event(serving, event)

    async def _event(self, account: MetaAccount, event: Event) -> None:
        extra = {"deployment": account.deployment_id}
        if event.says and event.sender.id != account.target:
            found = incoming(account.deployment_id, event)
            if found is None:
                return
            if event.timestamp is not None:
                self.window.heard(found.address, event.timestamp / 1000)
            await self.runtime.feed(found)
        elif event.message is not None:
            logger.debug("an echo of the Page's own message", extra=extra)
        elif event.delivery is not None:
            await self._delivery(account, event.sender.id, event.delivery)
        elif event.read is not None:
            await self._read(account, event.sender.id, event.read.watermark)
        elif event.reaction is not None:
            await self._reaction(account, event.sender.id, event.reaction)
        else:
            logger.info("ignored an event that is no message, report or reaction", extra=extra)

    async def _delivery(self, account: MetaAccount, psid: str, delivery: Delivery) -> None:
        """Each message Messenger delivered, reported; kept for the read that will cover it."""
        key = (account.deployment_id, psid)
        for mid in delivery.mids:
            known = await self.runtime.report_delivery(
                deployment_id=account.deployment_id, platform_id=mid, status="delivered"
            )
            if not known:
                logger.info("a delivery of no message sent here", extra={"deployment": key[0]})
            elif delivery.watermark is not None:
                kept = self._delivered.setdefault(key, [])
                kept.append((mid, delivery.watermark))
                del kept[:-DELIVERED_KEPT]
                self._delivered.move_to_end(key)
        while len(self._delivered) > PEOPLE_KEPT:
            self._delivered.popitem(last=False)

    async def _read(self, account: MetaAccount, psid: str, watermark: int) -> None:
        """The person read every message sent before `watermark`: those delivered before it
        (a message is sent before the delivery that names it) are reported read. Reads name no
        message, so one whose delivery this process did not see stays delivered."""
        key = (account.deployment_id, psid)
        kept = self._delivered.get(key, [])
        covered = [mid for mid, delivered in kept if delivered <= watermark]
        self._delivered[key] = [(mid, at) for mid, at in kept if at > watermark]
        if not self._delivered[key]:
            del self._delivered[key]
        for mid in covered:
            await self.runtime.report_delivery(
                deployment_id=account.deployment_id, platform_id=mid, status="read"
            )

    async def _reaction(self, account: MetaAccount, psid: str, reaction: Reaction) -> None:
        """A reaction rates the answer it is on (when it is one this deployment sent); it is
        never answered."""
        value = rating(reaction)
        if value is None:
            return
        await self.runtime.ratings.by_ref(
            deployment_id=account.deployment_id,
            ref=reaction.mid,
            user=f"{self.kind}:{psid}",
            channel=self.kind,
            rating=value,
        )

    # -- typing while an answer is written -------------------------------------------------------

    def stream(self, address: Address) -> TextSink | None:
        """The answer being written to `address`: "typing" shows until it is sent."""
        return self.typing.open(address.deployment_id, address.conversation)

    def shows_after(self) -> float:
        return typing_module.TYPING_AFTER_S  # read now: tests shorten it

    async def _typing_on(self, deployment_id: str, psid: str) -> bool:
        """`typing_on` to the person; False when Messenger did not take it (only a courtesy:
        the answer goes anyway)."""
        account = await self.deployments.account(deployment_id)
        if account is None:
            return False
        body = {"recipient": {"id": psid}, "sender_action": "typing_on"}
        try:
            await self.deployments.call(account, "POST", f"{account.target}/messages", json=body)
        except GraphError as error:
            logger.info(
                "Messenger did not show typing: %s",
                error.reason,
                extra={"deployment": deployment_id},
            )
            return False
        return True

    # -- outbound ------------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        """The message as a response within the 24-hour window, else with the deployment's
        message tag; the mid of its last part (deliveries and reactions name it)."""
        account = await self._account(message.address.deployment_id)
        psid = message.address.conversation
        await self.typing.finish(account.deployment_id, psid)  # no "typing" after the answer
        parts = _parts(message)  # a file Messenger cannot take fails before anything is sent
        if await self.window.is_open(message.address):
            try:
                return await self._post_all(account, psid, parts, tag=None)
            except _WindowClosed:
                logger.info(
                    "Messenger says the 24-hour window is closed: the message goes tagged",
                    extra={"deployment": account.deployment_id},
                )
        tag = account.credentials.option("tag")
        if tag is None:
            bot = await self._bot_name(account.deployment_id)
            raise SendError(
                "outside Messenger's 24-hour window and no message tag is set: "
                f"/deploy {bot} messenger {account.target} tag=ACCOUNT_UPDATE",
                permanent=True,
            )
        return await self._post_all(account, psid, parts, tag=tag)

    async def _post_all(
        self, account: MetaAccount, psid: str, parts: list[_Part], *, tag: str | None
    ) -> SendReceipt:
        """Each part as a message to the person, in order. Once one is out, any failure is for
        good: a retry of the whole would repeat it."""
        sent: str | None = None
        for number, part in enumerate(parts):
            try:
                answer = await self._post(account, psid, part, tag=tag)
            except GraphError as error:
                outside = error.code == OUTSIDE_WINDOW and error.subcode == OUTSIDE_WINDOW_SUBCODE
                if outside and tag is None and number == 0:
                    raise _WindowClosed from None
                if outside and tag is not None:
                    raise SendError(_tag_refused(tag, error), permanent=True) from None
                raise failure(error, platform=self.title, out=number > 0) from None
            sent = _message_id(answer, account.deployment_id)
        # A reaction names the message it is on by its mid: the last part's (where a reader ends).
        ref = sent if sent is not None and len(sent) <= REF_CHARS else None
        return SendReceipt(platform_id=sent, ref=ref)

    async def _post(
        self, account: MetaAccount, psid: str, part: _Part, *, tag: str | None
    ) -> dict[str, Any]:
        """One Send API call: JSON, or multipart when the part uploads its file (`filedata`)."""
        how = (
            {"messaging_type": "MESSAGE_TAG", "tag": tag} if tag else {"messaging_type": "RESPONSE"}
        )
        path = f"{account.target}/messages"
        if part.upload is None:
            body = {"recipient": {"id": psid}, **how, "message": part.message}
            return await self.deployments.call(account, "POST", path, json=body)
        form = {
            "recipient": json.dumps({"id": psid}),
            **how,
            "message": json.dumps(part.message),
        }
        upload = part.upload
        files = {"filedata": (upload.name, upload.content, upload.mime)}
        return await self.deployments.call(account, "POST", path, data=form, files=files)

    async def close(self) -> None:
        await self.typing.close_all()
        await super().close()


def _parts(message: OutgoingMessage) -> list[_Part]:
    """The messages a reply takes: its text in pieces, then its file; its buttons as quick
    replies on the last of them (they show under the last message only), or numbered lines."""
    text = render.render(message)
    replies = render.quick_replies(message.buttons) if message.buttons else None
    if message.buttons and replies is None:
        text = "\n\n".join(part for part in (text, numbered(message.buttons)) if part)
    parts = [_Part({"text": piece}) for piece in render.split(text)]
    if message.file is not None:
        upload = upload_of(message.file)
        attachment = {"type": upload.kind, "payload": {"is_reusable": False}}
        parts.append(_Part({"attachment": attachment}, upload))
    if replies is not None:
        last = parts.pop() if parts else _Part({"text": render.CHOOSE})
        parts.append(_Part({**last.message, "quick_replies": replies}, last.upload))
    return parts


def _refusal(error: GraphError, page: str) -> str:
    if error.token_refused:
        return f"Meta refused the access token: {error.reason}"
    if error.code == 100:
        return (
            f"Meta does not let that token use the Page {page} (check the Page id, and that the "
            f"token is that Page's access token): {error.reason}"
        )
    if error.code in (10, 200, 210):
        return (
            f"Meta refused it: {error.reason} (the token must be the Page's access token, with "
            "the pages_messaging permission)"
        )
    return f"Meta answered: {error.reason}"


def _tag_refused(tag: str, error: GraphError) -> str:
    said = f"Messenger refused the message with the tag {tag}: {error.reason}"
    if tag == "HUMAN_AGENT":
        said += " (HUMAN_AGENT reaches a person within 7 days of their last message only)"
    return said


def _message_id(answer: dict[str, Any], deployment_id: str) -> str | None:
    try:
        return _Sent.model_validate(answer).message_id
    except ValidationError:
        logger.warning(
            "Messenger accepted a message without its id", extra={"deployment": deployment_id}
        )
        return None
