"""Cache invalidation across `serve` workers: a change committed through one worker is seen by
the others' caches (`Runtime`'s compiled versions, A/B plans, deployments, bot names; the
handoff desk's open handoffs).

A worker that changes something applies the invalidation locally and `publish`es a `Change`;
the others receive it and apply the same invalidation without publishing again (`Runtime.apply`).

- `LocalInvalidations`: one process (SQLite); there is nobody else to tell.
- `PostgresInvalidations`: LISTEN/NOTIFY on one dedicated asyncpg connection (the SQLAlchemy
  pool recycles its connections, and a LISTEN lives as long as its session). A `Change` is sent
  after its transaction committed, as a small JSON payload naming the worker, so a worker skips
  its own. NOTIFY is fire-and-forget: a notification sent while a listener was reconnecting is
  lost. Hence the safety net: at each reconnect every cache is dropped (`Everything`), and every
  `check_every_s` the connection reads the shared state the caches hold (pointers, bots, running
  A/B tests, deployments, open handoffs), compares it with its previous read, and applies a
  `Change` for each difference. A lost notification so heals within one check period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import asyncpg

from storage.database import Database

logger = logging.getLogger(__name__)

CHANNEL = "studio_invalidation"
APPLICATION_NAME = "studio-invalidation"  # and the worker's id: the listener in pg_stat_activity
CHECK_EVERY_S = 5.0
_BACKOFF_S = (0.5, 30.0)  # first and longest wait before connecting again


@dataclass(frozen=True, slots=True)
class BotChanged:
    """A pointer of the bot moved, or the bot was renamed or deleted (`invalidate_bot`)."""

    bot_id: int


@dataclass(frozen=True, slots=True)
class AbChanged:
    """An A/B test of the bot started or ended."""

    bot_id: int


@dataclass(frozen=True, slots=True)
class DeploymentForgotten:
    """The deployment went or was renewed."""

    deployment_id: str


@dataclass(frozen=True, slots=True)
class DeploymentsChanged:
    """A deployment was added: places looked up before may be bound now."""


@dataclass(frozen=True, slots=True)
class ParticipantsForgotten:
    """A bot's participants' memory (one person's, or everyone's: `user` None) was written."""

    bot_id: int
    user: str | None


@dataclass(frozen=True, slots=True)
class ConversationForgotten:
    """A conversation's stored history changed outside its turns (reset, handoff, a push)."""

    deployment_id: str
    conversation: str


@dataclass(frozen=True, slots=True)
class HandoffChanged:
    """A handoff opened, was answered (its timeout moved), got a post, or closed."""

    handoff_id: int


@dataclass(frozen=True, slots=True)
class Everything:
    """Changes may have been missed (the listener reconnected): drop every cache. Never sent."""


Change = (
    BotChanged
    | AbChanged
    | DeploymentForgotten
    | DeploymentsChanged
    | ParticipantsForgotten
    | ConversationForgotten
    | HandoffChanged
    | Everything
)
Apply = Callable[[Change], Awaitable[None]]

