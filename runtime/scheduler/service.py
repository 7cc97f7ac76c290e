"""`Scheduler`: schedules, follow-ups, triggers and the Studio's stats reports, end to end.

The project's tables are the truth; APScheduler (memory job store, rebuilt from the book) only
wakes the process at each fire time (one pass at a time: wakes during a pass make one more pass
after it), and every decision takes an explicit `now` (`run_due(now)`), so tests drive it with
their own clock. The leader (`runtime.cluster.leader`) does the due work; whoever inserts an
occurrence's `schedule_run` row sends it, so an occurrence goes out once across restarts and
processes, and holds it (a lease, `storage.schedules.LEASE`) while it sends. A run missed while
the service was down is sent late within the schedule's grace, else recorded `skipped` (only the
latest missed occurrence is considered). A run interrupted is taken over once its lease ran out
and goes on from its cursor, within its grace; each recipient's delivery row keeps anyone from
getting it twice. A paused schedule's occurrences pass by unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from builders.cron import time_zone
from builders.cron import trigger as cron_trigger
from builders.spec import Schedule, check_prompt
from runtime.cluster.leader import Leadership
from runtime.messages import Address
from runtime.metrics import SCHEDULE_FIRES
from runtime.runtime import LiveVersion, NotLiveError, Runtime
from runtime.scheduler.book import (
    STUDIO_ENV,
    Book,
    Entry,
    latest_due,
    next_due,
    report_run_id,
    schedules_of,
)
from runtime.scheduler.fanout import BATCH, PAUSED, FanOut, Lease, Pacer, Tally, rate_of
from runtime.scheduler.followups import FollowUps
from runtime.scheduler.proactive import Place, Proactive, address_of
from runtime.scheduler.types import (
    LastRun,
    LeftOutError,
    ProactiveError,
    Report,
    ReportInfo,
    ScheduleStatus,
    Sent,
    UnknownEndUserError,
)
from storage import schedules as store
from storage.tables import utcnow

logger = logging.getLogger(__name__)

FOLLOWUPS_EVERY_S = 15
BOOK_EVERY_S = 30
# A run this late is on time, whatever its grace (the loop was busy, the poll came late); later
# than that and later than its grace, it was missed while the service was down.
ON_TIME = timedelta(minutes=1)
STOP_GRACE_S = 10.0


class Scheduler:
    """What H2's Studio and REST call, and what runs the due work (see the module)."""

    def __init__(
        self,
        *,
        runtime: Runtime,
        leadership: Leadership,
        clock: Callable[[], datetime] = utcnow,
        batch: int = BATCH,
    ) -> None:
        self.runtime = runtime
        self.leadership = leadership
        self.clock = clock
        # The Studio sets it: posts a stats report to its place (raises when it cannot).
        self.report_poster: Callable[[Report], Awaitable[None]] | None = None
        self.book = Book(runtime.db)
        self.proactive = Proactive(runtime)
        self.followups = FollowUps(runtime, self.proactive, halted=self._halted)
        self._fanout_batch = batch
        self._pacer = Pacer()
        self.owner = uuid.uuid4().hex  # this process, as the owner of the runs it sends
        self._checked: dict[tuple[int, str, str], datetime] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._halt = False  # stopping: sends under way finish, no new ones start
        self._claiming = asyncio.Lock()
        self._pass: asyncio.Task[None] | None = None  # the wake-up's pass under way
        self._again = False  # woken during that pass: one more after it
        self._refreshing = asyncio.Lock()
        # Bumped when a bot changes; `_read` is the one the book was last read at (a read
        # under way does not count: a change during it is read again).
        self._changes = 1
        self._read = 0
        self._aps: AsyncIOScheduler | None = None
        self._jobs: dict[str, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        runtime.bot_listeners.append(self.bot_changed)

    # -- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Inside the running loop: the book, the timers, and the catch-up of what was missed
        (in the background)."""
        await self.leadership.check()
        await self._refresh()
        aps = AsyncIOScheduler(timezone=UTC)
        every = {
            "followups": (self._wake, FOLLOWUPS_EVERY_S),
            "book": (self._wake_book, BOOK_EVERY_S),
        }
        for job_id, (job, seconds) in every.items():
            aps.add_job(job, IntervalTrigger(seconds=seconds), id=job_id, **_JOB_OPTIONS)
        self._aps = aps
        self._sync_jobs()
        aps.start()
        await self._wake()

    async def stop(self, *, grace_s: float = STOP_GRACE_S) -> None:
        """Before the runtime drains: no new work; sends under way finish (a fan-out stops
        after them: its cursor is saved with each batch, and the next start goes on from
        there). What is still running after `grace_s` is cancelled."""
        self._halt = True
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
            self._jobs.clear()
            await asyncio.sleep(0)  # the shutdown runs on the loop
        pending = [*self._tasks, *self._running.values()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.bot_changed in self.runtime.bot_listeners:
            self.runtime.bot_listeners.remove(self.bot_changed)

    def bot_changed(self, bot_id: int) -> None:
        """A bot's pointers moved (promotion, rollback) or it went: read the book again."""
        self._changes += 1
        if self._aps is not None:
            self._spawn(self._wake_book())

    # -- the due work ------------------------------------------------------------------------

    async def run_due(self, now: datetime) -> None:
        """Everything due up to `now` (the leader only): each schedule's latest occurrence
        not considered yet, runs left unfinished, follow-ups. Returns when they are done."""
        started = await self._due(now)
        if started:  # a run's failure is logged by its task (`_start_run`)
            await asyncio.gather(*started, return_exceptions=True)

    async def _due(self, now: datetime) -> list[asyncio.Task[None]]:
        """Claim what is due at `now` and start sending it; send the follow-ups due. The runs
        started (still sending) are returned."""
        if self._halted():
            return []
        started: list[asyncio.Task[None]] = []
        async with self._claiming:
            if self._read != self._changes or not self.book.loaded:
                await self._refresh()
            for entry in self.book.entries():
                try:
                    task = await self._consider(entry, now)
                except Exception:  # this entry is considered again at the next pass
                    logger.exception(
                        "a schedule's run was not recorded", extra={"bot": entry.bot_id}
                    )
                    continue
                if task is not None:
                    started.append(task)
            try:
                started += await self._resume_unfinished(now)
            except Exception:
                logger.exception("unfinished schedule runs were not looked at")
        if not self._halted():
            await self.followups.run_due(now)
        return started

    async def _consider(self, entry: Entry, now: datetime) -> asyncio.Task[None] | None:
        """The entry's latest occurrence up to `now` not considered yet, if any; the entry
        counts as considered up to `now` only once that occurrence was recorded."""
        checked = max(self._checked.get(entry.key, entry.since), entry.since)
        due = latest_due(entry.cron, entry.tz, after=checked, now=now)
        task = None if due is None else await self._occur(entry, due, now)
        self._checked[entry.key] = max(checked, now)
        return task

    async def _occur(self, entry: Entry, due: datetime, now: datetime) -> asyncio.Task[None] | None:
        """Record the occurrence due at `due`; start sending it when it is this process's. A
        paused schedule's occurrence passes by, unrecorded."""
        if entry.schedule is not None and await self._is_paused(entry):
            return None
        status, error = "sending", None
        if now - due > _grace(entry):
            status = "skipped"
            error = (
                f"missed: the service was not running at {_local(due, entry.tz)} "
                f"(grace {entry.grace_minutes} min)"
            )
        run_id = await self.runtime.writes.run(
            partial(
                store.claim_run,
                bot_id=entry.bot_id,
                env=entry.env,
                schedule_id=entry.run_id,
                due_at=due,
                status=status,
                error=error,
                owner=self.owner,
                now=now,
            )
        )
        if run_id is None:
            return None  # recorded already: by this process earlier, or by another
        if status != "sending":
            SCHEDULE_FIRES.labels(_kind(entry.env), status).inc()
            logger.info("schedule %s skipped: %s", entry.run_id, error, extra={"bot": entry.bot_id})
            return None
        row = store.RunRow(
            id=run_id,
            bot_id=entry.bot_id,
            env=entry.env,
            schedule_id=entry.run_id,
            due_at=due,
            status="sending",
            sent=0,
            failed=0,
            cursor=None,
            error=None,
            started_at=now,
        )
        return self._start_run(entry, row, self._lease(run_id, now), resumed=False)

    async def _is_paused(self, entry: Entry) -> bool:
        async with self.runtime.db.read_conn() as conn:
            return await store.is_paused(conn, entry.bot_id, entry.run_id)

    async def _resume_unfinished(self, now: datetime) -> list[asyncio.Task[None]]:
        """Runs left `sending` whose lease ran out (a restart, a crash, another leader
        before): taken over (the conditional update decides, never what was read), then on
        from their cursor, or finished when they should not go on."""
        async with self.runtime.db.read_conn() as conn:
            rows = await store.unfinished_runs(conn, now=now)
        started = []
        for row in rows:
            if self._halted():
                break
            if row.id in self._running:
                continue
            taken = await self.runtime.writes.run(
                partial(store.take_run, run_id=row.id, owner=self.owner, now=now)
            )
            if not taken:
                continue  # finished meanwhile, or another process holds it
            lease = self._lease(row.id, now)
            entry = self.book.entry(row.bot_id, row.env, row.schedule_id)
            tally = Tally(row.sent, row.failed)
            if entry is None:
                tally.skipped = f"stopped: {row.schedule_id} no longer runs in {row.env}"
            elif entry.report is not None:  # its first copy may be in the outbox already
                tally.failed += 1
                tally.error = "interrupted; not posted again"
            elif now - row.due_at > _grace(entry):
                tally.skipped = "stopped, then beyond its grace"
            else:
                started.append(self._start_run(entry, row, lease, resumed=True))
                continue
            await self._finish(lease, tally, kind=_kind(row.env))
        return started

    def _lease(self, run_id: int, now: datetime) -> Lease:
        return Lease(
            run_id=run_id,
            owner=self.owner,
            writes=self.runtime.writes,
            clock=self.clock,
            since=now,
        )

    def _halted(self) -> bool:
        """Stopping, or another process leads now: no new sends."""
        return self._halt or not self.leadership.leader

    def _start_run(
        self, entry: Entry, row: store.RunRow, lease: Lease, *, resumed: bool
    ) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self._send_run(entry, row, lease, resumed=resumed))
        self._running[row.id] = task
        task.add_done_callback(partial(self._run_done, row.id))
        return task

    def _run_done(self, run_id: int, task: asyncio.Task[None]) -> None:
        self._running.pop(run_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a schedule run was not finished", exc_info=task.exception())

    async def _send_run(
        self, entry: Entry, row: store.RunRow, lease: Lease, *, resumed: bool
    ) -> None:
        tally: Tally | None
        try:
            if entry.report is not None:
                tally = await self._post_report(entry.report)
            else:
                assert entry.schedule is not None
                tally = await self._send_schedule(
                    entry, entry.schedule, row, lease, resumed=resumed
                )
        except LeftOutError as exc:
            tally = Tally(row.sent, row.failed, skipped=str(exc))
        except (ProactiveError, NotLiveError) as exc:
            tally = Tally(row.sent, row.failed + 1, str(exc))
        except Exception as exc:  # a bug must not leave the run `sending` for ever
            logger.exception("a schedule run failed", extra={"bot": entry.bot_id})
            tally = Tally(row.sent, row.failed + 1, f"internal: {type(exc).__name__}")
        if tally is not None:
            await self._finish(lease, tally, kind=_kind(entry.env))
        elif not lease.lost:  # halted: the next leader goes on from the cursor at once
            await lease.release()

    async def _finish(self, lease: Lease, tally: Tally, *, kind: str) -> None:
        """Record how the run ended; counted once, by the process that finished it."""
        status, notes = "sent", []
        if tally.failed and not tally.sent:
            status, notes = "failed", [tally.error]
        elif tally.skipped and not tally.sent:
            status, notes = "skipped", [tally.skipped]
        else:
            if tally.failed:
                notes.append(f"{tally.failed} not sent: {tally.error}")
            if tally.skipped:
                notes.append(tally.skipped)
        error = "; ".join(note for note in notes if note) or None
        if not await lease.finish(status=status, tally=tally, error=error):
            logger.warning("a schedule run was taken over before it finished")
            return
        SCHEDULE_FIRES.labels(kind, status).inc()

    async def _send_schedule(
        self, entry: Entry, schedule: Schedule, row: store.RunRow, lease: Lease, *, resumed: bool
    ) -> Tally | None:
        live = await self.runtime.live_version(entry.bot_id, entry.env)
        if not any(item.id == schedule.id for item in live.spec.schedules):
            raise ProactiveError(f"{schedule.id} is no longer in the version {entry.env} runs")
        send = partial(
            self.proactive.send, live=live, origin="schedule", ident=schedule.id, run=row.id
        )
        paused = partial(self._is_paused, entry)
        if schedule.to is not None:
            if await paused():  # paused while it was interrupted
                return Tally(row.sent, row.failed, skipped=PAUSED)
            place = await self._place(entry.bot_id, schedule.to, env=entry.env)
            await send(place, schedule.message)
            return Tally(sent=1)
        async with self.runtime.db.read_conn() as conn:
            found = await store.deployments(conn, bot_id=entry.bot_id, env=entry.env)
        deployment_ids = [deployment.id for deployment in found]

        async def read(after: int, limit: int) -> list[store.Recipient]:
            async with self.runtime.db.read_conn() as conn:
                return await store.audience(
                    conn, deployment_ids=deployment_ids, after=after, limit=limit
                )

        async def to_one(recipient: store.Recipient, address: Address) -> bool:
            target = await self.runtime.target(recipient.deployment_id)
            delivered = await send(Place(target, address), schedule.message)
            return delivered.conversation_id is not None

        fanout = FanOut(
            read=read,
            lease=lease,
            paused=paused,
            rate_of=rate_of(self.runtime.channels),
            pacer=self._pacer,
            halted=self._halted,
            batch=self._fanout_batch,
        )
        return await fanout.run(row, to_one, resumed=resumed)

    async def _post_report(self, report: Report) -> Tally:
        if self.report_poster is None:
            return Tally(failed=1, error="no Studio in this process posts stats reports")
        try:
            await self.report_poster(report)
        except Exception as exc:
            logger.warning("a stats report was not posted: %s", exc, extra={"bot": report.bot_id})
            return Tally(failed=1, error=f"not posted: {exc}"[:300])
        return Tally(sent=1)

    # -- places ------------------------------------------------------------------------------

    async def _place(self, bot_id: int, to: str, *, env: str | None) -> Place:
        """Where a schedule's `to` is, as the deployments of the bot in `env` (in any
        environment when None) reach it: Slack, a deployment bound to that very channel;
        Telegram, the chat's conversation with a Telegram deployment; the web, the session's
        conversation with a web deployment. Raises LeftOutError when they do not reach it (a
        run is then skipped there: each environment posts only where it is deployed), and
        ProactiveError when nothing could."""
        kind, _, ident = to.partition(":")
        channels = self.runtime.channels
        if not ident or not (kind in channels.offered() or channels.has(kind)):
            places = ", ".join(f"{offered}:…" for offered in channels.offered())
            raise ProactiveError(f"'{to[:60]}' is not a place: one of {places}")
        name = channels.title(kind)
        if not self.runtime.channels.has(kind):
            raise ProactiveError(f"{name} is not set up in this service")
        who = env or "the bot"
        async with self.runtime.db.read_conn() as conn:
            found = await store.deployments(conn, bot_id=bot_id, env=env, channel=kind)
            if kind == "slack":
                bound = [deployment for deployment in found if deployment.target == ident]
                if not bound:
                    raise LeftOutError(
                        f"{who} has no Slack deployment in that channel"
                        + ("" if env else ": deploy it there first")
                    )
                address = Address(
                    channel="slack",
                    deployment_id=bound[0].id,
                    conversation=f"{ident}:",
                    user=f"{store.PLACE_USER}{ident}",  # a channel, not an end user
                    thread=f"{ident}:",
                )
            else:
                if not found:
                    raise LeftOutError(
                        f"{who} has no {name} deployment"
                        + ("" if env else f": deploy it to {name} first")
                    )
                ids = [deployment.id for deployment in found]
                recipient = await store.latest_conversation(conn, deployment_ids=ids, key=ident)
                if recipient is None:
                    raise LeftOutError(_never_talked(kind, ident, f" in {env}" if env else ""))
                address = address_of(recipient)
        return Place(await self.runtime.target(address.deployment_id), address)

    async def problem_with(self, bot_id: int, to: str) -> str | None:
        try:
            await self._place(bot_id, to, env=None)
        except ProactiveError as exc:
            return str(exc)
        return None

    # -- triggers ----------------------------------------------------------------------------

    async def trigger(
        self, *, bot_id: int, env: str, channel: str, user: str, message: str
    ) -> Sent:
        """The bot messages a known end user now (in their latest conversation with the bot
        on `channel`). Raises UnknownEndUserError, ProactiveError, NotLiveError."""
        if not message.strip():
            raise ProactiveError("the message is empty")
        try:
            check_prompt(message)
        except ValueError as exc:
            raise ProactiveError(str(exc)) from None
        stored = user if user.startswith(f"{channel}:") else f"{channel}:{user}"
        live: LiveVersion = await self.runtime.live_version(bot_id, env)
        async with self.runtime.db.read_conn() as conn:
            found = await store.deployments(conn, bot_id=bot_id, env=env, channel=channel)
            ids = [deployment.id for deployment in found]
            recipient = await store.latest_conversation(conn, deployment_ids=ids, user=stored)
        if recipient is None:
            where = self.runtime.channels.title(channel)
            raise UnknownEndUserError(
                f"{stored[:80]} has never talked to this bot on {where} ({env})"
            )
        target = await self.runtime.target(recipient.deployment_id)
        try:
            delivered = await self.proactive.send(
                Place(target, address_of(recipient)),
                message,
                live=live,
                origin="trigger",
                ident="api",
            )
        except ProactiveError as exc:
            outcome = "skipped" if isinstance(exc, LeftOutError) else "failed"
            SCHEDULE_FIRES.labels("trigger", outcome).inc()
            raise
        SCHEDULE_FIRES.labels("trigger", "sent").inc()
        conversation_id = delivered.conversation_id or recipient.conversation_id
        return Sent(
            conversation_id=conversation_id, text=delivered.text, channel=channel, user=stored
        )

    # -- what the Studio shows and changes ---------------------------------------------------

    async def statuses(self, bot_id: int) -> list[ScheduleStatus]:
        """Each schedule of each environment that points at a version, as it runs now."""
        now = self.clock()
        found: list[ScheduleStatus] = []
        async with self.runtime.db.read_conn() as conn:
            pointers = await store.pointers(conn, bot_id)
            paused = await store.paused(conn, bot_id)
            latest = await store.latest_runs(conn, bot_id)
            order = {env: n for n, env in enumerate(store.ENVIRONMENTS)}
            for pointer in sorted(pointers, key=lambda p: order[p.env]):
                stored = await store.version_schedules(conn, pointer.version_id)
                for schedule in schedules_of(stored):
                    stopped = schedule.id in paused
                    found.append(
                        ScheduleStatus(
                            env=pointer.env,
                            version=pointer.number,
                            schedule_id=schedule.id,
                            next_run=None
                            if stopped
                            else _next(schedule.cron, schedule.tz, max(now, pointer.moved_at)),
                            last_run=_last(latest.get((pointer.env, schedule.id))),
                            paused=stopped,
                        )
                    )
        return found

    async def pause(self, bot_id: int, schedule_id: str, *, by: str) -> bool:
        now = self.clock()
        return await self.runtime.writes.run(
            partial(store.pause, bot_id=bot_id, schedule_id=schedule_id, by=by, now=now)
        )

    async def resume(self, bot_id: int, schedule_id: str) -> bool:
        return await self.runtime.writes.run(
            partial(store.resume, bot_id=bot_id, schedule_id=schedule_id)
        )

    async def add_report(
        self,
        *,
        team_id: int,
        bot_id: int,
        cron: str,
        tz: str,
        period: str,
        address: dict[str, Any],
        place: str,
        by: str,
    ) -> ReportInfo:
        """Post the bot's stats to `place` on a cron schedule (replacing its report there);
        raises builders.cron.CronError for a cron expression or time zone it cannot use."""
        cron_trigger(cron, tz)
        report_id = await self.runtime.writes.run(
            partial(
                store.put_report,
                team_id=team_id,
                bot_id=bot_id,
                cron=cron,
                tz=tz,
                period=period,
                address=address,
                place=place,
                by=by,
                now=self.clock(),
            )
        )
        self.bot_changed(bot_id)
        return next(info for info in await self.reports(bot_id) if info.id == report_id)

    async def remove_report(self, *, bot_id: int, report_id: int) -> bool:
        removed = await self.runtime.writes.run(
            partial(store.remove_report, bot_id=bot_id, report_id=report_id)
        )
        if removed:
            self.bot_changed(bot_id)
        return removed

    async def reports(self, bot_id: int) -> list[ReportInfo]:
        now = self.clock()
        async with self.runtime.db.read_conn() as conn:
            rows = await store.reports(conn, bot_id)
            latest = await store.latest_runs(conn, bot_id)
        return [
            ReportInfo(
                id=row.id,
                bot_id=row.bot_id,
                cron=row.cron,
                tz=row.tz,
                period=row.period,
                place=row.place,
                next_run=_next(row.cron, row.tz, max(now, row.created_at)),
                last_run=_last(latest.get((STUDIO_ENV, report_run_id(row.id)))),
            )
            for row in rows
        ]

    # -- timers ------------------------------------------------------------------------------

    async def _refresh(self) -> None:
        async with self._refreshing:
            changes = self._changes
            if await self.book.refresh():
                keys = {entry.key for entry in self.book.entries()}
                for gone in set(self._checked) - keys:
                    del self._checked[gone]
            self._read = changes
            self._sync_jobs()

    def _sync_jobs(self) -> None:
        """One APScheduler job per entry of the book (added, replaced, removed)."""
        aps = self._aps
        if aps is None:
            return
        wanted = {entry.job_id: entry for entry in self.book.entries()}
        for job_id in set(self._jobs) - set(wanted):
            aps.remove_job(job_id)
            del self._jobs[job_id]
        for job_id, entry in wanted.items():
            shape = (entry.cron, entry.tz)
            if self._jobs.get(job_id) == shape:
                continue
            aps.add_job(
                self._wake,
                cron_trigger(entry.cron, entry.tz),
                id=job_id,
                replace_existing=True,
                **_JOB_OPTIONS,
            )
            self._jobs[job_id] = shape

    async def _wake(self) -> None:
        """A timer fired: one pass over the due work at a time (thousands of schedules due at
        9:00 wake the process thousands of times); a wake during a pass makes one more pass
        after it, at its own instant."""
        if self._pass is not None and not self._pass.done():
            self._again = True
            return
        task = asyncio.ensure_future(self._passes())
        self._pass = task
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _passes(self) -> None:
        again = True
        while again and not self._halted():
            self._again = False
            await self._due(self.clock())  # the runs it starts go on by themselves
            again = self._again

    async def _wake_book(self) -> None:
        await self._refresh()
        await self._wake()

    async def take_over(self) -> None:
        """A leader-only job (`runtime.cluster.leader_work`): on becoming the leader, what the
        old one missed or left half done. When leadership is lost, fan-outs under way halt
        after their sends in flight (`_halted`), and the new leader goes on from their
        cursors."""
        if self._aps is not None:
            await self._wake()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("scheduler work failed", exc_info=task.exception())


_JOB_OPTIONS: dict[str, Any] = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


def _kind(env: str) -> str:
    """What a run is (`studio_schedule_fires_total`'s kind): a stats report's, or a schedule's."""
    return "report" if env == STUDIO_ENV else "schedule"


def _grace(entry: Entry) -> timedelta:
    """How late a run may still be sent (a run missed by more was not sent on time)."""
    return max(timedelta(minutes=entry.grace_minutes), ON_TIME)


def _next(expression: str, tz: str, after: datetime) -> datetime | None:
    fire = next_due(expression, tz, after)
    return fire.astimezone(time_zone(tz)) if fire is not None else None


def _local(moment: datetime, tz: str) -> str:
    return moment.astimezone(time_zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _last(row: store.RunRow | None) -> LastRun | None:
    if row is None:
        return None
    return LastRun(
        due_at=row.due_at,
        status=row.status,
        sent=row.sent,
        failed=row.failed,
        error=row.error,
    )


def _never_talked(kind: str, ident: str, where: str) -> str:
    if kind == "telegram":
        return (
            f"Telegram chat {ident} has not started the bot{where}: Telegram lets a bot write "
            "only to chats that started it"
        )
    return f"no web chat session {ident[:20]}… with the bot{where}"
