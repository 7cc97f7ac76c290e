"""The operations: every decision about teams, bots, versions and deployments is made here.

REST and the conversational Studio both call these. Each one checks the caller's team and role,
changes the database in one transaction together with its audit event, and raises an
`OperationError` with a short message when the caller must fix something (nothing is then changed).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from builders.diff import diff_specs
from builders.edit import apply_changes, coerce_field
from builders.spec import MAX_DB_INT, MAX_VERSION, BotSpec, Handoff, Schedule
from builders.validation import SpecError, human_problems, not_storable, parse_spec
from builders.yaml_io import YamlError, read_yaml, spec_to_yaml
from runtime.ab import Variant
from runtime.channel import (
    ChannelOffError,
    DeployableChannel,
    DeployForm,
    DeployInputError,
    DeploymentInfo,
    SendError,
    UnknownChannelError,
)
from runtime.cipher import Cipher, redact_tokens
from runtime.models import check_model
from runtime.nodes.tool import argument_problem
from runtime.pipeline import CompileError, compile_spec
from runtime.runtime import Runtime
from storage import conversations as conv_store
from storage import handoffs as handoff_store
from storage.audit import AuditRepository
from storage.bots import ENVIRONMENTS, BotRepository, PointerView
from storage.database import Database
from storage.deployments import DeploymentRepository
from storage.errors import DuplicateError, StaleRevisionError
from storage.tables import ApiKey, Bot, BotVersion, Deployment, Team, utcnow
from storage.teams import TeamRepository
from storage.test_runs import TestRunRepository, failure_reason
from studio.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    UnauthorizedError,
)
from studio.key_cache import KeyCache
from studio.members import aware
from studio.roles import Caller, Role
from studio.settings import Settings
from studio.views import (
    ApiKeyCreated,
    ApiKeyView,
    AuditView,
    BotListItem,
    BotView,
    ChangeView,
    ChannelUsageView,
    ConversationMessages,
    ConversationView,
    DeploymentView,
    DiffView,
    MemberView,
    MessageView,
    PromoteResult,
    StatsView,
    VersionUsageView,
    VersionView,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Expected:
    """What a confirmed command was asked about; checked inside the operation's transaction,
    so nothing that changed in between is carried out unconfirmed."""

    bot_id: int
    version: int | None = None  # production: staging's version; rollback: the env's current one
    revision: int | None = None  # delete: the draft revision
    ab_winner: tuple[int, Variant] | None = None  # promote-winner: the test's id and its winner


def check_expected(expect: Expected | None, bot: Bot, *, version: int | None = None) -> None:
    if expect is None:
        return
    if (
        bot.id != expect.bot_id
        or (expect.version is not None and version != expect.version)
        or (expect.revision is not None and bot.revision != expect.revision)
    ):
        raise ConflictError(
            f"*{bot.name}* changed since you were asked; nothing was done. Ask again."
        )


@dataclass(frozen=True, slots=True)
class DraftRef:
    bot_id: int
    name: str
    revision: int
    spec: BotSpec


@dataclass(frozen=True, slots=True)
class _Target:
    """The version a promotion or rollback points an environment at."""

    version_id: int
    number: int
    created: bool = False  # frozen from the draft by this promotion

    @classmethod
    def of(cls, version: BotVersion, *, created: bool = False) -> _Target:
        assert version.id is not None
        return cls(version.id, version.number, created)


_Pointers = dict[str, PointerView]
# Chooses (or refuses, raising an OperationError) the version an environment moves to, inside
# the move's write transaction: the session, the bot, and its pointers as they are.
_Pick = Callable[[AsyncSession, Bot, _Pointers], Awaitable[_Target]]


PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
LOCAL_TEAM = "local"
_TEAM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
KEY_NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,80}$"  # an API key's name (REST checks it with this too)


def _problems(exc: SpecError) -> InvalidError:
    return InvalidError("; ".join(exc.problems))


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise InvalidError(f"period must be one of {', '.join(PERIODS)}, not '{period}'")


@dataclass(frozen=True, slots=True)
class StatsSeries:
    """A bot's answers over a period, per hour (24h) or day (`studio.stats_chart` draws it)."""

    bot: str
    period: str
    since: datetime
    until: datetime
    hourly: bool
    series: conv_store.Series


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(fraction * (len(values) - 1))))
    return round(values[index], 1)


def _breakdown(
    usage: dict[tuple[int | None, str], conv_store.Usage],
) -> tuple[list[VersionUsageView], list[ChannelUsageView]]:
    """`usage` per version and channel, summed per version (newest first) and per channel
    (busiest first)."""
    versions: dict[int | None, conv_store.Usage] = {}
    channels: dict[str, conv_store.Usage] = {}
    for (version, channel), part in usage.items():
        versions[version] = versions.get(version, conv_store.Usage()) + part
        channels[channel] = channels.get(channel, conv_store.Usage()) + part
    newest = sorted(versions, key=lambda v: -1 if v is None else v, reverse=True)
    busiest = sorted(channels, key=lambda c: (-channels[c].turns, c))
    return (
        [VersionUsageView(version=v, **_usage(versions[v])) for v in newest],
        [ChannelUsageView(channel=c, **_usage(channels[c])) for c in busiest],
    )


def _usage(usage: conv_store.Usage) -> dict[str, Any]:
    """A `UsageView`'s fields."""
    return {
        "turns": usage.turns,
        "errors": usage.errors,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": _known_cost(usage),
        "unknown_cost_turns": usage.unknown_cost_turns,
    }


def _known_cost(usage: conv_store.Usage) -> float | None:
    """What `usage`'s turns cost; None when every answered one had an unknown price (an
    unknown cost is never shown as $0)."""
    priced = usage.turns - usage.errors - usage.unknown_cost_turns
    return round(usage.cost_usd, 6) if priced > 0 or not usage.turns else None


# Checks a handoff target as `/handoff BOT to ...` does (who, bot, target): set by the handoff
# feature, so a target set by REST or YAML import skips nothing.
HandoffCheck = Callable[[Caller, str, Handoff], Awaitable[None]]
# Checks a schedule's target as `/schedule BOT ... to TARGET` does (who, bot, its id when it
# exists, the schedule): set by the schedules feature, for REST and YAML import.
ScheduleCheck = Callable[[Caller, str, int | None, Schedule], Awaitable[None]]
# Refuses a promotion its evaluation gate does not allow (raises an OperationError): who, the
# bot's id and name, what is promoted as `/eval` names it ("draft", "v4"), and the content hash
# of the spec that would run.
PromotionCheck = Callable[[Caller, int, str, str, str], Awaitable[None]]
# Told once an environment's pointer moved (who, bot id, name, env, the version it runs now):
# what else that changed, in words for the answer (a live A/B test it ended), or None.
EnvMoved = Callable[[Caller, int, str, str, int], Awaitable[str | None]]