_KINDS: dict[str, type[Change]] = {
    "bot": BotChanged,
    "ab": AbChanged,
    "deployment": DeploymentForgotten,
    "deployments": DeploymentsChanged,
    "participants": ParticipantsForgotten,
    "conversation": ConversationForgotten,
    "handoff": HandoffChanged,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def encode(change: Change, *, worker: str) -> str:
    """The NOTIFY payload: the kind, the sending worker and the change's fields."""
    return json.dumps({"k": _KIND_OF[type(change)], "w": worker, **asdict(change)})


def decode(payload: str) -> tuple[str, Change]:
    """(the sending worker, the change); ValueError when it is not one."""
    try:
        fields = json.loads(payload)
        kind = _KINDS[fields.pop("k")]
        worker = str(fields.pop("w"))
        return worker, kind(**fields)
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not an invalidation: {payload[:200]!r}") from exc


class Invalidations(Protocol):
    """How a worker tells the others what it changed, and hears what they changed."""

    def publish(self, change: Change) -> None:
        """Tell the other workers, after the change is committed; never blocks nor raises."""
        ...

    async def start(self, apply: Apply) -> None:
        """Hear the others' changes from now on: `apply` gets each (never re-published)."""
        ...

    async def stop(self) -> None: ...


class LocalInvalidations:
    """One process: the local invalidation is all there is; publishing tells nobody."""

    def publish(self, change: Change) -> None:
        return None

    async def start(self, apply: Apply) -> None:
        return None

    async def stop(self) -> None:
        return None


def invalidations_for(db: Database, *, check_every_s: float = CHECK_EVERY_S) -> Invalidations:
    """SQLite is served by one process (local); a server database may have several workers."""
    if db.is_sqlite:
        return LocalInvalidations()
    return PostgresInvalidations(db, check_every_s=check_every_s)


_Snapshot = dict[str, dict[Any, tuple[Any, ...]]]

# What the caches hold, as the database has it now: by name, a query whose first column is a key.
_STATE = {
    "pointers": "SELECT bot_id, array_agg(env || ':' || version_id ORDER BY env) "
    "FROM environment_pointer GROUP BY bot_id",
    "bots": "SELECT id, team_id, name FROM bot",
    "ab": "SELECT id, bot_id, env, version_b, percent FROM ab_test WHERE status = 'running'",
    "deployments": "SELECT id, team_id, bot_id, channel, env, target FROM deployment",
    "handoffs": "SELECT h.id, h.expires_at, h.first_answer_at IS NOT NULL, "
    "(SELECT count(*) FROM handoff_post p WHERE p.handoff_id = h.id) "
    "FROM handoff h WHERE h.closed_at IS NULL",
}


class PostgresInvalidations:
    """LISTEN/NOTIFY on a dedicated connection, with a periodic check as the safety net (see the
    module). The connection is re-opened with backoff when it is lost (PostgreSQL restarted);
    nothing here ever raises into the service."""

    def __init__(self, db: Database, *, check_every_s: float = CHECK_EVERY_S) -> None:
        self.check_every_s = check_every_s
        self.worker = uuid.uuid4().hex[:12]  # this process, in the payloads it sends
        self._options = db.asyncpg_options(name=f"{APPLICATION_NAME}-{self.worker}")
        self._apply: Apply | None = None
        self._conn: asyncpg.Connection | None = None
        self._using = asyncio.Lock()  # one statement at a time on the connection
        self._lost = asyncio.Event()
        self._heard: asyncio.Queue[Change] = asyncio.Queue()
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._seen: _Snapshot | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def publish(self, change: Change) -> None:
        if self._tasks:  # before `start` (or after `stop`) nobody listens here anyway
            self._outbox.put_nowait(encode(change, worker=self.worker))

    async def start(self, apply: Apply) -> None:
        """Connects and reads the state once before returning (a failure is logged and retried
        in the background): changes from here on are heard."""
        self._apply = apply
        connected = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(connected)),
            asyncio.create_task(self._applying()),
            asyncio.create_task(self._sending()),
        ]
        await connected.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._close()

    # -- the connection ---------------------------------------------------------------------

    async def _listen(self, connected: asyncio.Event) -> None:
        """Forever: connect, LISTEN, check every period until the connection is lost; then
        drop every cache (what was missed is unknown) and connect again, backing off."""
        backoff = _BACKOFF_S[0]
        reconnect = False
        while True:
            try:
                await self._connect()
                if reconnect:
                    await self._deliver(Everything())
                    logger.info("invalidations: listening again; every cache was dropped")
                reconnect = True
                while not self._lost.is_set():
                    await self._check()
                    backoff = _BACKOFF_S[0]
                    connected.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), self.check_every_s)
            except Exception as exc:
                logger.warning("invalidations: the listener connection failed: %s", exc)
            connected.set()
            await self._close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_S[1])

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(**self._options, timeout=10)
        conn.add_termination_listener(lambda _conn: self._lost.set())
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            await conn.close(timeout=1)
            raise
        self._conn = conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=1)
            except Exception:  # gone already
                conn.terminate()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            worker, change = decode(payload)
        except ValueError as exc:
            logger.warning("invalidations: %s", exc)
            return
        if worker != self.worker:
            self._heard.put_nowait(change)

    # -- hearing and telling ----------------------------------------------------------------

    async def _applying(self) -> None:
        while True:
            await self._deliver(await self._heard.get())

    async def _deliver(self, change: Change) -> None:
        assert self._apply is not None
        try:
            await self._apply(change)
        except Exception:  # a cache left as it was heals at the next check
            logger.exception("invalidations: applying %s failed", change)

    async def _sending(self) -> None:
        """Send what was published, in order; one sent while disconnected is lost (the others'
        check finds the change)."""
        while True:
            payload = await self._outbox.get()
            conn = self._conn
            if conn is None:
                logger.info("invalidations: not connected, a change was not sent")
                continue
            try:
                async with self._using:
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except Exception as exc:
                logger.warning("invalidations: a change was not sent: %s", exc)
                self._lost.set()

    # -- the safety net ---------------------------------------------------------------------

    async def _check(self) -> None:
        """Read what the caches hold and apply a change for what moved since the last read
        (the first read only sets where to compare from)."""
        conn = self._conn
        assert conn is not None
        now: _Snapshot = {}
        async with self._using:
            for name, query in _STATE.items():
                now[name] = {row[0]: tuple(row[1:]) for row in await conn.fetch(query)}
        seen, self._seen = self._seen, now
        if seen is not None:
            for change in differences(seen, now):
                await self._deliver(change)


def differences(seen: _Snapshot, now: _Snapshot) -> list[Change]:
    """The changes that turn `seen` into `now` (two reads of `_STATE`)."""

    def moved(name: str) -> list[Any]:
        before, after = seen[name], now[name]
        return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))

    changes: list[Change] = []
    bots = sorted({*moved("pointers"), *moved("bots")})
    changes += [BotChanged(bot) for bot in bots]
    tests = [now["ab"].get(k) or seen["ab"][k] for k in moved("ab")]
    changes += [AbChanged(bot) for bot in sorted({test[0] for test in tests})]
    gone = [d for d in moved("deployments") if d in seen["deployments"]]
    changes += [DeploymentForgotten(d) for d in gone]
    if any(d not in seen["deployments"] for d in now["deployments"]):
        changes.append(DeploymentsChanged())
    changes += [HandoffChanged(h) for h in moved("handoffs")]
    return changes
