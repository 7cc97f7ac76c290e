"""The `Channel` port that adapters implement, and the registry the composition root fills."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, runtime_checkable

from runtime.llm import TextSink
from runtime.messages import Address, FileRef, OutgoingMessage


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a channel can show; the runtime degrades gracefully where it cannot."""

    buttons: bool = False
    threads: bool = False
    files: bool = False
    edits: bool = False
    typing: bool = False
    # The reply travels back in the response to the inbound request (web): the response itself
    # is the acknowledgement, so nothing is acknowledged before the whole turn is stored.
    synchronous: bool = False
    # Proactive messages a deployment may send a second to different people (a schedule's
    # fan-out is paced to it); None: no platform limit to keep to.
    broadcast_per_s: float | None = None
    # It shows an answer while it is written (`StreamingChannel.stream`).
    streams: bool = False
    # The platform reports what became of each sent message (delivered, read, failed): sends
    # are kept by their `SendReceipt.platform_id` so that the reports find them.
    receipts: bool = False


@dataclass(frozen=True, slots=True)
class SendReceipt:
    platform_id: str | None = None
    # Where the platform names this message again when someone reacts to it (Telegram:
    # "CHAT:MESSAGE_ID"); kept for rateable answers so that a reaction rates the right one.
    ref: str | None = None


class SendError(Exception):
    """Sending failed. `permanent` errors are not retried (a revoked token, a missing channel)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    id: str
    team_id: int
    channel: str
    env: str
    target: str
    bot_name: str
    credentials: bytes | None = None
    description: str = ""  # the running version's description (a Telegram bot's profile)


class Channel(Protocol):
    """One platform's outbound side and deployment set-up. Inbound requests reach the adapter's
    own route, which verifies them through the platform library and feeds the runtime."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    async def send(self, message: OutgoingMessage) -> SendReceipt: ...

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        """Prepare a new deployment (a webhook, say); returns its public URL if it has one."""
        ...

    async def teardown(self, deployment: DeploymentInfo) -> None: ...


class UnknownChannelError(KeyError):
    pass


class DeployInputError(ValueError):
    """What the person deploying must give or fix (the Studio answers it as a 422)."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A value a deployment needs that is never typed in a shared chat (a bot token, an app
    secret): REST takes it under `name`; the Studio asks for it privately."""

    name: str  # its key in the REST body: "token", "app_secret"
    label: str  # what it is, for the person asked: "the bot's token from @BotFather"


@dataclass(frozen=True, slots=True)
class Option:
    """A setting of a deployment that is no secret (`/deploy BOT KIND TARGET name=value`; REST
    takes it under `name`)."""

    name: str  # "template"
    label: str  # what it does, for `/help deploy` and a refusal


@dataclass(frozen=True, slots=True)
class DeployForm:
    """What `/deploy BOT KIND` needs from the person deploying."""

    target: Literal["none", "optional", "required"] = "none"
    target_hint: str = ""  # said when a required target is missing
    secrets: tuple[Secret, ...] = ()
    options: tuple[Option, ...] = ()


@dataclass(frozen=True, slots=True)
class DeployPlan:
    """A deployment as its channel reads what it was given: where it goes (None: one per bot),
    what it keeps encrypted, and, when the target may serve one deployment of any bot, the
    refusal for a second one."""

    target: str | None
    credentials: str | None = None
    exclusive: str | None = None


class DeployableChannel(Channel, Protocol):
    """A channel bots are deployed to (not the Studio's own fronts): how the Studio and REST
    name it, ask for it and show where it is."""

    title: ClassVar[str]  # "Slack", "Telegram", "the web"
    form: ClassVar[DeployForm]

    def plan(
        self, *, target: str | None, secrets: Mapping[str, str], options: Mapping[str, str]
    ) -> DeployPlan:
        """The deployment for what was given (`DeployInputError`: what to fix)."""
        ...

    def link(self, deployment_id: str, stored: str | None) -> str | None:
        """Where people find the deployment; `stored` is what its `setup` returned."""
        ...

    def details(self, deployment_id: str) -> Mapping[str, str]:
        """What the person deploying copies into the platform's own settings (a webhook URL,
        a verify token), by its REST name; empty when there is nothing to copy."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelOffer:
    """A channel this service offers bots: on (`channel`), or off until `missing` are set."""

    kind: str
    title: str
    channel: DeployableChannel | None = None
    missing: tuple[str, ...] = ()


class ChannelOffError(UnknownChannelError):
    """A channel this service knows but has not turned on: its settings are missing."""

    def __init__(self, offer: ChannelOffer) -> None:
        super().__init__(offer.kind)
        self.offer = offer


@runtime_checkable
class AudioSource(Protocol):
    """A channel that hands over the bytes of a file a person sent (a voice note to hear)."""

    async def download(self, deployment_id: str, file: FileRef) -> bytes:
        """`SendError` (permanent unless another attempt may work) when it cannot."""
        ...


class StreamingChannel(Channel, Protocol):
    """A channel that shows an answer while the model writes it (`capabilities.streams`)."""

    def stream(self, address: Address) -> TextSink | None:
        """Where the text of the answer to `address` goes as it is written (None: not here, e.g.
        a group chat); the answer itself is still sent whole, through the outbox, afterwards."""
        ...

    def shows_after(self) -> float:
        """Seconds an answer is written before anything of it shows here (a preview's wait):
        the answers of a model that is done sooner, as a rule, are not streamed here."""
        ...


class ChannelRegistry:
    """The channels of this process (`register`) and, among them, those bots are deployed to
    (`offer`), in the order the Studio lists them."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}
        self._offers: dict[str, ChannelOffer] = {}

    def register(self, channel: Channel) -> None:
        self._channels[channel.kind] = channel

    def offer(self, channel: DeployableChannel) -> None:
        """`channel` is on, and bots may be deployed to it."""
        self.register(channel)
        self._offers[channel.kind] = ChannelOffer(channel.kind, channel.title, channel)

    def offer_off(self, kind: str, title: str, *, missing: tuple[str, ...]) -> None:
        """A channel this service has, off until the settings `missing` are set."""
        self._offers[kind] = ChannelOffer(kind, title, missing=missing)

    def offered(self) -> tuple[str, ...]:
        """The kinds bots may be deployed to, on or off."""
        return tuple(self._offers)

    def deployable(self, kind: str) -> DeployableChannel:
        """The channel to deploy to (`UnknownChannelError`: no such channel;
        `ChannelOffError`: it is off here)."""
        offer = self._offers.get(kind)
        if offer is None:
            raise UnknownChannelError(kind)
        if offer.channel is None:
            raise ChannelOffError(offer)
        return offer.channel

    def title(self, kind: str) -> str:
        """How people call the channel `kind` ("Slack"); its kind if it has no title."""
        offer = self._offers.get(kind)
        if offer is not None:
            return offer.title
        title = getattr(self._channels.get(kind), "title", None)  # a deployable one, registered
        return title if isinstance(title, str) else kind

    def has(self, kind: str) -> bool:
        return kind in self._channels

    def get(self, kind: str) -> Channel:
        try:
            return self._channels[kind]
        except KeyError:
            raise UnknownChannelError(kind) from None

    def kinds(self) -> list[str]:
        return sorted(self._channels)
