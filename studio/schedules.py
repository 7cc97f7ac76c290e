"""`/schedule`, `/followup` and scheduled `/stats` reports: bots (and the Studio) that speak first.

Schedules and follow-ups are part of the draft (`BotSpec.schedules`, `.followups`), edited
through `Operations.edit_draft`, so they are versioned, audited, shown by `/show` and `/diff`,
and reach end users once promoted; each environment runs those of the version it points at.
Pausing acts at once in every environment, outside versions. A schedule's target is checked
when it is set: a Slack channel the app is in (`#general` or its id), the Telegram chat or
Slack channel the command is said in (`here`), a Telegram chat id or a web session; then the
scheduler says whether a deployment of the bot reaches it. A target set by REST or YAML import
is checked the same way (`ScheduleFeature.checked`, the hook `Operations` calls). Stats
reports are the Studio's own: the scheduler posts them through `Studio.post_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from builders.cron import CronError, time_zone, trigger
from builders.spec import (
    MAX_FOLLOWUPS,
    MAX_SCHEDULES,
    WEB_SESSION,
    FollowUp,
    Schedule,
)
from runtime.handoff import Room
from runtime.messages import Address
from runtime.runtime import NotLiveError
from runtime.scheduler.book import next_due
from runtime.scheduler.types import (
    HandedOverError,
    ProactiveError,
    ScheduleStatus,
    Sent,
    UnknownEndUserError,
)
from runtime.team_front import TeamFronts
from storage.tables import utcnow
from studio.address import studio_address
from studio.commands import (
    Command,
    FollowUpAdd,
    FollowUpList,
    FollowUpRemove,
    ScheduleAdd,
    ScheduleList,
    SchedulePause,
    ScheduleRemove,
    ScheduleResume,
    StatsReportAdd,
    StatsReportRemove,
    StatsReports,
)
from studio.errors import (
    ConflictError,
    InvalidError,
    NotAvailableError,
    NotFoundError,
    UpstreamError,
)
from studio.handoff import team_room
from studio.operations import DraftRef, Operations
from studio.presenters import (
    followup_list,
    followup_summary,
    local_time,
    report_added,
    report_list,
    schedule_list,
)
from studio.replies import Answer
from studio.roles import Caller, Role
from studio.views import BotView

if TYPE_CHECKING:
    from runtime.scheduler.service import Scheduler

SCHEDULE_COMMANDS: tuple[type[Command], ...] = (
    ScheduleAdd,
    ScheduleList,
    SchedulePause,
    ScheduleResume,
    ScheduleRemove,
    FollowUpAdd,
    FollowUpList,
    FollowUpRemove,
    StatsReportAdd,
    StatsReports,
    StatsReportRemove,
)
NOT_RUNNING = (
    "Schedules are not running in this process (it has no scheduler), so nothing about them can "
    "be set or shown here; use the service that runs `serve`."
)
_DAYS = {"monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu"}
_DAYS |= {"friday": "fri", "saturday": "sat", "sunday": "sun"}
_PERIOD_OF = {"daily": "24h", "weekly": "7d"}

# Where a member can be told something unasked (`Studio._reachable`).
Reachable = Callable[[int, str], Address]


@dataclass(frozen=True, slots=True)
class Added:
    """A schedule or follow-up added to the draft, and the draft's revision after it; a
    schedule's next run (in its time zone), as `/schedule BOT list` will show it."""

    item: Schedule | FollowUp
    revision: int
    next_run: datetime | None = None


@dataclass(frozen=True, slots=True)
class Statuses:
    """A bot's draft schedules and how each runs in each live environment."""

    draft: DraftRef
    live: list[ScheduleStatus]


def _first_free(prefix: str, taken: Sequence[str]) -> str:
    number = 1
    while f"{prefix}{number}" in taken:
        number += 1
    return f"{prefix}{number}"


