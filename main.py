"""Chat Studio: the composition root (settings, wiring, start-up) and the command line.

Heavy imports happen inside the commands that need them, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from adapters.mailbox import Mailbox
    from adapters.plugin import ChannelParts, ChannelPlugin
    from runtime.channel import ChannelRegistry
    from runtime.cipher import Cipher
    from runtime.cluster.leader import Leadership
    from runtime.cluster.leader_work import LeaderWork
    from runtime.cluster.presence import Presence
    from runtime.locks import ConversationLocks
    from runtime.runtime import Runtime
    from runtime.scheduler.service import Scheduler
    from runtime.secrets import SecretVault
    from runtime.tools.gateway import ToolGateway
    from storage.database import Database
    from studio.engine import Studio
    from studio.operations import Operations
    from studio.settings import Settings


os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


SHUTDOWN_GRACE_S = 10.0  # background test runs still going after this are stopped (and marked)
RUNS_SWEEP_EVERY_S = 15.0  # how often the leader looks for runs whose worker is gone


class StartupError(Exception):
    """The service cannot start as configured; the message says what to do."""


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    cipher: Cipher
    runtime: Runtime
    ops: Operations
    studio: Studio
    mailbox: Mailbox
    secrets: SecretVault  # team secrets: the tool gateway's `SecretSource`
    scheduler: Scheduler
    parts: dict[str, ChannelParts]  # the channel plugins built here, by kind
    leadership: Leadership  # one per process: the scheduler and `leader_work` ask it
    presence: Presence  # which workers are gone (their runs are failed)
    leader_work: LeaderWork  # what only the cluster's leader runs (see `_leader_jobs`)
    warming: asyncio.Task[None] | None = None  # imports for the first answers (see _warm_up)

    def adapter(self, kind: str) -> Any:
        """The adapter of the channel plugin `kind`, or None when it is off here."""
        part = self.parts.get(kind)
        return part.adapter if part is not None else None

    async def close(self) -> None:
        """Take no more work, finish what was accepted, then let go of connections."""
        await self.leader_work.stop()  # pollers first: no more updates
        for part in self.parts.values():
            if part.stop is not None:
                await part.stop()
        await self.scheduler.stop()
        await self.leadership.release()  # another worker leads while this one drains
        await self.studio.drain(grace_s=SHUTDOWN_GRACE_S)
        await self.runtime.drain()
        await self.runtime.invalidations.stop()
        from runtime.llm import stop_litellm_logging

        await stop_litellm_logging()
        for part in self.parts.values():
            if part.close is not None:
                await part.close()
        if self.runtime.knowledge is not None:
            await self.runtime.knowledge.close()
        if self.runtime.runner.tools is not None:
            await self.runtime.runner.tools.close()
        if self.runtime.runner.spans is not None:  # sends what is queued (blocking HTTP)
            await asyncio.to_thread(self.runtime.runner.spans.close)
        await self.runtime.locks.close()
        await self.db.dispose()


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`; `.env` provider keys are exported for litellm."""
    from dotenv import dotenv_values
    from pydantic import ValidationError

    from studio.settings import Settings, describe_invalid

    for name, value in dotenv_values(".env").items():
        if value is not None and name.isupper() and name.endswith(("_API_KEY", "_API_BASE")):
            os.environ.setdefault(name, value)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise StartupError(describe_invalid(exc)) from None


def _secret(settings: Settings) -> str:
    from runtime.cipher import load_or_create_secret

    if settings.secret_key:
        return settings.secret_key
    if not settings.uses_sqlite:
        raise StartupError(
            "STUDIO_SECRET_KEY is required with a server database: every worker needs the same key"
        )
    return load_or_create_secret(settings.data_dir / "secret.key")


