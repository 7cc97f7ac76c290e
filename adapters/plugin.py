"""The shape of a channel plugin: one folder under `adapters/` and one entry in
`adapters.channels.CHANNELS`. The composition root builds each plugin whose settings are
complete, offers its channel to bots (or tells the Studio which settings turn it on), mounts
its routes, and starts, stops and warms it with the service.

A plugin module stays cheap to import: the platform library is imported in `build` (or later),
so a channel nobody uses costs nothing at start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fastapi import APIRouter, Request

    from runtime.channel import Channel, DeployableChannel
    from runtime.cipher import Cipher
    from runtime.handoff import TeamRooms
    from runtime.runtime import Runtime
    from runtime.team_front import TeamFront
    from studio.engine import Studio
    from studio.settings import Settings

Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What a plugin may use to build its channel: the service's settings (a plugin's own
    section: `settings.section(MySettings)`), the runtime it feeds, the cipher that keeps its
    credentials, and the Studio (its members, and where a broken deployment is reported)."""

    settings: Settings
    runtime: Runtime
    cipher: Cipher
    studio: Studio


@dataclass(frozen=True, slots=True)
class ChannelParts:
    """What a plugin built. `adapter` is the object its routes reach again (`built`)."""

    adapter: Any
    deployable: DeployableChannel | None = None  # bots are deployed to it
    fronts: tuple[Channel, ...] = ()  # other channels it sends on (the Studio's own bot)
    rooms: TeamRooms | None = None  # where a handoff's people answer (its `front`'s rooms)
    start: Hook | None = None  # after recovery, at serve start
    stop: Hook | None = None  # take no more updates (first thing at shutdown)
    close: Hook | None = None  # let go of connections (after the runtime drained)
    warm: Hook | None = None  # load the platform library before the first update needs it
    # Runs on the cluster's leader only, while it leads; cancelled when it stops (long polling:
    # one poller per bot across the workers). `runtime.cluster.leader_work`.
    lead: Hook | None = None


class ChannelPlugin(Protocol):
    """One channel: its kind and title, the settings that turn it on, how it is built, and its
    routes (inbound: verify, parse, record, acknowledge)."""

    kind: str  # the channel's kind as stored on deployments ("whatsapp")
    title: str  # how people call it ("WhatsApp")
    deployable: bool  # bots are deployed to it (else: a front of the Studio only)
    front: TeamFront | None  # the Studio's front there, read even while it is off
    # (path pattern, bytes) for its routes that take bodies over the service's default cap
    body_limits: tuple[tuple[str, int], ...]

    def missing(self, settings: Settings) -> tuple[str, ...]:
        """The settings it still needs to be on here (empty: it is on)."""
        ...

    def build(self, ctx: PluginContext) -> ChannelParts: ...

    def routes(self) -> APIRouter | None:
        """Its inbound routes (mounted only when it is on)."""
        ...


def built(request: Request, kind: str) -> Any:
    """The adapter of the plugin `kind` that serves this app (for its routes)."""
    return request.app.state.core.parts[kind].adapter