class ScheduleFeature:
    """What `/schedule`, `/followup` and `/stats … daily` do, for the engine (which resolves
    the bot) and for REST (`adapters/web/schedules_api.py`)."""

    def __init__(
        self,
        *,
        ops: Operations,
        fronts: TeamFronts,
        scheduler: Scheduler | None,
        reachable: Reachable,
    ) -> None:
        self.ops = ops
        self.fronts = fronts
        self.scheduler = scheduler
        self.reachable = reachable
        ops.schedule_check = self.checked  # a target set by REST or YAML is checked too

    def _running(self) -> Scheduler:
        if self.scheduler is None:
            raise NotAvailableError(NOT_RUNNING)
        return self.scheduler

    async def run(self, caller: Caller, bot: str, command: Command, where: Address) -> Answer:
        self._running()
        match command:
            case ScheduleAdd():
                return await self._add_schedule(caller, bot, command, where)
            case ScheduleList():
                known = await self.statuses(caller, bot)
                draft = known.draft
                return schedule_list(draft.name, draft.revision, draft.spec.schedules, known.live)
            case SchedulePause():
                return await self._pause(caller, bot, command.id, pause=True)
            case ScheduleResume():
                return await self._pause(caller, bot, command.id, pause=False)
            case ScheduleRemove():
                view = await self.remove_schedule(caller, bot, command.id)
                return Answer(
                    f"Removed schedule {command.id} from *{bot}*'s draft (revision "
                    f"{view.revision}); environments that run it keep it until you promote."
                )
            case FollowUpAdd():
                return await self._add_followup(caller, bot, command)
            case FollowUpList():
                draft = await self.ops.draft(caller, bot)
                return followup_list(draft.name, draft.revision, draft.spec.followups)
            case FollowUpRemove():
                view = await self.remove_followup(caller, bot, command.id)
                return Answer(
                    f"Removed follow-up {command.id} from *{bot}*'s draft (revision "
                    f"{view.revision}); end users keep getting it until you promote."
                )
            case StatsReportAdd():
                return await self._add_report(caller, bot, command, where)
            case StatsReports():
                return await self._reports(caller, bot)
            case StatsReportRemove():
                return await self._remove_report(caller, bot, command.id)
        raise AssertionError(f"not a schedule command: {command!r}")

    # -- schedules (chat and REST) ---------------------------------------------------------------

    async def add_schedule(
        self,
        caller: Caller,
        bot: str,
        *,
        cron: str,
        message: str,
        to: str | None = None,
        tz: str | None = None,
        schedule_id: str | None = None,
        grace_minutes: int | None = None,
        where: Address | None = None,
    ) -> Added:
        """Add a schedule to the draft: its cron and time zone checked, its target resolved
        (`#general`, `here`, a chat id, `web:SESSION`) and reachable by the bot."""
        caller.require(Role.EDITOR, "Adding a schedule")
        scheduler = self._running()
        draft = await self.ops.draft(caller, bot)
        taken = [s.id for s in draft.spec.schedules]
        if len(taken) >= MAX_SCHEDULES:
            raise InvalidError(
                f"{draft.name} has {MAX_SCHEDULES} schedules, the most a bot may have: remove "
                f"one first (/schedule {draft.name} remove ID)"
            )
        if schedule_id is not None and schedule_id in taken:
            raise ConflictError(f"{draft.name} has a schedule '{schedule_id}' already")
        zone = tz or "UTC"
        _fires(cron, zone)
        data: dict[str, Any] = {
            "id": schedule_id or _first_free("s", taken),
            "cron": cron,
            "tz": zone,
            "message": message,
        }
        if grace_minutes is not None:
            data["grace_minutes"] = grace_minutes
        if to is not None:
            data["to"], data["to_name"] = await self._place(caller, draft, to, where)
        schedules = [s.model_dump(mode="json") for s in draft.spec.schedules]
        view = await self.ops.edit_draft(
            caller, draft.name, {"schedules": [*schedules, data]}, revision=draft.revision
        )
        added = next(s for s in view.draft.schedules if s.id == data["id"])
        fire = next_due(added.cron, added.tz, scheduler.clock())
        next_run = fire.astimezone(time_zone(added.tz)) if fire is not None else None
        return Added(item=added, revision=view.revision, next_run=next_run)

    async def remove_schedule(self, caller: Caller, bot: str, schedule_id: str) -> BotView:
        caller.require(Role.EDITOR, "Removing a schedule")
        draft = await self.ops.draft(caller, bot)
        kept = [s.model_dump(mode="json") for s in draft.spec.schedules if s.id != schedule_id]
        if len(kept) == len(draft.spec.schedules):
            raise NotFoundError(_unknown("schedule", draft.name, schedule_id, draft.spec.schedules))
        return await self.ops.edit_draft(
            caller, draft.name, {"schedules": kept}, revision=draft.revision
        )

    async def statuses(self, caller: Caller, bot: str) -> Statuses:
        scheduler = self._running()
        draft = await self.ops.draft(caller, bot)
        return Statuses(draft=draft, live=await scheduler.statuses(draft.bot_id))

    async def pause(self, caller: Caller, bot: str, schedule_id: str, *, pause: bool) -> bool:
        """Pause (or resume) a schedule at once in every environment; False: it was already."""
        caller.require(Role.EDITOR, "Pausing a schedule" if pause else "Resuming a schedule")
        known = await self.statuses(caller, bot)
        ids = [s.id for s in known.draft.spec.schedules] + [s.schedule_id for s in known.live]
        if schedule_id not in ids:
            raise NotFoundError(
                _unknown("schedule", known.draft.name, schedule_id, known.draft.spec.schedules)
            )
        scheduler = self._running()
        bot_id = known.draft.bot_id
        if pause:
            return await scheduler.pause(bot_id, schedule_id, by=caller.identity)
        return await scheduler.resume(bot_id, schedule_id)

    async def _add_schedule(
        self, caller: Caller, bot: str, command: ScheduleAdd, where: Address
    ) -> Answer:
        added = await self.add_schedule(
            caller,
            bot,
            cron=command.cron,
            message=command.message,
            to=command.to,
            tz=command.tz,
            where=where,
        )
        schedule = added.item
        assert isinstance(schedule, Schedule)
        zone = time_zone(schedule.tz)
        fire = local_time(added.next_run, zone) if added.next_run else "never"
        where_to = schedule.to_name or schedule.to or "each end user of the environment"
        what = "a message the bot writes from that prompt" if schedule.prompt else "the message"
        return Answer(
            f"Scheduled {schedule.id} on *{bot}*'s draft (revision {added.revision}): {what} "
            f"goes to {where_to} at `{schedule.cron}` ({schedule.tz}), next {fire}. End users "
            f"get it once you promote the draft (/promote {bot}, then /promote {bot} "
            f"production); /schedule {bot} list shows its runs."
        )

    async def _pause(self, caller: Caller, bot: str, schedule_id: str, *, pause: bool) -> Answer:
        changed = await self.pause(caller, bot, schedule_id, pause=pause)
        if pause:
            if not changed:
                return Answer(
                    f"Nothing changed: schedule {schedule_id} of *{bot}* is paused already."
                )
            return Answer(
                f"Paused schedule {schedule_id} of *{bot}* in every environment, at once; "
                f"/schedule {bot} resume {schedule_id} runs it again."
            )
        if not changed:
            return Answer(f"Nothing changed: schedule {schedule_id} of *{bot}* is not paused.")
        return Answer(f"Schedule {schedule_id} of *{bot}* runs again in every environment.")

    # -- follow-ups (chat and REST) ------------------------------------------------------------

    async def add_followup(
        self,
        caller: Caller,
        bot: str,
        *,
        after_minutes: int,
        message: str,
        times: int = 1,
        followup_id: str | None = None,
    ) -> Added:
        caller.require(Role.EDITOR, "Adding a follow-up")
        self._running()
        draft = await self.ops.draft(caller, bot)
        taken = [f.id for f in draft.spec.followups]
        if len(taken) >= MAX_FOLLOWUPS:
            raise InvalidError(
                f"{draft.name} has {MAX_FOLLOWUPS} follow-ups, the most a bot may have: remove "
                f"one first (/followup {draft.name} remove ID)"
            )
        if followup_id is not None and followup_id in taken:
            raise ConflictError(f"{draft.name} has a follow-up '{followup_id}' already")
        data = {
            "id": followup_id or _first_free("f", taken),
            "after_minutes": after_minutes,
            "message": message,
            "times": times,
        }
        followups = [f.model_dump(mode="json") for f in draft.spec.followups]
        view = await self.ops.edit_draft(
            caller, draft.name, {"followups": [*followups, data]}, revision=draft.revision
        )
        added = next(f for f in view.draft.followups if f.id == data["id"])
        return Added(item=added, revision=view.revision)

    async def remove_followup(self, caller: Caller, bot: str, followup_id: str) -> BotView:
        caller.require(Role.EDITOR, "Removing a follow-up")
        draft = await self.ops.draft(caller, bot)
        kept = [f.model_dump(mode="json") for f in draft.spec.followups if f.id != followup_id]
        if len(kept) == len(draft.spec.followups):
            raise NotFoundError(
                _unknown("follow-up", draft.name, followup_id, draft.spec.followups)
            )
        return await self.ops.edit_draft(
            caller, draft.name, {"followups": kept}, revision=draft.revision
        )

    async def _add_followup(self, caller: Caller, bot: str, command: FollowUpAdd) -> Answer:
        added = await self.add_followup(
            caller,
            bot,
            after_minutes=command.after_minutes,
            message=command.message,
            times=command.times,
        )
        followup = added.item
        assert isinstance(followup, FollowUp)
        return Answer(
            f"Added follow-up {followup.id} to *{bot}*'s draft (revision {added.revision}): "
            f"{followup_summary(followup)}. The end user's next message cancels what is left. "
            f"End users get it once you promote the draft (/promote {bot}, then /promote {bot} "
            "production)."
        )

    # -- the end user a trigger names (REST) ---------------------------------------------------

    async def trigger(
        self, caller: Caller, bot: str, *, env: str, channel: str, user: str, message: str
    ) -> Sent:
        """The bot messages a known end user now (`POST /api/v1/bots/{bot}/trigger`)."""
        caller.require(Role.EDITOR, "Triggering a message")
        offered = self.ops.runtime.channels.offered()
        if channel not in offered:
            raise InvalidError(f"channel must be one of {', '.join(offered)}, not '{channel}'")
        scheduler = self._running()
        draft = await self.ops.draft(caller, bot)
        try:
            return await scheduler.trigger(
                bot_id=draft.bot_id, env=env, channel=channel, user=user, message=message
            )
        except UnknownEndUserError as exc:
            raise NotFoundError(str(exc)) from None
        except NotLiveError:
            raise ConflictError(
                f"{draft.name} has no {env} version yet: promote it to {env} first"
            ) from None
        except HandedOverError as exc:
            raise ConflictError(str(exc)) from None
        except ProactiveError as exc:
            raise UpstreamError(str(exc)) from None

    # -- targets -------------------------------------------------------------------------------

    async def _place(
        self, caller: Caller, draft: DraftRef, target: str, where: Address | None
    ) -> tuple[str, str]:
        """A schedule's target as stored (`KIND:ID`: `slack:C…`, `telegram:CHAT`,
        `web:SESSION`) and as people name it, from what was typed."""
        said = target.strip()
        if said.lower() == "here":
            return await self._here(caller, draft.name, where)
        kind, _, ident = said.partition(":")
        if kind == "web":
            if not WEB_SESSION.fullmatch(ident):
                raise InvalidError(
                    f"'{said[:60]}' is not a web session: web: then its id, 8 to 120 letters, "
                    "digits, '_', '.' or '-'"
                )
            return said, f"web session {ident[:8]}…"
        for front in self.fronts.all():
            chat = front.chat(said)
            if chat is not None:
                return f"{front.kind}:{chat.id}", chat.name
            room = front.room(said)
            if room is not None:
                found = await self._room(front.kind, room, caller, draft.name)
                return f"{front.kind}:{found.id}", found.name
        raise InvalidError(
            f"'{said[:60]}' is not a place: {self._hints()}, here or web:SESSION (or leave "
            "`to` out: each end user)"
        )

    async def _here(self, caller: Caller, bot: str, where: Address | None) -> tuple[str, str]:
        """The chat or channel `/schedule … to here` is said in."""
        front = self.fronts.of_channel(where.channel) if where is not None else None
        spot = front.spot(where) if front is not None and where is not None else None
        if front is None or spot is None:
            raise InvalidError(
                "here means the channel or chat this is said in: name the place instead "
                f"({self._hints()} or web:SESSION)"
            )
        chat = front.chat(spot.id)
        if chat is not None:
            return f"{front.kind}:{chat.id}", chat.name
        room = None if spot.direct else front.room(spot.id)
        if room is None:
            raise InvalidError(
                f"A DM is no place for a schedule: /schedule {bot} ... to {front.room_hint}"
            )
        found = await self._room(front.kind, room, caller, bot)
        return f"{front.kind}:{found.id}", found.name

    def _hints(self) -> str:
        return ", ".join(front.room_hint for front in self.fronts.all())

    async def _room(self, kind: str, target: str, caller: Caller, bot: str) -> Room:
        try:
            return await team_room(self.fronts, kind, target, by=caller)
        except InvalidError as exc:
            # The rooms speak of handoffs; a schedule or a report posts there.
            said = exc.message.replace("/handoff BOT to here", f"/stats {bot} daily at 9:00 here")
            said = said.replace("hand conversations to it", "post there")
            raise InvalidError(said.replace("hand over to", "post to")) from None

    async def checked(
        self, caller: Caller, bot: str, bot_id: int | None, schedule: Schedule
    ) -> None:
        """A target set by REST or YAML import, or by `/schedule` (`Operations.schedule_check`):
        a room must take the Studio's posts (a Slack channel, the app), and a deployment of the
        bot must reach it."""
        scheduler = self._running()
        to = schedule.to
        assert to is not None
        kind, _, ident = to.partition(":")
        front = self.fronts.get(kind)
        if front is not None and front.chat(ident) is None:
            await self._room(kind, ident, caller, bot)
        if bot_id is None:
            raise InvalidError(
                f"schedule '{schedule.id}': {bot} is new, so no deployment of it reaches "
                f"{schedule.to_name or to} yet: import it without `to`, deploy it, then set it"
            )
        problem = await scheduler.problem_with(bot_id, to)
        if problem is not None:
            raise InvalidError(f"schedule '{schedule.id}': {problem}")

    # -- stats reports ---------------------------------------------------------------------------

    async def _add_report(
        self, caller: Caller, bot: str, command: StatsReportAdd, where: Address
    ) -> Answer:
        caller.require(Role.EDITOR, "Scheduling a stats report")
        scheduler = self._running()
        draft = await self.ops.draft(caller, bot)
        zone = command.tz or "UTC"
        hour, minute = (int(part) for part in command.at.split(":"))
        day = _DAYS[command.day or "monday"] if command.every == "weekly" else "*"
        cron = f"{minute} {hour} * * {day}"
        _fires(cron, zone)
        address, place = await self._report_place(caller, draft.name, command.place, where)
        try:
            report = await scheduler.add_report(
                team_id=caller.team_id,
                bot_id=draft.bot_id,
                cron=cron,
                tz=zone,
                period=_PERIOD_OF[command.every],
                address=address.model_dump(mode="json"),
                place=place,
                by=caller.identity,
            )
        except IntegrityError:  # another report for this place was saved at the same moment
            raise ConflictError(
                f"Another stats report of {draft.name} for {place} was set at the same moment: "
                "say it again to replace that one"
            ) from None
        every = "Every day" if command.every == "daily" else f"Every {command.day or 'monday'}"
        return report_added(draft.name, report, f"{every} at {command.at}")

    async def _report_place(
        self, caller: Caller, bot: str, place: str | None, where: Address
    ) -> tuple[Address, str]:
        """The Studio address a report is posted to, and how people name that place: a room,
        the room it is said in (`here`), else where the member talks to the Studio."""
        team, identity = caller.team_id, caller.identity
        fronts = self.fronts.all()
        if place is not None and place.lower() == "here":
            front = self.fronts.of_channel(where.channel)
            spot = front.spot(where) if front is not None else None
            place = None  # a DM: where the member talks to the Studio
            if front is not None and spot is not None and not spot.direct:
                chat = front.chat(spot.id)
                if chat is not None:  # the chat the Studio's own bot was just spoken to in
                    thread = front.report_thread(chat.id)
                    return studio_address(front.channel, team, identity, thread=thread), chat.name
                place, fronts = spot.id, (front,)  # that front's room, checked
        if place is None:
            return self.reachable(team, identity), f"DM of {identity}"
        for front in fronts:
            room = front.room(place)
            if room is not None:
                found = await self._room(front.kind, room, caller, bot)
                thread = front.report_thread(found.id)
                return studio_address(front.channel, team, identity, thread=thread), found.name
        raise InvalidError(f"'{place[:60]}' is not a place for a report: {self._hints()} or here")

    async def _reports(self, caller: Caller, bot: str) -> Answer:
        draft = await self.ops.draft(caller, bot)
        return report_list(draft.name, await self._running().reports(draft.bot_id))

    async def _remove_report(self, caller: Caller, bot: str, report_id: int) -> Answer:
        caller.require(Role.EDITOR, "Stopping a stats report")
        draft = await self.ops.draft(caller, bot)
        if not await self._running().remove_report(bot_id=draft.bot_id, report_id=report_id):
            raise NotFoundError(
                f"{draft.name} has no stats report {report_id}: /stats {draft.name} reports "
                "lists them"
            )
        return Answer(f"Stopped stats report {report_id} of *{draft.name}*.")


def _fires(cron: str, zone: str) -> None:
    """`cron` in `zone` is a valid five-field schedule that fires some day."""
    try:
        time_zone(zone)
        trigger(cron, zone)
    except CronError as exc:
        raise InvalidError(str(exc)) from None
    if next_due(cron, zone, utcnow()) is None:
        raise InvalidError(f"'{cron}' never fires")


def _unknown(kind: str, bot: str, wanted: str, items: Sequence[Schedule | FollowUp]) -> str:
    ids = ", ".join(item.id for item in items) or "none"
    return f"{bot} has no {kind} '{wanted[:40]}'; its {kind}s: {ids}"