def _tools(settings: Settings, secrets: SecretVault) -> ToolGateway:
    """The gateway every tool call goes through, with each kind of tool."""
    from runtime.tools.base import ToolExecutor
    from runtime.tools.gateway import ToolGateway
    from runtime.tools.mcp import McpExecutor
    from runtime.tools.openapi import OpenApiExecutor

    allow_private = settings.allow_private_urls
    executors: list[ToolExecutor] = [
        OpenApiExecutor(allow_private=allow_private),
        McpExecutor(allow_private=allow_private),
    ]
    return ToolGateway(executors, secrets=secrets)


async def build_services(settings: Settings) -> Services:
    """Open and migrate the database and wire the runtime, the channels and the operations."""
    from adapters.mailbox import Mailbox
    from runtime.channel import ChannelRegistry
    from runtime.cipher import Cipher
    from runtime.cluster.invalidation import invalidations_for
    from runtime.cluster.leader_work import LeaderWork
    from runtime.knowledge.embedder import make_embedder
    from runtime.knowledge.gateway import KnowledgeGateway
    from runtime.knowledge.store import VectorStore
    from runtime.llm import LlmGateway, RetryPolicy
    from runtime.runtime import Runtime
    from runtime.scheduler.service import Scheduler
    from runtime.secrets import SecretVault
    from runtime.turn.budget import BudgetStep
    from runtime.turn.guardrails import GuardrailStep
    from runtime.turn.handoff import relay_to_people
    from runtime.voice import VoiceGateway
    from storage.database import Database
    from storage.migrate import migrate
    from studio.address import STUDIO_DEPLOYMENT
    from studio.budget_notices import StudioBudgetNotifier
    from studio.engine import Studio
    from studio.operations import Operations

    cipher = Cipher(_secret(settings))
    db = Database(settings.database_url)
    await migrate(db)
    leadership = _leadership(db)
    secrets = SecretVault(db, cipher)
    channels = ChannelRegistry()
    mailbox = Mailbox(db)
    channels.register(mailbox)
    policy = RetryPolicy(
        attempt_timeout_s=settings.llm_timeout_s,
        deadline_s=max(settings.llm_deadline_s, settings.llm_timeout_s),
    )
    llm = LlmGateway(api_base=settings.llm_api_base, policy=policy)
    knowledge = KnowledgeGateway(
        store=VectorStore(settings.qdrant_url or str(settings.data_dir / "qdrant")),
        embedder=make_embedder(model=settings.embedding_model, api_base=settings.llm_api_base),
        allow_private_urls=settings.allow_private_urls,
    )
    runtime = Runtime(
        db=db,
        llm=llm,
        channels=channels,
        locks=_conversation_locks(db),
        knowledge=knowledge,
        tools=_tools(settings, secrets),
        voice=VoiceGateway(
            stt_model=settings.stt_model,
            tts_model=settings.tts_model,
            api_base=settings.llm_api_base,
            policy=policy,
        ),
        invalidations=invalidations_for(db),
    )
    if settings.otel_endpoint:
        from runtime.otel import SERVICE_NAME, TurnSpans, otlp_exporter

        service_name = os.environ.get("OTEL_SERVICE_NAME", SERVICE_NAME)
        exporter = otlp_exporter(settings.otel_endpoint)
        runtime.runner.export_spans(TurnSpans(exporter, service_name=service_name))
    ops = Operations(db=db, runtime=runtime, settings=settings, cipher=cipher)
    scheduler = Scheduler(runtime=runtime, leadership=leadership)
    studio = Studio(
        ops=ops,
        runtime=runtime,
        llm=llm,
        builder_model=settings.builder_model,
        judge_model=settings.effective_judge_model,
        secrets=secrets,
        scheduler=scheduler,
    )
    runtime.register_builtin(STUDIO_DEPLOYMENT, studio)
    runtime.runner.add_steps(
        relay_to_people,  # people of the team have it: relayed, not answered (nor guarded)
        GuardrailStep(),
        BudgetStep(db=db, notifier=StudioBudgetNotifier(db=db, tell=studio.tell_leaders)),
    )
    parts = _build_channels(
        settings, channels=channels, runtime=runtime, cipher=cipher, studio=studio
    )
    await runtime.invalidations.start(runtime.apply)  # others' changes heard from here on
    services = Services(
        settings=settings,
        db=db,
        cipher=cipher,
        runtime=runtime,
        ops=ops,
        studio=studio,
        mailbox=mailbox,
        secrets=secrets,
        scheduler=scheduler,
        parts=parts,
        leadership=leadership,
        presence=_presence(db),
        leader_work=LeaderWork(leadership),
    )
    _leader_jobs(services)
    return services