def already_runs(bot: str, env: str, number: int) -> str:
    """Why a rollback to the version `env` runs is refused: it would change nothing."""
    return f"{bot} {env} already runs v{number}: nothing to roll back to (/history {bot})"


class Operations:
    def __init__(
        self,
        *,
        db: Database,
        runtime: Runtime,
        settings: Settings,
        cipher: Cipher,
    ) -> None:
        self.db = db
        self.runtime = runtime
        self.settings = settings
        self.cipher = cipher
        self.handoff_check: HandoffCheck | None = None
        self.schedule_check: ScheduleCheck | None = None
        self.promotion_check: PromotionCheck | None = None
        self.env_moved: EnvMoved | None = None
        self.keys = KeyCache()

    # -- teams, keys, members ---------------------------------------------------------------

    async def authenticate(self, key: str) -> Caller:
        return await self.keys.caller(key, lambda: self._key_caller(key))

    async def _key_caller(self, key: str) -> Caller:
        async with self.db.read() as session:
            repo = TeamRepository(session)
            row = await repo.find_api_key(key)
            team = await repo.by_id(row.team_id) if row else None
        if row is None or team is None or team.id is None:
            raise UnauthorizedError("invalid API key")
        return Caller(
            team_id=team.id,
            team=team.name,
            identity=f"api:{row.name}",
            role=Role(row.role),
            key_id=row.id,
        )

    async def create_team(self, name: str) -> ApiKeyCreated:
        """A new team and its owner key (printed once; stored hashed)."""
        if not _TEAM_NAME.fullmatch(name):
            raise InvalidError("team name: use 2-40 lowercase letters, digits and '-'")
        async with self.db.write() as session:
            repo = TeamRepository(session)
            try:
                team = await repo.create(name)
            except DuplicateError as exc:
                raise ConflictError(str(exc)) from None
            assert team.id is not None
            key, row = await repo.create_api_key(team.id, "owner", Role.OWNER)
            assert row.id is not None
            await repo.add_member(team.id, "api:owner", Role.OWNER)
            await AuditRepository(session).record(
                team_id=team.id, actor="cli", action="team.create", target=name
            )
        return ApiKeyCreated(id=row.id, team=name, name="owner", role=Role.OWNER, key=key)

    async def create_api_key(self, *, team: str, role: str, name: str) -> ApiKeyCreated:
        """A key made on the command line, which acts for whoever holds the data."""
        parsed = _key_request(name, role)
        async with self.db.write() as session:
            row = await TeamRepository(session).by_name(team)
            if row is None or row.id is None:
                raise NotFoundError(f"no team named '{team}'")
            key_id, key = await _add_key(session, row.id, actor="cli", name=name, role=parsed)
        return ApiKeyCreated(id=key_id, team=team, name=name, role=parsed, key=key)

    async def issue_api_key(self, caller: Caller, *, name: str, role: str) -> ApiKeyCreated:
        """A key made by an admin or owner of the team (only owners make owner keys)."""
        caller.require(Role.ADMIN, "Managing API keys")
        parsed = _key_request(name, role)
        if parsed is Role.OWNER and caller.role is not Role.OWNER:
            raise ForbiddenError("Only an owner can create an owner key.")
        async with self.db.write() as session:
            key_id, key = await _add_key(
                session, caller.team_id, actor=caller.identity, name=name, role=parsed
            )
        return ApiKeyCreated(id=key_id, team=caller.team, name=name, role=parsed, key=key)

    async def api_keys(self, caller: Caller) -> list[ApiKeyView]:
        caller.require(Role.ADMIN, "Managing API keys")
        async with self.db.read() as session:
            rows = await TeamRepository(session).api_keys(caller.team_id)
        return [_key_view(row, caller) for row in rows]

    async def revoke_api_key(self, caller: Caller, key_id: int) -> ApiKeyView:
        """Delete a key: requests with it get 401 from now on. Not the caller's own key, and
        only owners revoke owner keys. The key's member goes with its last key of that name."""
        caller.require(Role.ADMIN, "Managing API keys")
        async with self.db.write() as session:
            repo = TeamRepository(session)
            row = await repo.api_key(caller.team_id, key_id) if 0 < key_id <= MAX_DB_INT else None
            if row is None or row.id is None:
                raise NotFoundError(f"No API key with id {key_id} in this team.")
            if row.id == caller.key_id:
                raise ConflictError(
                    "That is the key you are calling with: revoke it with another admin or owner "
                    "key, or on the command line (python main.py apikey revoke ID)."
                )
            if row.role == Role.OWNER.value and caller.role is not Role.OWNER:
                raise ForbiddenError("Only an owner can revoke an owner key.")
            identity = f"api:{row.name}"
            member = await repo.member(caller.team_id, identity)
            owners = [m for m in await repo.members(caller.team_id) if m.role == Role.OWNER.value]
            if member is not None and owners == [member]:
                raise ConflictError(
                    "That is the key of the team's only owner: create another owner key first "
                    "(python main.py apikey create --role owner --name NAME)."
                )
            view = _key_view(row, caller)
            await repo.delete(row)
            if member is not None and not await repo.api_keys(caller.team_id, name=row.name):
                await repo.delete(member)
            await audit(
                session,
                caller,
                action="apikey.revoke",
                target=identity,
                before={"id": row.id, "role": row.role},
            )
        self.keys.clear()  # committed: no request authenticates with it from now on
        return view

    async def ensure_local_team(self, key_file: Path) -> ApiKeyCreated | None:
        """On an empty database: the `local` team, its owner key written to `key_file` (0600).
        Of several workers starting at once on an empty database one creates it."""
        async with self.db.read() as session:
            if (await session.exec(select(Team.id).limit(1))).first() is not None:
                return None
        try:
            created = await self.create_team(LOCAL_TEAM)
        except ConflictError:  # another worker created it just now (and printed its key)
            return None
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(created.key + "\n")
        return created

    async def members(self, caller: Caller) -> list[MemberView]:
        async with self.db.read() as session:
            rows = await TeamRepository(session).members(caller.team_id)
        return [MemberView(identity=m.identity, role=m.role, joined_at=m.created_at) for m in rows]

    # -- bots -------------------------------------------------------------------------------

    async def owned_bot(self, session: AsyncSession, caller: Caller, name: str) -> Bot:
        repo = BotRepository(session)
        bot = await repo.get(caller.team_id, name)
        if bot is not None:
            return bot
        close = difflib.get_close_matches(name, await repo.names(caller.team_id), n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise NotFoundError(f"No bot named '{name}'.{hint}")

    @staticmethod
    def _runnable(spec: BotSpec) -> None:
        problems = not_storable(spec)
        if problems:
            raise InvalidError("; ".join(problems))
        try:
            compile_spec(spec)
        except CompileError as exc:
            raise InvalidError(str(exc)) from None
        problem = argument_problem(spec)
        if problem:
            raise InvalidError(problem)

    @staticmethod
    def _secrets_sent(caller: Caller, before: BotSpec | None, after: BotSpec) -> None:
        """Sending a team secret somewhere new (a tool that uses one added, or its address or
        secret changed) is for admins, who set secrets: an editor could otherwise send one to
        a host of their choosing."""
        if _secret_uses(after) - (_secret_uses(before) if before is not None else set()):
            caller.require(Role.ADMIN, SENDING_SECRETS)

    async def _askable(self, caller: Caller, spec: BotSpec) -> None:
        """Every `bot` step asks another bot of the caller's team (never the bot itself)."""
        steps = [step for step in spec.pipeline if step.kind == "bot"]
        if not steps:
            return
        async with self.db.read() as session:
            team = await BotRepository(session).names(caller.team_id)
        for step in steps:
            asked = str(step.params.get("bot"))
            if asked == spec.name:
                raise InvalidError(f"step '{step.id}' would ask {spec.name} itself")
            if asked not in team:
                close = difflib.get_close_matches(asked, team, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise InvalidError(
                    f"step '{step.id}' asks '{asked}', which is no bot of this team{hint}"
                )

    async def _handoff_target(self, caller: Caller, before: BotSpec | None, spec: BotSpec) -> None:
        """A handoff target that `spec` changes is checked like `/handoff BOT to ...`."""
        new, old = spec.handoff, before.handoff if before is not None else None
        if new is None:
            return
        if old is not None and (old.channel, old.target) == (new.channel, new.target):
            return
        if self.handoff_check is None:
            raise InvalidError(f"handoff: set where {spec.name} hands over with /handoff")
        await self.handoff_check(caller, spec.name, new)

    async def _schedule_targets(
        self, caller: Caller, bot_id: int | None, before: BotSpec | None, spec: BotSpec
    ) -> None:
        """Each schedule target that `spec` adds is checked like `/schedule BOT ... to ...`."""
        checked = {s.to for s in before.schedules} if before is not None else set()
        for schedule in spec.schedules:
            if schedule.to is None or schedule.to in checked:
                continue
            if self.schedule_check is None:
                raise InvalidError(
                    f"schedule '{schedule.id}': schedules are not running in this process, so "
                    "its target cannot be checked"
                )
            await self.schedule_check(caller, spec.name, bot_id, schedule)
            checked.add(schedule.to)

    async def _usable_model(self, model: str) -> None:
        problem = await check_model(model, api_base=self.settings.llm_api_base)
        if problem:
            raise InvalidError(f"model: {problem}")

    async def _view(self, session: AsyncSession, bot: Bot) -> BotView:
        assert bot.id is not None
        pointers = await BotRepository(session).pointers(bot.id)
        return BotView(
            name=bot.name,
            revision=bot.revision,
            draft=BotSpec.model_validate(bot.draft),
            environments={env: p.number for env, p in sorted(pointers.items())},
            updated_at=bot.updated_at,
        )

    async def create_bot(self, caller: Caller, name: str, description: str = "") -> BotView:
        caller.require(Role.EDITOR, "Creating a bot")
        try:
            spec = BotSpec(name=name, description=description, model=self.settings.default_model)
        except ValueError as exc:
            raise InvalidError(_first_problem(exc)) from None
        self._runnable(spec)
        return await self._create(caller, spec, action="bot.create")

    async def import_bot(
        self, caller: Caller, source: str | dict[str, Any], *, replace: bool = False
    ) -> BotView:
        """Import a spec given as YAML text or as a JSON mapping."""
        caller.require(Role.EDITOR, "Importing a bot")
        try:
            data = read_yaml(source) if isinstance(source, str) else source
            named = not isinstance(data, dict) or "model" in data
            if not named:  # the default model, as a created bot has
                data = {**data, "model": self.settings.default_model}
            spec = parse_spec(data)
        except YamlError as exc:
            raise BadRequestError(str(exc)) from None
        except SpecError as exc:
            raise _problems(exc) from None
        self._runnable(spec)
        await self._askable(caller, spec)
        for model in _step_models(spec):
            await self._usable_model(model)
        if named:  # checked like `/set model`
            await self._usable_model(spec.model)
        was: BotSpec | None = None
        was_id: int | None = None
        if replace:  # checked against the draft it replaces, before the write (see edit_draft)
            async with self.db.read() as session:
                found = await BotRepository(session).get(caller.team_id, spec.name)
            if found is not None:
                was, was_id = BotSpec.model_validate(found.draft), found.id
        self._secrets_sent(caller, was, spec)
        await self._handoff_target(caller, was, spec)
        await self._schedule_targets(caller, was_id, was, spec)
        if not replace:
            return await self._create(caller, spec, action="bot.import")
        async with self.db.write() as session:
            repo = BotRepository(session)
            bot = await repo.get(caller.team_id, spec.name)
            before = None if bot is None else bot.draft
            if bot is None:
                bot = await repo.create(caller.team_id, spec)
            else:
                await repo.save_draft(bot, spec, expected_revision=bot.revision)
            await audit(
                session,
                caller,
                action="bot.import",
                target=spec.name,
                before=before,
                after=spec.model_dump(mode="json"),
            )
            return await self._view(session, bot)

    async def _create(self, caller: Caller, spec: BotSpec, *, action: str) -> BotView:
        async with self.db.write() as session:
            try:
                bot = await BotRepository(session).create(caller.team_id, spec)
            except DuplicateError:
                raise ConflictError(
                    f"A bot named '{spec.name}' already exists"
                    + (
                        " (import with --replace, or ?replace=true by REST, to overwrite its draft)"
                        if action == "bot.import"
                        else ""
                    )
                ) from None
            await audit(
                session,
                caller,
                action=action,
                target=spec.name,
                after=spec.model_dump(mode="json"),
            )
            return await self._view(session, bot)

    async def draft(self, caller: Caller, name: str) -> DraftRef:
        """The bot's id, draft revision and draft spec (for `/try` and test runs)."""
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
        assert bot.id is not None
        return DraftRef(bot.id, bot.name, bot.revision, BotSpec.model_validate(bot.draft))

    async def bot_names(self, caller: Caller) -> list[str]:
        async with self.db.read() as session:
            return await BotRepository(session).names(caller.team_id)

    async def get_bot(self, caller: Caller, name: str) -> BotView:
        async with self.db.read() as session:
            return await self._view(session, await self.owned_bot(session, caller, name))

    async def list_bots(self, caller: Caller) -> list[BotListItem]:
        async with self.db.read() as session:
            repo = BotRepository(session)
            items = []
            for bot in await repo.for_team(caller.team_id):
                assert bot.id is not None
                pointers = await repo.pointers(bot.id)
                latest = await repo.latest_version(bot.id)
                items.append(
                    BotListItem(
                        name=bot.name,
                        description=bot.draft.get("description", ""),
                        model=bot.draft.get("model", ""),
                        environments={env: p.number for env, p in sorted(pointers.items())},
                        versions=latest.number if latest else 0,
                    )
                )
        return items

    async def export_bot(self, caller: Caller, name: str) -> str:
        return spec_to_yaml((await self.get_bot(caller, name)).draft)

    async def edit_draft(
        self, caller: Caller, name: str, changes: dict[str, Any], *, revision: int | None = None
    ) -> BotView:
        """Apply field changes to the draft; `revision` (when given) must be the current one."""
        caller.require(Role.EDITOR, "Editing a bot")
        if not changes:
            raise InvalidError("nothing to change: give at least one field")
        # Checked before the write: some checks ask a platform (a handoff room) and must not
        # hold the database's write lock; the revision check keeps the edit whole.
        async with self.db.read() as session:
            read = await self.owned_bot(session, caller, name)
        current = BotSpec.model_validate(read.draft)
        try:
            updated = apply_changes(current, changes)
        except SpecError as exc:
            raise _problems(exc) from None
        self._runnable(updated)
        self._secrets_sent(caller, current, updated)
        if updated.pipeline != current.pipeline:
            await self._askable(caller, updated)
            for model in _step_models(updated) - _step_models(current):
                await self._usable_model(model)
        if updated.model != current.model:
            await self._usable_model(updated.model)
        await self._handoff_target(caller, current, updated)
        await self._schedule_targets(caller, read.id, current, updated)
        expected = read.revision if revision is None else revision
        before = current.model_dump(mode="json")
        after = updated.model_dump(mode="json")
        async with self.db.write() as session:
            bot = await self.owned_bot(session, caller, name)
            try:
                await BotRepository(session).save_draft(bot, updated, expected_revision=expected)
            except StaleRevisionError as exc:
                raise ConflictError(
                    f"The draft changed meanwhile (it is at revision {exc.current}); "
                    "reload it and try again"
                ) from None
            await audit(
                session,
                caller,
                action="bot.edit",
                target=name,
                before={k: before[k] for k in before if before[k] != after.get(k)},
                after={k: after[k] for k in after if before.get(k) != after[k]},
            )
            return await self._view(session, bot)

    async def set_field(self, caller: Caller, name: str, field: str, raw: str) -> BotView:
        try:
            value = coerce_field(field, raw)
        except SpecError as exc:
            raise _problems(exc) from None
        voice = self.runtime.voice
        if field == "voice" and value is True and (voice is None or not voice.can_speak):
            raise InvalidError(
                "voice answers need a speech model: set STUDIO_TTS_MODEL on the service "
                "(and STUDIO_STT_MODEL to hear voice notes), then restart it"
            )
        return await self.edit_draft(caller, name, {field: value})

    async def delete_bot(
        self, caller: Caller, name: str, *, expect: Expected | None = None
    ) -> None:
        caller.require(Role.ADMIN, "Deleting a bot")
        async with self.db.write() as session:
            bot = await self.owned_bot(session, caller, name)
            assert bot.id is not None
            check_expected(expect, bot)
            deployments = await DeploymentRepository(session).for_team(caller.team_id, bot.id)
            before = bot.draft
            await BotRepository(session).delete(bot)
            await audit(
                session,
                caller,
                action="bot.delete",
                target=name,
                before=before,
            )
        self.runtime.invalidate_bot(bot.id)
        for deployment, _ in deployments:
            await self._teardown(deployment, name)
        if self.runtime.knowledge is not None:  # its versions are gone: so is their knowledge
            await self.runtime.knowledge.drop_bot(bot.id)

    # -- versions and environments -----------------------------------------------------------

    async def versions(self, caller: Caller, name: str) -> list[VersionView]:
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
            assert bot.id is not None
            repo = BotRepository(session)
            pointers = await repo.pointers(bot.id)
            rows = await repo.versions(bot.id)
        return [
            VersionView(
                number=v.number,
                spec_hash=v.spec_hash,
                created_by=v.created_by,
                created_at=v.created_at,
                environments=sorted(env for env, p in pointers.items() if p.number == v.number),
            )
            for v in rows
        ]

    async def promote(
        self,
        caller: Caller,
        name: str,
        *,
        to: str = "staging",
        force: bool = False,
        expect: Expected | None = None,
    ) -> PromoteResult:
        """Staging: freeze the draft into a new version (only while its tests pass, unless an
        owner forces it). Production: run staging's version."""
        caller.require(Role.ADMIN, "Promoting")
        _check_env(to)
        check_force(to, force=force)
        if force:
            caller.require(Role.OWNER, "Forcing a promotion")

        async def pick(session: AsyncSession, bot: Bot, pointers: _Pointers) -> _Target:
            assert bot.id is not None
            repo = BotRepository(session)
            if to == "staging":
                spec = BotSpec.model_validate(bot.draft)
                self._runnable(spec)
                latest = await repo.latest_version(bot.id)
                if not force and self.promotion_check is not None:
                    await self.promotion_check(caller, bot.id, name, "draft", spec.content_hash())
                if latest is not None and latest.spec_hash == spec.content_hash():
                    return _Target.of(latest)
                if not force:
                    await _require_passing_tests(session, bot.id, name, spec)
                added = await repo.add_version(bot, spec, created_by=caller.identity)
                return _Target.of(added, created=True)
            staging = pointers.get("staging")
            if staging is None:
                raise ConflictError(
                    f"{name} has no staging version yet: promote it to staging first"
                )
            check_expected(expect, bot, version=staging.number)
            if self.promotion_check is not None:
                frozen = await repo.version(bot.id, staging.number)
                assert frozen is not None
                await self.promotion_check(
                    caller, bot.id, name, f"v{staging.number}", frozen.spec_hash
                )
            return _Target(staging.version_id, staging.number)

        return await self._point(caller, name, to, pick, action="bot.promote", forced=force)

    async def promote_version(
        self,
        caller: Caller,
        name: str,
        *,
        env: str,
        version: int,
        expect: Expected | None = None,
    ) -> PromoteResult:
        """Point `env` at an existing version (a live A/B test's winner) through the checks of a
        promotion: admins, the evaluation gate on that version's spec, audited as one. `expect`
        names the version `env` ran when the caller was asked."""
        caller.require(Role.ADMIN, "Promoting")
        _check_env(env)
        _version_number(version)

        async def pick(session: AsyncSession, bot: Bot, pointers: _Pointers) -> _Target:
            assert bot.id is not None
            current = pointers.get(env)
            check_expected(expect, bot, version=current.number if current else None)
            if current is not None and current.number == version:
                raise ConflictError(f"{name} {env} already runs v{version}")
            target = await BotRepository(session).version(bot.id, version)
            if target is None:
                raise NotFoundError(f"{name} has no version v{version}")
            if self.promotion_check is not None:
                await self.promotion_check(
                    caller, bot.id, name, f"v{target.number}", target.spec_hash
                )
            return _Target.of(target)

        return await self._point(caller, name, env, pick, action="bot.promote", forced=False)

    async def _point(
        self,
        caller: Caller,
        name: str,
        env: str,
        pick: _Pick,
        *,
        action: str,
        forced: bool | None = None,
    ) -> PromoteResult:
        """Point `env` at the version `pick` chooses (or refuses) in the same write transaction,
        audited as `action` (`forced`: a promotion's, recorded); then the runtime forgets the
        bot's versions and `env_moved` says what else the move changed."""
        async with self.db.write() as session:
            bot = await self.owned_bot(session, caller, name)
            assert bot.id is not None
            repo = BotRepository(session)
            pointers = await repo.pointers(bot.id)
            target = await pick(session, bot, pointers)
            previous = pointers.get(env)
            await repo.set_pointer(bot.id, env, target.version_id)
            await audit(
                session,
                caller,
                action=action,
                target=name,
                before={"env": env, "version": previous.number if previous else None},
                after={
                    "env": env,
                    "version": target.number,
                    **({"forced": forced} if forced is not None else {}),
                },
            )
        self.runtime.invalidate_bot(bot.id)
        note = None
        if self.env_moved is not None:
            note = await self.env_moved(caller, bot.id, name, env, target.number)
        notes = [note] if note else []
        return PromoteResult(version=target.number, env=env, created=target.created, notes=notes)

    async def needs_test_run(self, caller: Caller, name: str, *, to: str, force: bool) -> bool:
        """Whether this promotion must first run the draft's tests: to staging, unforced, a draft
        with tests that is not frozen yet, and no run of exactly this draft (or only one that did
        not finish). A run still going is never repeated: the Studio's `/promote` waits for its
        own, REST answers 409 until it ends."""
        caller.require(Role.ADMIN, "Promoting")
        if to != "staging" or force:
            return False
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
            assert bot.id is not None
            spec = BotSpec.model_validate(bot.draft)
            if not spec.tests:
                return False
            self._runnable(spec)
            latest = await BotRepository(session).latest_version(bot.id)
            if latest is not None and latest.spec_hash == spec.content_hash():
                return False
            run = await TestRunRepository(session).latest(bot.id, spec.content_hash())
        return run is None or run.status == "failed"

    async def rollback(
        self,
        caller: Caller,
        name: str,
        *,
        env: str,
        version: int | None = None,
        expect: Expected | None = None,
    ) -> PromoteResult:
        """Point `env` back at `version` (default: the version before the current one)."""
        caller.require(Role.ADMIN, "Rolling back")
        _check_env(env)
        if version is not None:
            _version_number(version)

        async def pick(session: AsyncSession, bot: Bot, pointers: _Pointers) -> _Target:
            assert bot.id is not None
            repo = BotRepository(session)
            current = pointers.get(env)
            if current is None:
                raise ConflictError(f"{name} has no {env} version to roll back")
            check_expected(expect, bot, version=current.number)
            if version is None:
                older = [v for v in await repo.versions(bot.id) if v.number < current.number]
                if not older:
                    raise ConflictError(f"{env} already runs the first version (v{current.number})")
                return _Target.of(older[-1])
            found = await repo.version(bot.id, version)
            if found is None:
                raise NotFoundError(f"{name} has no version v{version}")
            if found.number == current.number:
                raise ConflictError(already_runs(name, env, current.number))
            return _Target.of(found)

        return await self._point(caller, name, env, pick, action="bot.rollback")

    async def diff(
        self, caller: Caller, name: str, *, before: str | None = None, after: str | None = None
    ) -> DiffView:
        """Compare two versions (`v3`, `3`, `draft`, `staging`, `production`).

        Defaults: the latest version against the draft.
        """
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
            assert bot.id is not None
            repo = BotRepository(session)
            pointers = await repo.pointers(bot.id)
            latest = await repo.latest_version(bot.id)

            async def resolve(ref: str | None, default: str) -> tuple[str, BotSpec]:
                ref = (ref or default).lower()
                if ref == "draft":
                    return "draft", BotSpec.model_validate(bot.draft)
                if ref in pointers:
                    ref = str(pointers[ref].number)
                digits = ref.removeprefix("v")
                if not (digits.isascii() and digits.isdigit()):
                    raise InvalidError(
                        f"'{ref[:30]}' is not a version: use v3, draft, staging or production"
                    )
                number = _version_number(digits)
                version = await repo.version(bot.id, number)  # type: ignore[arg-type]
                if version is None:
                    raise NotFoundError(f"{name} has no version v{digits}")
                return f"v{version.number}", BotSpec.model_validate(version.spec)

            if latest is None and before is None:
                raise ConflictError(
                    f"{name} has no versions yet: nothing to compare the draft with"
                )
            label_a, spec_a = await resolve(before, f"v{latest.number}" if latest else "draft")
            label_b, spec_b = await resolve(after, "draft")
        changes = [
            ChangeView(field=c.field, before=c.before, after=c.after, lines=list(c.lines))
            for c in diff_specs(spec_a, spec_b)
        ]
        return DiffView(bot=name, before=label_a, after=label_b, changes=changes)

    async def history(self, caller: Caller, name: str, *, limit: int = 50) -> list[AuditView]:
        async with self.db.read() as session:
            await self.owned_bot(session, caller, name)
            rows = await AuditRepository(session).events(caller.team_id, target=name, limit=limit)
        return [_audit_view(row) for row in rows]

    # -- deployments ------------------------------------------------------------------------

    async def deploy(
        self,
        caller: Caller,
        name: str,
        *,
        channel: str,
        env: str = "production",
        target: str | None = None,
        token: str | None = None,
        secrets: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
    ) -> DeploymentView:
        """`token` is the secret named "token" (a Telegram bot's); `secrets` and `options` are
        what the channel's `DeployForm` names."""
        caller.require(Role.ADMIN, "Deploying")
        port = self._deployable(channel)
        _check_env(env)
        given = {**(secrets or {}), **({"token": token} if token else {})}
        options = dict(options or {})
        for secret in port.form.secrets:  # a REST body names secrets and options alike
            if secret.name in options:
                given[secret.name] = options.pop(secret.name)
        _check_options(port, options)
        try:
            plan = port.plan(target=target, secrets=given, options=options)
        except DeployInputError as exc:
            raise InvalidError(str(exc)) from None
        target = plan.target
        async with self.db.write() as session:
            bot = await self.owned_bot(session, caller, name)
            assert bot.id is not None
            pointers = await BotRepository(session).pointers(bot.id)
            _require_version(pointers, name, env)
            running = await session.get(BotVersion, pointers[env].version_id)
            description = str((running.spec if running else {}).get("description") or "")
            repo = DeploymentRepository(session)
            where = target or f"bot-{bot.id}"
            existing = await repo.find(channel=channel, target=where, env=env)
            if existing is not None and existing.bot_id == bot.id:
                fresh = self._new_credentials(existing, plan.credentials)
                if not fresh and existing.status != "broken":
                    return await self._deployment_view(existing, name, pointers[env].number)
                # new credentials for the same target (a Telegram bot's token after BotFather's
                # /revoke), or a broken deployment deployed again: set it up again, active once
                # that worked
                if fresh:
                    assert plan.credentials is not None
                    existing.credentials = self.cipher.encrypt(plan.credentials)
                    session.add(existing)
                    await audit(
                        session,
                        caller,
                        action="deploy.token",
                        target=name,
                        after={"deployment": existing.id, "token": "replaced"},
                    )
                renewed = existing
            else:
                renewed = None
            if renewed is None:
                if plan.exclusive and await repo.find_any(channel=channel, target=where):
                    raise ConflictError(plan.exclusive)
                if existing is not None:
                    raise ConflictError(f"{channel} {where} already serves another bot in {env}")
                deployment = await repo.create(
                    team_id=caller.team_id,
                    bot_id=bot.id,
                    channel=channel,
                    env=env,
                    target=where,
                    credentials=(
                        self.cipher.encrypt(plan.credentials) if plan.credentials else None
                    ),
                )
                await audit(
                    session,
                    caller,
                    action="deploy",
                    target=name,
                    after={
                        "deployment": deployment.id,
                        "channel": channel,
                        "env": env,
                        "target": where,
                    },
                )
        if renewed is not None:
            await self._teardown(renewed, name)
            self.runtime.forget_deployment(renewed.id)
            try:
                await port.setup(_info(renewed, name, description))
            except Exception as exc:
                why = redact_tokens(str(exc)) if isinstance(exc, SendError) else "see the log"
                raise ConflictError(f"Could not set up the {channel} deployment: {why}") from None
            async with self.db.write() as session:
                row = await DeploymentRepository(session).get(renewed.id)
                if row is not None:
                    row.status = "active"
                    session.add(row)
                    renewed = row
            return await self._deployment_view(renewed, name, pointers[env].number)
        self.runtime.deployments_changed()
        try:
            link = await port.setup(_info(deployment, name, description))
        except Exception as exc:
            async with self.db.write() as session:
                row = await DeploymentRepository(session).get(deployment.id)
                if row is not None:
                    await DeploymentRepository(session).delete(row)
            logger.warning(
                "deployment set-up failed: %s",
                redact_tokens(str(exc)),
                extra={"deployment": deployment.id},
            )
            self.runtime.forget_deployment(deployment.id)
            why = redact_tokens(str(exc)) if isinstance(exc, SendError) else "see the service log"
            raise ConflictError(f"Could not set up the {channel} deployment: {why}") from None
        if link:  # where people find it (a t.me link), shown from now on
            async with self.db.write() as session:
                row = await DeploymentRepository(session).get(deployment.id)
                if row is not None:
                    row.public_ident = link[:200]
                    session.add(row)
                    deployment = row
        return await self._deployment_view(deployment, name, pointers[env].number)

    async def deploy_form(
        self,
        caller: Caller,
        name: str,
        *,
        channel: str,
        env: str,
        target: str | None,
        options: Mapping[str, str],
    ) -> DeployForm:
        """What a deployment to `channel` still needs from the person deploying, once what
        they gave so far holds (the role, the channel, a version in `env`, the target, the
        options): the Studio asks for its secrets privately before `deploy`."""
        caller.require(Role.ADMIN, "Deploying")
        port = self._deployable(channel)
        _check_env(env)
        _check_options(port, options)
        if port.form.target == "required" and not target:
            raise InvalidError(port.form.target_hint)
        if port.form.target == "none" and target:
            raise InvalidError(f"a deployment to {port.title} takes no target")
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
            assert bot.id is not None
            _require_version(await BotRepository(session).pointers(bot.id), name, env)
        return port.form

    def _deployable(self, channel: str) -> DeployableChannel:
        """The channel `channel` to deploy to, or which settings turn it on here."""
        channels = self.runtime.channels
        try:
            return channels.deployable(channel)
        except ChannelOffError as off:
            missing = " and ".join(off.offer.missing)
            raise ConflictError(
                f"{off.offer.title} is not configured here: set {missing} and restart."
            ) from None
        except UnknownChannelError:
            offered = ", ".join(channels.offered())
            raise InvalidError(f"channel must be one of {offered}, not '{channel}'") from None

    def _new_credentials(self, deployment: Deployment, credentials: str | None) -> bool:
        """A deployment given other credentials than the ones it has (a Telegram bot's new
        token)."""
        if not credentials or deployment.credentials is None:
            return False
        return self.cipher.decrypt(deployment.credentials) != credentials

    async def _deployment_view(
        self, deployment: Deployment, bot_name: str, version: int | None
    ) -> DeploymentView:
        try:
            details = dict(
                self.runtime.channels.deployable(deployment.channel).details(deployment.id)
            )
        except UnknownChannelError:
            details = {}
        return DeploymentView(
            details=details,
            id=deployment.id,
            bot=bot_name,
            channel=deployment.channel,
            env=deployment.env,
            target=deployment.target,
            status=deployment.status,
            url=self.public_url(deployment),
            version=version,
            created_at=deployment.created_at,
        )

    def public_url(self, deployment: Deployment) -> str | None:
        """Where people find the deployment (its channel says; as stored where the channel is
        off here)."""
        try:
            port = self.runtime.channels.deployable(deployment.channel)
        except UnknownChannelError:
            return deployment.public_ident
        return port.link(deployment.id, deployment.public_ident)

    async def deployments(self, caller: Caller, name: str | None = None) -> list[DeploymentView]:
        async with self.db.read() as session:
            bot_id = None
            if name is not None:
                bot_id = (await self.owned_bot(session, caller, name)).id
            rows = await DeploymentRepository(session).for_team(caller.team_id, bot_id)
            repo = BotRepository(session)
            views = []
            for deployment, bot_name in rows:
                pointer = (await repo.pointers(deployment.bot_id)).get(deployment.env)
                views.append(
                    await self._deployment_view(
                        deployment, bot_name, pointer.number if pointer else None
                    )
                )
        return views

    async def mark_broken(self, deployment_id: str, reason: str) -> tuple[int, str, str] | None:
        """A deployment whose platform refuses it for good (a revoked token): marked `broken`
        and audited. Its (team id, bot name, channel) the first time; None when already marked
        or gone."""
        async with self.db.write() as session:
            deployment = await DeploymentRepository(session).get(deployment_id)
            if deployment is None or deployment.status == "broken":
                return None
            bot = await BotRepository(session).by_id(deployment.bot_id)
            deployment.status = "broken"
            session.add(deployment)
            name = bot.name if bot else "?"
            await AuditRepository(session).record(
                team_id=deployment.team_id,
                actor=deployment.channel,
                action="deploy.broken",
                target=name,
                after={"deployment": deployment.id, "reason": redact_tokens(reason)[:300]},
            )
            return deployment.team_id, name, deployment.channel

    async def undeploy(self, caller: Caller, deployment_id: str) -> DeploymentView:
        caller.require(Role.ADMIN, "Undeploying")
        async with self.db.write() as session:
            repo = DeploymentRepository(session)
            deployment = await repo.get(deployment_id)
            if deployment is None or deployment.team_id != caller.team_id:
                raise NotFoundError(f"No deployment '{deployment_id}'.")
            bot = await BotRepository(session).by_id(deployment.bot_id)
            bot_name = bot.name if bot else "?"
            view = await self._deployment_view(deployment, bot_name, None)
            await repo.delete(deployment)
            await audit(
                session,
                caller,
                action="undeploy",
                target=bot_name,
                before={
                    "deployment": deployment.id,
                    "channel": deployment.channel,
                    "env": deployment.env,
                    "target": deployment.target,
                },
            )
        self.runtime.forget_deployment(deployment_id)
        await self._teardown(deployment, bot_name)
        return view

    async def undeploy_channel(
        self, caller: Caller, name: str, *, channel: str, env: str | None = None
    ) -> list[DeploymentView]:
        """Remove the bot's deployments on `channel` (in `env`, or all environments)."""
        matching = [
            d
            for d in await self.deployments(caller, name)
            if d.channel == channel and (env is None or d.env == env)
        ]
        if not matching:
            where = f" in {env}" if env else ""
            raise NotFoundError(f"{name} is not deployed to {channel}{where}")
        return [await self.undeploy(caller, d.id) for d in matching]

    async def _teardown(self, deployment: Deployment, bot_name: str) -> None:
        try:
            await self.runtime.channels.get(deployment.channel).teardown(
                _info(deployment, bot_name)
            )
        except UnknownChannelError:
            pass
        except Exception:
            logger.exception("teardown failed", extra={"deployment": deployment.id})

    # -- insight ----------------------------------------------------------------------------

    async def stats(
        self, caller: Caller, name: str | None = None, period: str = "7d"
    ) -> list[StatsView]:
        """Per bot: turns, users, errors, latency, tokens and cost over `period`."""
        _check_period(period)
        async with self.db.read() as session:
            if name is not None:
                bots = [await self.owned_bot(session, caller, name)]
            else:
                bots = await BotRepository(session).for_team(caller.team_id)
        return await self._stats_of(bots, period)

    async def bot_stats(self, team_id: int, bot_id: int, period: str) -> StatsView | None:
        """What `/stats BOT PERIOD` tells of one bot of team `team_id`, for a scheduled report
        (None: the bot is gone)."""
        async with self.db.read() as session:
            bot = await session.get(Bot, bot_id)
        if bot is None or bot.team_id != team_id:
            return None
        (view,) = await self._stats_of([bot], period)
        return view

    async def stats_series(self, caller: Caller, name: str, period: str) -> StatsSeries:
        """`name`'s answers over `period`, per hour (24h) or day: `/stats BOT`'s chart."""
        _check_period(period)
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
        assert bot.id is not None
        return await self.series_of(bot.id, bot.name, period)

    async def series_of(self, bot_id: int, name: str, period: str) -> StatsSeries:
        """As `stats_series`, for a bot already checked (a scheduled report's)."""
        until = utcnow()
        since, hourly = until - PERIODS[period], period == "24h"
        async with self.db.read_conn() as conn:
            series = await conv_store.series(conn, bot_id, since, hourly=hourly)
        return StatsSeries(name, period, since, until, hourly, series)

    async def _stats_of(self, bots: list[Bot], period: str) -> list[StatsView]:
        since = utcnow() - PERIODS[period]
        views = []
        async with self.db.read_conn() as conn:
            for bot in bots:
                assert bot.id is not None
                row = await conv_store.stats(conn, bot.id, since)
                handed = await handoff_store.stats(conn, bot.id, since)
                total = row.total
                versions, channels = _breakdown(row.usage)
                views.append(
                    StatsView(
                        bot=bot.name,
                        period=period,
                        turns=total.turns,
                        conversations=row.conversations,
                        users=row.users,
                        errors=total.errors,
                        error_rate=round(total.errors / total.turns, 4) if total.turns else 0.0,
                        blocked=total.blocked,
                        latency_p50_ms=percentile(row.latencies_ms, 0.5),
                        latency_p95_ms=percentile(row.latencies_ms, 0.95),
                        prompt_tokens=total.prompt_tokens,
                        completion_tokens=total.completion_tokens,
                        cost_usd=_known_cost(total),
                        unknown_cost_turns=total.unknown_cost_turns,
                        handoffs=handed.count,
                        handoff_first_answer_p50_s=percentile(handed.first_answer_s, 0.5),
                        versions=versions,
                        channels=channels,
                    )
                )
        return views

    async def conversations(
        self, caller: Caller, name: str, *, limit: int = 50
    ) -> list[ConversationView]:
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
        assert bot.id is not None
        async with self.db.read_conn() as conn:
            rows = await conv_store.recent_conversations(conn, bot.id, limit=limit)
        return [
            ConversationView(
                id=r.id,
                channel=r.channel,
                user=r.user,
                started_at=r.started_at,
                messages=r.messages,
            )
            for r in rows
        ]

    async def conversation(
        self, caller: Caller, name: str, conversation_id: int, *, after: int = 0, limit: int = 500
    ) -> ConversationMessages:
        """One real conversation of the bot with its messages (those after id `after`)."""
        async with self.db.read() as session:
            bot = await self.owned_bot(session, caller, name)
        assert bot.id is not None
        async with self.db.read_conn() as conn:
            head = await conv_store.conversation_head(conn, bot.id, conversation_id)
            if head is None:
                raise NotFoundError(f"{name} has no conversation {conversation_id}.")
            rows = await conv_store.conversation_messages(
                conn, conversation_id, after=after, limit=limit
            )
        return ConversationMessages(
            id=head.id,
            channel=head.channel,
            user=head.user,
            started_at=head.started_at,
            ended_at=head.ended_at,
            messages=[
                MessageView(
                    id=r.id,
                    role=r.role,
                    text=r.text,
                    at=r.created_at,
                    version=r.version,
                    latency_ms=r.latency_ms,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    cost_usd=r.cost_usd,
                    error=r.error,
                    variant=r.variant,
                    ratings_up=r.ratings_up,
                    ratings_down=r.ratings_down,
                    voice_s=r.voice_s,
                )
                for r in rows
            ],
        )

    async def audit(self, caller: Caller, *, limit: int = 100) -> list[AuditView]:
        caller.require(Role.ADMIN, "Reading the audit log")
        async with self.db.read() as session:
            rows = await AuditRepository(session).events(caller.team_id, limit=limit)
        return [_audit_view(row) for row in rows]


SENDING_SECRETS = "Giving a tool a team secret"


def _secret_uses(spec: BotSpec) -> set[tuple[str, str, str, str | None]]:
    """Where the spec's tools send secrets: (secret, kind, address, base address)."""
    return {(tool.auth, tool.kind, tool.url, tool.base_url) for tool in spec.tools if tool.auth}


def _step_models(spec: BotSpec) -> set[str]:
    """The models steps name for themselves (a router's intents, an extract's fields)."""
    return {str(n.params["model"]) for n in spec.pipeline if n.params.get("model")}


async def audit(
    session: AsyncSession,
    caller: Caller,
    *,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record what `caller` changed, in the same transaction as the change."""
    await AuditRepository(session).record(
        team_id=caller.team_id,
        actor=caller.identity,
        action=action,
        target=target,
        before=before,
        after=after,
    )


def _key_request(name: str, role: str) -> Role:
    """The role of a key asked for, once its name and role are known to be well-formed."""
    if not re.fullmatch(KEY_NAME_PATTERN, name):
        raise InvalidError("key name: 1-80 letters, digits or _ . @ -")
    try:
        return Role.parse(role)
    except ValueError as exc:
        raise InvalidError(str(exc)) from None


async def _add_key(
    session: AsyncSession, team_id: int, *, actor: str, name: str, role: Role
) -> tuple[int, str]:
    """A new key of the team (its id and plain text) and its member `api:NAME` with its role,
    audited. One key per name (revoking it removes the member), so the member the Studio knows
    for a key always has the key's role."""
    repo = TeamRepository(session)
    taken = await repo.api_keys(team_id, name=name)
    if taken:
        raise ConflictError(
            f"A key named '{name}' exists (id {taken[0].id}, {taken[0].role}): pick another "
            "name, or revoke that key first."
        )
    key, row = await repo.create_api_key(team_id, name, role)
    assert row.id is not None
    identity = f"api:{name}"
    if await repo.member(team_id, identity) is None:
        await repo.add_member(team_id, identity, role)
    await AuditRepository(session).record(
        team_id=team_id,
        actor=actor,
        action="apikey.create",
        target=identity,
        after={"id": row.id, "role": role.value},
    )
    return row.id, key


def _key_view(row: ApiKey, caller: Caller) -> ApiKeyView:
    assert row.id is not None
    return ApiKeyView(
        id=row.id,
        name=row.name,
        role=row.role,
        prefix=row.prefix,
        created_at=aware(row.created_at),
        current=row.id == caller.key_id,
    )


async def _require_passing_tests(
    session: AsyncSession, bot_id: int, name: str, spec: BotSpec
) -> None:
    """A draft with tests is frozen only when a run of exactly this draft passed."""
    if not spec.tests:
        return
    run = await TestRunRepository(session).latest(bot_id, spec.content_hash())
    # Without a finished run, `needs_test_run` has the promotion run them first: these are races.
    if run is None or run.status == "running":
        why = "are still running" if run else "have not been run on this draft"
        then = "when they finish" if run else "to run them"
        raise ConflictError(f"{name}'s tests {why}: promote again {then} (an owner may --force)")
    if run.status == "failed":
        raise ConflictError(
            f"{name}'s last test run did not finish ({failure_reason(run) or 'interrupted'}): "
            "promote again to run them"
        )
    if run.failed:
        raise ConflictError(
            f"{name}'s tests did not pass on this draft ({run.passed} passed, {run.failed} "
            f"failed): fix the draft or the tests and promote again (an owner may --force)"
        )


def _version_number(value: int | str) -> int:
    """A version number in range, or a one-line refusal: a huge one never reaches the database
    (nor `int()`, which refuses thousands of digits)."""
    short = isinstance(value, int) or len(value) <= len(str(MAX_VERSION))
    number = int(value) if short else 0
    if not 1 <= number <= MAX_VERSION:
        raise InvalidError(f"no such version: version numbers go from v1 to v{MAX_VERSION}")
    return number


def _check_options(port: DeployableChannel, options: Mapping[str, str]) -> None:
    """No option the channel does not take (it would be silently ignored); its plan checks
    the secrets."""
    taken = {o.name for o in port.form.options}
    unknown = sorted(set(options) - taken)
    if unknown:
        takes = "the options " + ", ".join(sorted(taken)) if taken else "no options"
        raise InvalidError(f"a deployment to {port.title} takes {takes}, not {', '.join(unknown)}")


def _require_version(pointers: Mapping[str, PointerView], name: str, env: str) -> None:
    if env not in pointers:
        step = "staging" if env == "staging" else "staging, then to production"
        raise ConflictError(f"{name} has no {env} version yet: promote it to {step} first")


def check_force(to: str, *, force: bool) -> None:
    """Forcing lets a draft into staging past its failing tests and gate; production always
    runs staging's version through its checks, so a forced one is refused, not ignored."""
    if force and to != "staging":
        raise InvalidError(
            "force (--force) is only for promotions to staging, past a draft's failing tests;"
            " production runs staging's version through its checks, unforced"
        )


def _check_env(env: str) -> None:
    if env not in ENVIRONMENTS:
        raise InvalidError(f"environment must be staging or production, not '{env}'")


def _first_problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(human_problems(exc))
    return str(exc)


def _info(deployment: Deployment, bot_name: str, description: str = "") -> DeploymentInfo:
    return DeploymentInfo(
        description=description,
        id=deployment.id,
        team_id=deployment.team_id,
        channel=deployment.channel,
        env=deployment.env,
        target=deployment.target,
        bot_name=bot_name,
        credentials=deployment.credentials,
    )


def _audit_view(row: Any) -> AuditView:
    return AuditView(
        at=row.created_at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
    )
