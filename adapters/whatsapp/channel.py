"""The `whatsapp` channel: generated bots on the WhatsApp Cloud API, one deployment per business
phone number, each with its own access token and the app secret of its Meta app.

Inbound (`adapters.meta.webhook`): Meta posts to `/whatsapp/{deployment_id}`; a signed post's
messages are recorded through `Runtime.feed` (deduplicated by wamid: Meta redelivers until it
gets a 200) and answered in the background; statuses (sent, delivered, read, failed) are
reported to the runtime, which keeps them by the wamid each send returned.

Outbound: a reply (a model's Markdown) goes in WhatsApp's markup, split at 4,096 characters;
buttons as reply buttons or a list; a file uploaded, then sent by its media id. WhatsApp lets a
business write freely only within 24 hours of the person's last message (the customer-service
window): outside it, a message goes as the deployment's approved template (its one body
parameter carries the text), and without a template it fails for good, saying how to set one.
Meta's own verdict (#131047, re-engagement) is the safety net when the window was thought open.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.meta.accounts import MetaAccount, MetaCredentials, deploy_secrets
from adapters.meta.channel import MetaChannel
from adapters.meta.graph import GraphError, failure
from adapters.meta.media import Upload
from adapters.meta.webhook import first_problem
from adapters.whatsapp import render
from adapters.whatsapp.media import upload_of
from adapters.whatsapp.payloads import (
    KIND,
    MEDIA_PREFIX,
    Message,
    Status,
    Value,
    WebhookPost,
    incoming,
)
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
from runtime.messages import FileRef, OutgoingMessage
from runtime.net import TooLargeError, format_size
from runtime.voice import MAX_AUDIO_BYTES
from storage.deliveries import STATUSES

logger = logging.getLogger(__name__)

RE_ENGAGEMENT = 131047  # a free-form message outside the 24-hour window
TEMPLATE_ERRORS = range(132000, 133000)  # Meta refused the template (name, language, params)
PARAMETER_COUNT = 132000  # the template's body takes another number of parameters
DEFAULT_LANGUAGE = "en_US"
# Cloud API sends 80 messages a second per business number by default, replies included: a
# schedule's fan-out takes half, so the live conversations it runs beside (and the second piece
# of a long message) never meet Meta's throughput limit (#130429).
BROADCAST_PER_S = 40.0
_PHONE_ID = re.compile(r"\d{6,20}")
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")  # a path segment of the Graph API, no more
_TEMPLATE = re.compile(r"[a-z0-9_]{1,512}(?::[a-z]{2,3}(?:_[A-Za-z]{2,4})?)?")  # NAME[:LANGUAGE]


class _WindowClosed(Exception):
    """Meta refused a free-form message (#131047) before any of it was out."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _SentId(_Answer):
    id: str


class _Sent(_Answer):
    messages: list[_SentId]


class _Uploaded(_Answer):
    id: str


class _PhoneNumber(_Answer):
    display_phone_number: str = ""


class _MediaInfo(_Answer):
    url: str
    file_size: int | None = None


class WhatsAppChannel(MetaChannel):
    """The `whatsapp` channel (a `DeployableChannel`), and the adapter its routes reach."""

    kind: ClassVar[str] = KIND
    title: ClassVar[str] = "WhatsApp"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True, files=True, receipts=True, broadcast_per_s=BROADCAST_PER_S
    )
    form: ClassVar[DeployForm] = DeployForm(
        target="required",
        target_hint="the phone-number id from Meta's WhatsApp > API Setup page",
        secrets=(
            Secret("token", "the access token (a system user's permanent token)"),
            Secret("app_secret", "the app secret from App settings > Basic"),
        ),
        options=(
            Option(
                "template",
                "the approved template (NAME or NAME:LANGUAGE) that carries a message outside "
                "WhatsApp's 24-hour window",
            ),
        ),
    )

    # -- deploying -----------------------------------------------------------------------------

    def plan(
        self, *, target: str | None, secrets: Mapping[str, str], options: Mapping[str, str]
    ) -> DeployPlan:
        """The phone number the id names, with its token and app secret (kept encrypted, with
        the template); one deployment per phone number, whatever bot it serves."""
        phone = (target or "").strip()
        if not _PHONE_ID.fullmatch(phone):
            raise DeployInputError(
                "give the phone-number id from Meta's WhatsApp > API Setup page (digits; not the "
                "phone number itself)"
            )
        token, app_secret = deploy_secrets(
            secrets, token="the access token", source="a system user's permanent token"
        )
        chosen: tuple[tuple[str, str], ...] = ()
        template = (options.get("template") or "").strip()
        if template:
            if not _TEMPLATE.fullmatch(template):
                raise DeployInputError(
                    "template must be NAME or NAME:LANGUAGE (e.g. follow_up or follow_up:en_US):"
                    " a template approved for this number in WhatsApp Manager"
                )
            chosen = (("template", template),)
        credentials = MetaCredentials(token=token, app_secret=app_secret, options=chosen)
        return DeployPlan(
            target=phone,
            credentials=credentials.dumps(),
            exclusive="that WhatsApp phone number already serves another deployment: undeploy "
            "it first, or use another number",
        )

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        """Check the token and the phone number with Meta (`GET /{phone-number-id}`); the
        number's wa.me link. The webhook is the Meta app's, set in its dashboard with `details`:
        nothing is registered here."""
        account = self.deployments.given(deployment)
        fields = {"fields": "display_phone_number,verified_name"}
        try:
            answer = await self.graph.call(
                "GET", account.target, token=account.credentials.token, params=fields
            )
        except GraphError as error:
            raise SendError(self._refusal(error, account.target), permanent=True) from None
        self.deployments.remember(account)
        number = _PhoneNumber.model_validate(answer).display_phone_number
        digits = "".join(ch for ch in number if ch.isdigit())
        return f"https://wa.me/{digits}" if digits else None

    @staticmethod
    def _refusal(error: GraphError, phone: str) -> str:
        if error.token_refused:
            return f"Meta refused the access token: {error.reason}"
        if error.code == 100:
            return (
                f"Meta does not let that token use the phone-number id {phone} (check the id on "
                f"WhatsApp > API Setup, and the token's permissions): {error.reason}"
            )
        return f"Meta answered: {error.reason}"

    async def teardown(self, deployment: DeploymentInfo) -> None:
        """Nothing at Meta to undo: the webhook belongs to the Meta app (its dashboard), and a
        post for a deployment that is gone is answered 404. What this process kept goes."""
        self.deployments.forget(deployment.id)

    # -- inbound -------------------------------------------------------------------------------

    async def handle(self, account: MetaAccount, body: bytes) -> None:
        """A signed post: each message recorded (and answered in the background), each status
        reported. What cannot be read is logged and skipped; events of another phone number of
        the same Meta app (one webhook URL serves all its numbers) go to its deployment."""
        extra = {"deployment": account.deployment_id}
        try:
            post = WebhookPost.model_validate_json(body)
        except ValidationError as exc:
            logger.info(
                "ignored a post that is not WhatsApp's: %s", first_problem(exc), extra=extra
            )
            return
        for entry in post.entry:
            for change in entry.changes:
                if change.field != "messages":
                    logger.info("ignored a change of %s", change.field[:40], extra=extra)
                    continue
                try:
                    value = Value.model_validate(change.value)
                except ValidationError as exc:
                    logger.info("ignored an unreadable change: %s", first_problem(exc), extra=extra)
                    continue
                phone = value.metadata.phone_number_id
                serving = await self.deployments.serving(account, phone)
                if serving is None:
                    logger.warning(
                        "ignored events of phone number %s, which no deployment of this Meta app"
                        " serves",
                        phone[:40],
                        extra=extra,
                    )
                    continue
                await self._messages(serving, value.messages)
                await self._statuses(serving, value.statuses)
                for problem in value.errors:
                    logger.warning("WhatsApp reported %s", problem.describe(), extra=extra)

    async def _messages(self, account: MetaAccount, items: list[Any]) -> None:
        extra = {"deployment": account.deployment_id}
        for item in items:
            try:
                message = Message.model_validate(item)
            except ValidationError as exc:
                logger.info("ignored an unreadable message: %s", first_problem(exc), extra=extra)
                continue
            found = incoming(account.deployment_id, message)
            if found is None:
                continue
            self.window.heard(found.address, float(message.timestamp))
            await self.runtime.feed(found)

    async def _statuses(self, account: MetaAccount, items: list[Any]) -> None:
        extra = {"deployment": account.deployment_id}
        for item in items:
            try:
                status = Status.model_validate(item)
            except ValidationError as exc:
                logger.info("ignored an unreadable status: %s", first_problem(exc), extra=extra)
                continue
            if status.status not in STATUSES:
                logger.info("ignored a status %r", status.status[:20], extra=extra)
                continue
            error = status.error()
            known = await self.runtime.report_delivery(
                deployment_id=account.deployment_id,
                platform_id=status.id,
                status=status.status,
                error=error,
            )
            if not known:
                logger.info("a status (%s) of no message sent here", status.status, extra=extra)
            elif error is not None:
                logger.warning("WhatsApp did not deliver a message: %s", error, extra=extra)

    # -- outbound ------------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        """The message, free-form within the 24-hour window, else as the template; the wamid
        of its last part (statuses name it)."""
        account = await self._account(message.address.deployment_id)
        if await self.window.is_open(message.address):
            try:
                return await self._send_free(account, message)
            except _WindowClosed:
                logger.info(
                    "WhatsApp says the 24-hour window is closed: the message goes as the template",
                    extra={"deployment": account.deployment_id},
                )
        return await self._send_template(account, message)

    async def _send_free(self, account: MetaAccount, message: OutgoingMessage) -> SendReceipt:
        """Text pieces, then the file (with the text as its caption when it fits), then the
        buttons (under the text when it fits). The file is uploaded before anything is sent."""
        text = render.render(message)
        choice: dict[str, Any] | None = None
        if message.buttons:
            fits = 0 < len(text) <= render.BODY_LIMIT
            choice = render.interactive(message.buttons, text if fits else render.CHOOSE)
            if choice is None:
                text = "\n\n".join(
                    part for part in (text, render.numbered(message.buttons)) if part
                )
            elif fits:
                text = ""  # the buttons' body
        attached: dict[str, Any] | None = None
        if message.file is not None:
            upload = upload_of(message.file)
            captioned = choice is None and 0 < len(text) <= render.BODY_LIMIT
            captioned = captioned and upload.kind != "audio"  # an audio message takes none
            media_id = await self._upload(account, upload)
            attached = _media(upload, media_id, caption=text if captioned else None)
            text = "" if captioned else text
        bodies = [{"type": "text", "text": {"body": piece}} for piece in render.split(text)]
        if attached is not None:
            bodies.append(attached)
        if choice is not None:
            bodies.append({"type": "interactive", "interactive": choice})
        return await self._post_all(account, message, bodies)

    async def _send_template(self, account: MetaAccount, message: OutgoingMessage) -> SendReceipt:
        """The message as the deployment's template, its text the one body parameter (in as
        many template messages as it takes); for good without a template, or with a file."""
        template = account.credentials.option("template")
        if template is None:
            bot = await self._bot_name(account.deployment_id)
            raise SendError(
                "outside WhatsApp's 24-hour window and no template is set: "
                f"/deploy {bot} whatsapp {account.target} template=NAME",
                permanent=True,
            )
        if message.file is not None:
            raise SendError(
                "outside WhatsApp's 24-hour window only a template can be sent, and it carries "
                f"no file ({message.file.name} was not sent)",
                permanent=True,
            )
        name, _, language = template.partition(":")
        text = render.render(message)
        if message.buttons:
            text = f"{text} {render.numbered(message.buttons)}"
        content = {"name": name, "language": {"code": language or DEFAULT_LANGUAGE}}
        bodies = [
            {
                "type": "template",
                "template": {
                    **content,
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": piece}]}
                    ],
                },
            }
            for piece in render.template_texts(text)
        ]
        return await self._post_all(account, message, bodies, template=template)

    async def _post_all(
        self,
        account: MetaAccount,
        message: OutgoingMessage,
        bodies: list[dict[str, Any]],
        *,
        template: str | None = None,
    ) -> SendReceipt:
        """Each body as a message to the person, in order. Once one is out, any failure is for
        good: a retry of the whole would repeat it."""
        to = message.address.conversation
        sent: str | None = None
        for number, body in enumerate(bodies):
            payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
            try:
                answer = await self.deployments.call(
                    account, "POST", f"{account.target}/messages", json={**payload, **body}
                )
            except GraphError as error:
                if template is None and error.code == RE_ENGAGEMENT and number == 0:
                    raise _WindowClosed from None
                if template is not None and error.code in TEMPLATE_ERRORS:
                    raise SendError(_template_refused(template, error), permanent=True) from None
                raise failure(error, platform=self.title, out=number > 0) from None
            sent = _message_id(answer, account.deployment_id)
        return SendReceipt(platform_id=sent)

    async def _upload(self, account: MetaAccount, upload: Upload) -> str:
        """The file uploaded to the phone number's media; its id."""
        form = {"messaging_product": "whatsapp", "type": upload.mime}
        file = {"file": (upload.name, upload.content, upload.mime)}
        try:
            answer = await self.deployments.call(
                account, "POST", f"{account.target}/media", data=form, files=file
            )
            return _Uploaded.model_validate(answer).id
        except GraphError as error:
            raise failure(error, platform=self.title) from None
        except ValidationError:
            raise SendError("WhatsApp's answer to the upload gave no media id") from None

    async def download(
        self, deployment_id: str, file: FileRef, *, limit: int = MAX_AUDIO_BYTES
    ) -> bytes:
        """The bytes of a file a person sent (a voice note to transcribe): Meta names a short-lived
        URL for the media id (`GET /{media-id}`), which is read with the deployment's token, at
        most `limit` bytes. `SendError`, permanent unless another attempt may work."""
        url = file.url or ""
        media_id = url.removeprefix(MEDIA_PREFIX)
        if not url.startswith(MEDIA_PREFIX) or not _MEDIA_ID.fullmatch(media_id):
            raise SendError("WhatsApp gave no media id for the file", permanent=True)
        account = await self._account(deployment_id)
        asked = {"phone_number_id": account.target}
        try:
            answer = await self.deployments.call(account, "GET", media_id, params=asked)
            info = _MediaInfo.model_validate(answer)
        except GraphError as error:
            raise failure(error, platform=self.title) from None
        except ValidationError:
            raise SendError("Meta's answer gave no address for the file") from None
        if info.file_size is not None and info.file_size > limit:
            raise SendError(
                f"the file is {format_size(info.file_size)}: at most {format_size(limit)} is read",
                permanent=True,
            )
        if not self.graph.trusts(info.url):
            raise SendError("Meta named a file address outside Meta: not read", permanent=True)
        try:
            return await self.graph.fetch(
                info.url, token=account.credentials.token, max_bytes=limit
            )
        except TooLargeError as exc:
            raise SendError(str(exc), permanent=True) from None
        except GraphError as error:
            if error.status == 404:  # the URL expired: a new one comes with the next attempt
                raise SendError("the file's address expired before it was read") from None
            raise failure(error, platform=self.title) from None


def _media(upload: Upload, media_id: str, *, caption: str | None) -> dict[str, Any]:
    """The message body that sends an uploaded file."""
    content: dict[str, Any] = {"id": media_id}
    if caption:
        content["caption"] = caption
    if upload.kind == "document":
        content["filename"] = upload.name
    return {"type": upload.kind, upload.kind: content}


def _message_id(answer: dict[str, Any], deployment_id: str) -> str | None:
    try:
        return _Sent.model_validate(answer).messages[0].id
    except (ValidationError, IndexError):
        logger.warning(
            "WhatsApp accepted a message without its id", extra={"deployment": deployment_id}
        )
        return None


def _template_refused(template: str, error: GraphError) -> str:
    said = f"WhatsApp refused the template {template}: {error.reason}"
    if error.code == PARAMETER_COUNT:
        said += " (its body must have exactly one variable, {{1}}, which carries the message)"
    return said