def _leader_jobs(services: Services) -> None:
    """What only the cluster's leader runs, started when this process becomes the leader and
    stopped when it no longer is (at once with SQLite: this process is alone). On a follower
    they would do the same work twice or worse: two pollers of one Telegram bot, or orphan
    knowledge vectors swept while another worker's ingest is writing them."""
    from functools import partial

    from storage import schedules as schedule_store
    from storage import studio_threads
    from studio import confirmations

    work = services.leader_work
    work.add("scheduler catch-up", services.scheduler.take_over)
    work.add(
        "housekeeping",
        partial(
            services.runtime.housekeeping,
            also=(services.mailbox.expire, confirmations.expire, studio_threads.expire),
            kept_longer=((schedule_store.expire, schedule_store.KEEP_RUNS),),
        ),
    )
    work.add("handoff timeouts", services.runtime.handoffs.watch)
    if services.runtime.locks.shared:  # a dead worker's messages; alone, `recover` at start does
        # (a presence of its own: each asks after its own workers)
        work.add("unanswered messages", partial(services.runtime.sweep, _presence(services.db)))
    work.add("knowledge tending", partial(_tend_knowledge, services))
    work.add("orphaned runs", partial(_fail_orphaned_runs, services))
    for kind, part in services.parts.items():
        if part.lead is not None:
            work.add(kind, part.lead)


def _build_channels(
    settings: Settings,
    *,
    channels: ChannelRegistry,
    runtime: Runtime,
    cipher: Cipher,
    studio: Studio,
) -> dict[str, ChannelParts]:
    """Every channel plugin whose settings are complete, built and registered (bots may be
    deployed to it, its people may take handoffs); the Studio learns which settings turn on
    the others."""
    from pydantic import ValidationError

    from adapters.channels import CHANNELS
    from adapters.plugin import PluginContext
    from studio.settings import describe_invalid

    context = PluginContext(settings=settings, runtime=runtime, cipher=cipher, studio=studio)
    parts: dict[str, ChannelParts] = {}
    for plugin in CHANNELS:
        missing = _missing(plugin, settings)
        if missing:
            if plugin.deployable:
                channels.offer_off(plugin.kind, plugin.title, missing=missing)
            if plugin.front is not None:
                runtime.fronts.add_off(plugin.front, missing=missing)
            continue
        try:
            part = plugin.build(context)
        except ValidationError as exc:  # its settings section
            raise StartupError(f"{plugin.title}: {describe_invalid(exc)}") from None
        if part.deployable is not None:
            channels.offer(part.deployable)
        for front in part.fronts:
            channels.register(front)
        if plugin.front is not None:
            runtime.fronts.add(plugin.front, rooms=part.rooms)
        parts[plugin.kind] = part
    return parts


def _missing(plugin: ChannelPlugin, settings: Settings) -> tuple[str, ...]:
    """The settings `plugin` still needs to be on; `StartupError` when its section is invalid."""
    from pydantic import ValidationError

    from studio.settings import describe_invalid

    try:
        return plugin.missing(settings)
    except ValidationError as exc:
        raise StartupError(f"{plugin.title}: {describe_invalid(exc)}") from None


def _conversation_locks(db: Database) -> ConversationLocks:
    """One process's turns of a conversation wait for each other with SQLite; with PostgreSQL
    several workers' turns do (an advisory lock per conversation)."""
    from runtime.cluster.conversation_locks import PostgresConversationLocks
    from runtime.locks import LocalConversationLocks

    return LocalConversationLocks() if db.is_sqlite else PostgresConversationLocks(db)


