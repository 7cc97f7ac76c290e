"""`runtime.cluster.invalidation`: the payloads, the safety net's comparison, the local port, and
a runtime that invalidates, publishes what it changed and applies what others changed."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from runtime.channel import ChannelRegistry
from runtime.cluster.invalidation import (
    AbChanged,
    Apply,
    BotChanged,
    Change,
    ConversationForgotten,
    DeploymentForgotten,
    DeploymentsChanged,
    HandoffChanged,
    LocalInvalidations,
    ParticipantsForgotten,
    PostgresInvalidations,
    decode,
    differences,
    encode,
    invalidations_for,
)
from runtime.llm import LlmGateway
from runtime.runtime import Runtime
from storage.database import Database

CHANGES: list[Change] = [
    BotChanged(3),
    AbChanged(3),
    DeploymentForgotten("d-1"),
    DeploymentsChanged(),
    ParticipantsForgotten(3, "web:ana"),
    ParticipantsForgotten(3, None),
    ConversationForgotten("d-1", "session-1"),
    HandoffChanged(7),
]


@dataclass
class Told:
    """An `Invalidations` that keeps what was published (what the other workers would hear)."""

    published: list[Change] = field(default_factory=list)

    def publish(self, change: Change) -> None:
        self.published.append(change)

    async def start(self, apply: Apply) -> None:
        return None

    async def stop(self) -> None:
        return None


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_travels_as_a_small_payload(change: Change) -> None:
    payload = encode(change, worker="w1")
    assert len(payload) < 200
    assert decode(payload) == ("w1", change)


@pytest.mark.parametrize("payload", ["", "[]", '{"k": "bot", "w": "w1"}', '{"k": "?", "w": 1}'])
def test_what_is_not_a_change_is_refused(payload: str) -> None:
    with pytest.raises(ValueError, match="not an invalidation"):
        decode(payload)


async def test_the_port_is_chosen_by_the_database(db: Database) -> None:
    assert isinstance(invalidations_for(db), LocalInvalidations)
    server = Database("postgresql+asyncpg://postgres@127.0.0.1:5432/test")  # not connected
    found = invalidations_for(server)
    assert isinstance(found, PostgresInvalidations)
    options = found._options
    assert (options["host"], options["port"], options["user"]) == ("127.0.0.1", 5432, "postgres")
    assert options["server_settings"]["application_name"].startswith("studio-invalidation-")
    await server.dispose()


def _state(
    **tables: dict[object, tuple[object, ...]],
) -> dict[str, dict[object, tuple[object, ...]]]:
    names = ("pointers", "bots", "ab", "deployments", "handoffs")
    return {name: dict(tables.get(name, {})) for name in names}  # type: ignore[misc]


def test_the_safety_net_turns_what_moved_into_changes() -> None:
    seen = _state(
        pointers={1: (["production:10"],), 2: (["production:20"],)},
        bots={1: (1, "a"), 2: (1, "b"), 4: (1, "d")},
        ab={9: (2, "production", 3, 50)},
        deployments={"d-1": (1, 1, "web", "production", ""), "d-2": (1, 2, "web", "staging", "")},
        handoffs={7: ("t", False, 1)},
    )
    assert differences(seen, seen) == []
    now = _state(
        pointers={1: (["production:11"],), 2: (["production:20"],)},  # 1 promoted
        bots={1: (1, "a"), 2: (1, "b"), 5: (1, "e")},  # 4 deleted, 5 created
        ab={},  # 2's test ended
        deployments={"d-1": (1, 1, "web", "production", ""), "d-3": (1, 2, "web", "prod", "")},
        handoffs={7: ("t2", True, 2), 8: ("t", False, 1)},  # 7 answered, 8 opened
    )
    assert differences(seen, now) == [
        BotChanged(1),
        BotChanged(4),
        BotChanged(5),
        AbChanged(2),
        DeploymentForgotten("d-2"),
        DeploymentsChanged(),
        HandoffChanged(7),
        HandoffChanged(8),
    ]
    assert differences(now, seen)[-2:] == [HandoffChanged(7), HandoffChanged(8)]  # 8 closed


async def test_the_local_port_tells_nobody() -> None:
    port = LocalInvalidations()
    heard: list[Change] = []

    async def apply(change: Change) -> None:
        heard.append(change)

    await port.start(apply)
    port.publish(BotChanged(1))
    await port.stop()
    assert heard == []


async def test_a_runtime_publishes_what_it_changed_and_applies_what_others_did(
    db: Database,
) -> None:
    told = Told()
    runtime = Runtime(db=db, llm=LlmGateway(), channels=ChannelRegistry(), invalidations=told)
    bots: list[int] = []
    runtime.bot_listeners.append(bots.append)
    runtime.invalidate_bot(3)
    runtime.ab_changed(3)
    runtime.forget_deployment("d-1")
    runtime.deployments_changed()
    runtime.participants.forget(3, "web:ana")
    runtime.conversations.forget(("d-1", "session-1"))
    assert told.published == [*CHANGES[:5], CHANGES[6]]
    assert bots == [3]
    for change in CHANGES:  # heard from another worker: applied here, told to nobody
        await runtime.apply(change)
    assert told.published == [*CHANGES[:5], CHANGES[6]]
    assert bots == [3, 3]


async def test_caches_that_keep_nothing_tell_nobody(db: Database) -> None:
    told = Told()
    runtime = Runtime(
        db=db,
        llm=LlmGateway(),
        channels=ChannelRegistry(),
        invalidations=told,
        conversation_cache_size=0,
    )
    runtime.participants.forget(3, "web:ana")
    runtime.conversations.forget(("d-1", "session-1"))
    runtime.conversations.begin(("d-1", "session-2"))  # another worker may store its first turn
    assert told.published == []
    assert (
        await runtime.conversations.load(("d-1", "session-2"), 5)
    ).id is None  # read, not assumed


async def test_sqlite_keeps_its_caches(db: Database) -> None:
    runtime = Runtime(db=db, llm=LlmGateway(), channels=ChannelRegistry())
    assert isinstance(runtime.invalidations, LocalInvalidations)
    assert runtime.conversations.size == runtime.participants.size == 5_000
