"""The `Channel` port that adapters implement, and the registry the composition root fills."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from runtime.llm import TextSink
from runtime.messages import Address, OutgoingMessage


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


class StreamingChannel(Channel, Protocol):
    """A channel that shows an answer while the model writes it (`capabilities.streams`)."""

    def stream(self, address: Address) -> TextSink | None:
        """Where the text of the answer to `address` goes as it is written (None: not here, e.g.
        a group chat); the answer itself is still sent whole, through the outbox, afterwards."""
        ...


class UnknownChannelError(KeyError):
    pass


class ChannelRegistry:
    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def register(self, channel: Channel) -> None:
        self._channels[channel.kind] = channel

    def has(self, kind: str) -> bool:
        return kind in self._channels

    def get(self, kind: str) -> Channel:
        try:
            return self._channels[kind]
        except KeyError:
            raise UnknownChannelError(kind) from None

    def kinds(self) -> list[str]:
        return sorted(self._channels)