def _leadership(db: Database) -> Leadership:
    """Who runs the leader-only work: this process with SQLite (it alone serves the data
    folder); with PostgreSQL, whichever process holds the database lock."""
    from runtime.cluster.leader import LocalLeadership, PostgresLeadership

    return LocalLeadership() if db.is_sqlite else PostgresLeadership(db.url, worker=db.worker)


def _presence(db: Database) -> Presence:
    from runtime.cluster.presence import LocalPresence, PostgresPresence

    return LocalPresence(db.worker) if db.is_sqlite else PostgresPresence(db)


def build_app(settings: Settings, *, console_url: str | None = None) -> FastAPI:
    """The whole service as one ASGI app; start-up and shutdown live in its lifespan."""
    from adapters.mcp.server import StudioMcp
    from adapters.web.app import create_app
    from adapters.web.deps import WebServices
    from adapters.web.rate_limit import RateLimiter
    from adapters.web.sessions import SessionIssuer
    from runtime.memory import collect_young_less_often, freeze_long_lived

    mcp = StudioMcp(version=_version())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings)
        created = await services.ops.ensure_local_team(settings.data_dir / "local.key")
        if created is not None:
            where = console_url or "the web console at /"
            print(
                f"Created the 'local' team. Its owner API key (also in "
                f"{settings.data_dir / 'local.key'}):\n  {created.key}\nOpen {where} and enter it.",
                flush=True,
            )
        await services.runtime.handoffs.load()  # before any turn asks whether it is handed over
        if not services.runtime.locks.shared:  # alone: what the last run left is this one's
            await services.runtime.recover()  # queues the backlog: answered in the background
        await services.scheduler.start()  # catches up on what was missed, in the background
        services.warming = asyncio.create_task(_warm_up(services))
        for part in services.parts.values():
            if part.start is not None:
                await part.start()
        await services.leader_work.start()  # the leader-only work, if this process leads
        freeze_long_lived(after="start")
        collect_young_less_often()
        app.state.services = WebServices(
            settings=settings,
            ops=services.ops,
            runtime=services.runtime,
            studio=services.studio,
            mailbox=services.mailbox,
            sessions=SessionIssuer(services.cipher),
            session_limiter=RateLimiter(per_minute=settings.web_rate_per_session, burst=10),
            address_limiter=RateLimiter(
                per_minute=settings.web_rate_per_address,
                burst=max(10, int(settings.web_rate_per_address // 2)),
            ),
            leadership=services.leadership,
        )
        app.state.core = services
        try:
            async with mcp.serving(services.studio):  # its requests stop before the services
                yield
        finally:
            services.warming.cancel()
            await services.close()

    from adapters.channels import CHANNELS

    on = [plugin for plugin in CHANNELS if not _missing(plugin, settings)]
    app = create_app(
        lifespan,
        channel_routes=[routes for plugin in on if (routes := plugin.routes()) is not None],
        body_limits=[limit for plugin in CHANNELS for limit in plugin.body_limits],
    )
    app.router.routes.append(mcp.route())
    return app


async def _warm_up(services: Services) -> None:
    """Import what the first answers after a start will need while nothing is asked yet (each
    import takes seconds): litellm when a deployed version uses a provider's model, and a
    channel's library when bots are deployed to it (Telegram's aiogram; in polling mode the
    pollers load it anyway)."""
    import logging

    from builders.spec import OFFLINE_MODEL
    from storage.deployments import DeploymentRepository

    try:
        async with services.db.read() as session:
            live = await DeploymentRepository(session).live_sample(limit=200)
        work: list[Awaitable[None]] = []
        if any(model not in (None, OFFLINE_MODEL) for _, model in live):
            work.append(services.runtime.llm.warm())
        deployed = {channel for channel, _ in live}
        for kind, part in services.parts.items():
            if part.warm is not None and kind in deployed:
                work.append(part.warm())
        await asyncio.gather(*work)
        if work:  # they made most of the lasting objects (see runtime.memory)
            from runtime.memory import freeze_long_lived

            freeze_long_lived(after="warm-up")
    except Exception:
        logging.getLogger(__name__).exception("warming up failed (the first answers load it)")


async def _tend_knowledge(services: Services) -> None:
    """Leader only, once per term (embedded Qdrant reads all its points when it opens):
    knowledge vectors nothing refers to (an ingest interrupted by a crash) go, then knowledge
    stored before keywords is re-indexed with them.

    A bot's knowledge lock is the workers' shared one (`KnowledgeOperations._lock`): an ingest
    under way on another worker is waited for, never taken for orphans."""
    import logging

    log = logging.getLogger(__name__)
    try:
        removed = await services.studio.knowledge.collect_orphans()
        if removed:
            log.info("removed %d unused knowledge sources", removed)
        upgraded = await services.studio.knowledge.upgrade()
        if upgraded:
            log.info("re-indexed the knowledge of %d bots with keywords", upgraded)
    except Exception:
        log.exception("tending the knowledge store failed (it is tried again at the next start)")


async def _fail_orphaned_runs(services: Services) -> None:
    """Leader only: test and evaluation runs whose worker is gone are marked failed (a
    promotion would wait for them, an evaluation of their bot could not start), at once (a
    restart's leftovers) and then every RUNS_SWEEP_EVERY_S (a worker that died meanwhile)."""
    import logging

    while True:
        try:
            await services.studio.tests.fail_orphaned(services.presence)
            await services.studio.evals.fail_orphaned(services.presence)
        except Exception:
            logging.getLogger(__name__).exception("failing the runs of gone workers failed")
        await asyncio.sleep(RUNS_SWEEP_EVERY_S)


class _ServeLock:
    """One process per embedded store: the SQLite file and embedded Qdrant belong to one process.

    The lock is an open file with an exclusive `flock`, so it lasts exactly as long as the
    process keeps the file open (the holder must stay referenced) and dies with the process,
    even after `kill -9`. The file names its holder: pid, and the URL it serves on if any.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def acquire(self, *, url: str | None = None) -> _ServeLock:
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+")  # noqa: SIM115  (held open for the life of the process)
        except OSError as exc:  # a file of that name, no permission, a read-only disk
            raise StartupError(
                f"STUDIO_DATA_DIR={self.path.parent} cannot hold the data: "
                f"{exc.strerror or exc} (give a folder this user can write)"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid, _, holder_url = handle.read().strip().partition(" ")
            handle.close()
            raise HeldError(self.path.parent, pid=pid or None, url=holder_url or None) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()} {url or ''}".strip())
        handle.flush()
        self._handle = handle
        return self


class HeldError(StartupError):
    """Another process holds the data folder."""

    def __init__(self, folder: Path, *, pid: str | None, url: str | None) -> None:
        self.folder, self.pid, self.url = folder, pid, url
        who = "`serve`" if url else "process"  # only `serve` gives a URL (`chat` holds it too)
        who += f" (pid {pid})" if pid else ""
        super().__init__(
            f"Another {who} is already using {folder}. Stop it first; "
            "to run several processes use PostgreSQL (STUDIO_DATABASE_URL) and a Qdrant "
            "server (STUDIO_QDRANT_URL)."
        )


_held: list[_ServeLock] = []  # the data folder locks this process holds until it exits


def _hold_data(settings: Settings, *, url: str | None = None) -> None:
    """Take the data folder for the rest of this process when it holds embedded stores."""
    if settings.uses_sqlite or settings.qdrant_url is None:
        _held.append(_ServeLock(settings.data_dir / "serve.lock").acquire(url=url))


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from runtime.logs import configure_logging

    settings = load_settings()
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    console = f"http://{shown_host}:{args.port}/"
    _hold_data(settings, url=console)
    configure_logging(settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request URL at INFO, and Telegram's URLs carry the bot's token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler logs each wake-up (every few seconds) at INFO; the scheduler logs what it sends.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    app = build_app(settings, console_url=console)
    print(f"Chat Studio on {console}", flush=True)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False)
    uvicorn.Server(config).run()
    return 0


async def _with_services(work: Any) -> Any:
    services = await build_services(load_settings())
    try:
        return await work(services)
    finally:
        await services.close()


async def _team_caller(services: Services, team: str) -> Any:
    """The command line acts as the owner of `team` (whoever runs it has the data)."""
    from storage.teams import TeamRepository
    from studio.errors import NotFoundError
    from studio.roles import Caller, Role

    async with services.db.read() as session:
        row = await TeamRepository(session).by_name(team)
    if row is None or row.id is None:
        raise NotFoundError(f"no team named '{team}' (python main.py team create NAME)")
    return Caller(team_id=row.id, team=row.name, identity="cli", role=Role.OWNER)


def cmd_team_create(args: argparse.Namespace) -> int:
    async def work(services: Services) -> None:
        created = await services.ops.create_team(args.name)
        print(f"Team '{created.team}' created. Owner API key (shown once):\n{created.key}")

    asyncio.run(_with_services(work))
    return 0


def cmd_apikey_create(args: argparse.Namespace) -> int:
    async def work(services: Services) -> None:
        created = await services.ops.create_api_key(team=args.team, role=args.role, name=args.name)
        print(f"API key for {created.name} ({created.role}) in '{created.team}' (shown once):")
        print(created.key)

    asyncio.run(_with_services(work))
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    async def work(services: Services) -> None:
        keys = await services.ops.api_keys(await _team_caller(services, args.team))
        print(f"{'ID':>4}  {'NAME':<20} {'ROLE':<7} {'STARTS':<11} CREATED")
        for key in keys:
            created = key.created_at.strftime("%Y-%m-%d %H:%M")
            print(f"{key.id:>4}  {key.name:<20} {key.role:<7} {key.prefix + '…':<11} {created}")

    asyncio.run(_with_services(work))
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    async def work(services: Services) -> None:
        caller = await _team_caller(services, args.team)
        revoked = await services.ops.revoke_api_key(caller, args.id)
        print(f"Revoked key {revoked.id} ({revoked.name}, {revoked.role}) in '{caller.team}'.")

    asyncio.run(_with_services(work))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    async def work(services: Services) -> None:
        caller = await _team_caller(services, args.team)
        sys.stdout.write(await services.ops.export_bot(caller, args.bot))

    asyncio.run(_with_services(work))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=sys.stderr)
        return 1

    async def work(services: Services) -> None:
        caller = await _team_caller(services, args.team)
        view = await services.ops.import_bot(caller, text, replace=args.replace)
        print(f"Imported {view.name} (draft revision {view.revision}).")

    asyncio.run(_with_services(work))
    return 0


def _local_key(settings: Settings) -> str | None:
    path = settings.data_dir / "local.key"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def cmd_chat(args: argparse.Namespace) -> int:
    try:
        return int(asyncio.run(_chat(args)))
    except KeyboardInterrupt:  # Ctrl-C: leave as `exit` does, without a traceback
        print(file=sys.stderr)
        return 130


async def _chat(args: argparse.Namespace) -> int:
    """Over HTTP when a service answers at --url, else with the Studio in this process."""
    import getpass

    import httpx

    from adapters.terminal.chat import HttpLink, LinkError, LocalLink, chat_in_terminal
    from studio.roles import Role

    settings = load_settings()
    key = args.key or os.environ.get("STUDIO_API_KEY") or _local_key(settings)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=120) as client:
        try:
            running = (await client.get("/healthz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            running = False
        if running:
            if not key:
                raise StartupError(
                    f"a service runs at {args.url}: give its team key with --key or STUDIO_API_KEY"
                )
            link = HttpLink(client)
            try:
                await link.start()
            except LinkError as exc:
                raise StartupError(f"the service at {args.url} refused: {exc}") from None
            await chat_in_terminal(link)
            return 0
    try:
        _hold_data(settings)
    except HeldError as held:
        if held.url:
            raise StartupError(
                f"nothing answers at {args.url}, and `serve` (pid {held.pid}) holds "
                f"{held.folder}: talk to it with python main.py chat --url {held.url}"
            ) from None
        raise StartupError(
            f"nothing answers at {args.url}, and another process (pid {held.pid or '?'}) holds "
            f"{held.folder}: stop it, or give the address it serves on with --url"
        ) from None
    services = await build_services(settings)
    try:
        await services.studio.tests.fail_orphaned(services.presence)  # as `serve`'s leader
        await services.ops.ensure_local_team(settings.data_dir / "local.key")
        caller = await _team_caller(services, args.team)
        identity = f"cli:{getpass.getuser()}"
        await services.studio.members.admit(caller.team_id, identity, Role.OWNER, actor="cli")
        local = LocalLink(services, caller.team_id, identity)
        await local.start()
        await chat_in_terminal(local)
    finally:
        await services.close()
    return 0


def _version() -> str:
    """The installed distribution's version, else the one pyproject.toml beside us declares."""
    from importlib import metadata

    try:
        return metadata.version("chat-studio")
    except metadata.PackageNotFoundError:
        import tomllib

        with open(Path(__file__).with_name("pyproject.toml"), "rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="main.py", description="Chat Studio")
    top.add_argument("--version", action="version", version=f"chat-studio {_version()}")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the whole service (HTTP, channels, runtime)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(run=cmd_serve)

    chat = sub.add_parser("chat", help="talk to the Studio in the terminal")
    chat.add_argument("--team", default="local", help="without a running service (default local)")
    chat.add_argument(
        "--url", default="http://127.0.0.1:8000", help="a running service to talk through"
    )
    chat.add_argument("--key", help="its team key (default STUDIO_API_KEY or data/local.key)")
    chat.set_defaults(run=cmd_chat)

    team = sub.add_parser("team", help="teams").add_subparsers(dest="action", required=True)
    team_create = team.add_parser("create", help="create a team and print its owner API key")
    team_create.add_argument("name")
    team_create.set_defaults(run=cmd_team_create)

    apikey = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    key_create = apikey.add_parser("create", help="create an API key with a role")
    key_create.add_argument("--team", default="local")
    key_create.add_argument("--role", required=True, help="owner, admin, editor or viewer")
    key_create.add_argument("--name", required=True, help="who or what uses the key")
    key_create.set_defaults(run=cmd_apikey_create)
    key_list = apikey.add_parser("list", help="list the team's keys (never the keys themselves)")
    key_list.add_argument("--team", default="local")
    key_list.set_defaults(run=cmd_apikey_list)
    key_revoke = apikey.add_parser("revoke", help="revoke a key: it stops working at once")
    key_revoke.add_argument("id", type=int, help="the key's id, from apikey list")
    key_revoke.add_argument("--team", default="local")
    key_revoke.set_defaults(run=cmd_apikey_revoke)

    export = sub.add_parser("export", help="print a bot's draft as YAML")
    export.add_argument("bot")
    export.add_argument("--team", default="local")
    export.set_defaults(run=cmd_export)

    imp = sub.add_parser("import", help="import a bot from a YAML file")
    imp.add_argument("file")
    imp.add_argument("--team", default="local")
    imp.add_argument(
        "--replace", action="store_true", help="overwrite the draft of an existing bot"
    )
    imp.set_defaults(run=cmd_import)

    knowledge = sub.add_parser("knowledge", help="add documents to a bot's knowledge")
    from adapters.terminal.knowledge_upload import add_arguments as knowledge_arguments

    knowledge_arguments(knowledge)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from studio.errors import OperationError

        if isinstance(exc, OperationError):
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
