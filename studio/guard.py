"""`/guard` and `/budget`: a bot's guardrails and budget, shown and edited.

Edits change the draft through `Operations.edit_draft`, so they are versioned, audited and shown
by `/show` and `/diff` like any other edit: `/try` (the draft) uses new guardrails at once, end
users once the draft is promoted to production. `/budget BOT` also shows what the bot spent this
calendar month (UTC), live turns only, which is what its monthly budget counts.
"""

from __future__ import annotations

from typing import Any

from builders.spec import OFFLINE_MODEL, BotSpec, Budget, Guardrails
from runtime.llm import MODERATION_MODEL
from runtime.messages import Field
from runtime.models import check_model
from runtime.turn.budget import month_of, month_start
from storage import budget as budget_store
from storage.bots import BotRepository
from storage.tables import utcnow
from studio.commands import BudgetSet, BudgetShow, Command, GuardSet, GuardShow
from studio.errors import InvalidError
from studio.operations import DraftRef, Operations
from studio.presenters import usd
from studio.replies import Answer
from studio.roles import Caller, Role

GUARD_COMMANDS: tuple[type[Command], ...] = (GuardShow, GuardSet, BudgetShow, BudgetSet)
_SHOWN_TERMS = 20


def _terms(terms: list[str]) -> str:
    if not terms:
        return "none"
    shown = ", ".join(f'"{term}"' for term in terms[:_SHOWN_TERMS])
    more = len(terms) - _SHOWN_TERMS
    return f"{shown} and {more} more" if more > 0 else shown


def guard_fields(guard: Guardrails) -> tuple[Field, ...]:
    return (
        Field(label="Max message", value=f"{guard.max_input_chars:,} characters"),
        Field(label="Blocked terms", value=_terms(guard.blocked_terms)),
        Field(
            label="Personal data",
            value="masked (emails, phone and card numbers)" if guard.pii else "not masked",
        ),
        Field(label="Moderation", value=f"on ({MODERATION_MODEL})" if guard.moderation else "off"),
    )


def budget_fields(limits: Budget) -> tuple[Field, ...]:
    monthly = limits.monthly_usd
    per_minute = limits.per_user_per_minute
    return (
        Field(label="Monthly budget", value=usd(monthly) if monthly is not None else "none"),
        Field(
            label="Per user",
            value=f"{per_minute:,} messages a minute" if per_minute is not None else "no limit",
        ),
    )


class GuardFeature:
    """What `/guard` and `/budget` do, for the engine (which resolves the bot)."""

    def __init__(self, *, ops: Operations) -> None:
        self.ops = ops

    async def run(self, caller: Caller, bot: str, command: Command) -> Answer:
        draft = await self.ops.draft(caller, bot)
        if isinstance(command, GuardShow):
            return await self._show_guard(draft)
        if isinstance(command, GuardSet):
            return await self._set_guard(caller, draft, command)
        if isinstance(command, BudgetShow):
            return await self._show_budget(draft)
        assert isinstance(command, BudgetSet)
        return await self._set_budget(caller, draft, command)

    # -- guardrails ------------------------------------------------------------------------

    async def _show_guard(self, draft: DraftRef) -> Answer:
        guard = draft.spec.guardrails
        text = f"*{draft.name}* guardrails (draft revision {draft.revision})"
        production = await self._production(draft.bot_id)
        if production is not None and production[1].guardrails != guard:
            text += "\n" + _not_live(draft.name, production[0], "guardrails")
        return Answer(text=text, fields=guard_fields(guard))

    async def _set_guard(self, caller: Caller, draft: DraftRef, command: GuardSet) -> Answer:
        caller.require(Role.EDITOR, "Changing guardrails")
        guard = draft.spec.guardrails
        if command.moderation and not guard.moderation:
            await self._moderation_usable(draft.spec)
        data: dict[str, Any] = guard.model_dump(mode="json")
        done: list[str] = []
        if command.pii is not None:
            data["pii"] = command.pii
            done.append(
                "masks emails, phone numbers and card numbers (before the model sees them, and "
                "in stored transcripts)"
                if command.pii
                else "does not mask personal data"
            )
        if command.block is not None:
            term = " ".join(command.block.split())
            if term.lower() not in {t.lower() for t in data["blocked_terms"]}:
                data["blocked_terms"] = [*data["blocked_terms"], term]
            done.append(f'refuses messages with "{term}" (whole words, any case)')
        if command.unblock is not None:
            term = " ".join(command.unblock.split()).lower()
            kept = [t for t in data["blocked_terms"] if t.lower() != term]
            if len(kept) == len(data["blocked_terms"]):
                raise InvalidError(
                    f'"{command.unblock}" is not blocked for {draft.name}; '
                    f"blocked: {_terms(guard.blocked_terms)}"
                )
            data["blocked_terms"] = kept
            done.append(f'no longer refuses "{command.unblock}"')
        if command.max_input is not None:
            data["max_input_chars"] = command.max_input
            done.append(f"refuses messages over {command.max_input:,} characters")
        if command.moderation is not None:
            data["moderation"] = command.moderation
            done.append(
                "checks each message with the provider's moderation first"
                if command.moderation
                else "does not check messages with moderation"
            )
        if data == guard.model_dump(mode="json"):
            return Answer(f"Nothing changed: *{draft.name}* already {_and(done)}.")
        view = await self.ops.edit_draft(
            caller, draft.name, {"guardrails": data}, revision=draft.revision
        )
        masked = _masked_fields(draft.spec) if command.pii and not guard.pii else []
        warning = (
            f" Note: the flow remembers {_and(masked)}, which the mask hides from it: those "
            "steps will not remember them any more, and a step that asks for one keeps asking."
            if masked
            else ""
        )
        return Answer(
            f"*{draft.name}* now {_and(done)} (draft revision {view.revision}). /try uses it "
            f"at once; end users once you promote it ({_promote(draft.name)}).{warning}"
        )

    async def _moderation_usable(self, spec: BotSpec) -> None:
        if spec.model == OFFLINE_MODEL:
            raise InvalidError(
                f"moderation needs a provider model; {spec.name} uses offline. Set one first, "
                f"e.g. /set {spec.name} model gpt-4o-mini"
            )
        problem = await check_model(MODERATION_MODEL, api_base=self.ops.settings.llm_api_base)
        if problem:
            reason = problem.split(";")[0]
            raise InvalidError(
                f"moderation checks messages with {MODERATION_MODEL}, which cannot be called "
                f"here: {reason}"
            )

    # -- budget ----------------------------------------------------------------------------

    async def _show_budget(self, draft: DraftRef) -> Answer:
        limits = draft.spec.budget
        now = utcnow()
        month = month_of(now)
        async with self.ops.db.read_conn() as conn:
            spent = await budget_store.spent_since(conn, draft.bot_id, month_start(now))
            told = await budget_store.notices(conn, draft.bot_id, month)
        this_month = f"{usd(spent)} spent in {month} (UTC, live turns)"
        if limits.monthly_usd is not None:
            share = spent / limits.monthly_usd
            this_month += f": {share:.0%} of {usd(limits.monthly_usd)}"
        fields = (Field(label="This month", value=this_month), *budget_fields(limits))
        if told:
            fields += (Field(label="Owners told", value=", ".join(f"{level}%" for level in told)),)
        text = f"*{draft.name}* budget (draft revision {draft.revision})"
        production = await self._production(draft.bot_id)
        if production is not None and production[1].budget != limits:
            text += "\n" + _not_live(draft.name, production[0], "budget")
        return Answer(text=text, fields=fields)

    async def _set_budget(self, caller: Caller, draft: DraftRef, command: BudgetSet) -> Answer:
        caller.require(Role.EDITOR, "Changing the budget")
        before = draft.spec.budget
        data: dict[str, Any] = before.model_dump(mode="json")
        done: list[str] = []
        if command.off:
            data = Budget().model_dump(mode="json")
            done.append("has no monthly budget and no rate limit")
        if command.monthly_usd is not None:
            data["monthly_usd"] = command.monthly_usd
            done.append(
                f"stops answering end users once it has spent {usd(command.monthly_usd)} in a "
                "calendar month (UTC); owners and admins are told at 80% and 100%"
            )
        if command.per_user_per_minute is not None:
            data["per_user_per_minute"] = command.per_user_per_minute
            count = command.per_user_per_minute
            done.append(f"lets each end user send {count:,} messages a minute")
        if data == before.model_dump(mode="json"):
            return Answer(f"Nothing changed: *{draft.name}* already {_and(done)}.")
        view = await self.ops.edit_draft(
            caller, draft.name, {"budget": data}, revision=draft.revision
        )
        return Answer(
            f"*{draft.name}* now {_and(done)} (draft revision {view.revision}). This applies to "
            f"end users once you promote it ({_promote(draft.name)})."
        )

    async def _production(self, bot_id: int) -> tuple[int, BotSpec] | None:
        """The version production runs, and its spec (None: nothing in production)."""
        async with self.ops.db.read() as session:
            repo = BotRepository(session)
            pointer = (await repo.pointers(bot_id)).get("production")
            version = await repo.version(bot_id, pointer.number) if pointer else None
        if version is None:
            return None
        return version.number, BotSpec.model_validate(version.spec)


_MASKED_FORMATS = frozenset({"email", "phone"})  # what `runtime.turn.pii` replaces


def _masked_fields(spec: BotSpec) -> list[str]:
    """The fields of the flow's `extract` steps that hold what the PII mask hides, as
    "`remember-email`'s email"."""
    found: list[str] = []
    for step in spec.steps():
        fields = step.params.get("fields") if step.kind == "extract" else None
        properties = fields.get("properties") if isinstance(fields, dict) else None
        if not isinstance(properties, dict):
            continue
        for key, field in properties.items():
            if isinstance(field, dict) and field.get("format") in _MASKED_FORMATS:
                found.append(f"`{step.id}`'s {key}")
    return found


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "; ".join(parts[:-1]) + "; and " + parts[-1]


def _promote(bot: str) -> str:
    return f"/promote {bot}, then /promote {bot} production"


def _not_live(bot: str, version: int, what: str) -> str:
    return (
        f"Production runs v{version}, whose {what} differ: end users get these once you promote "
        f"the draft ({_promote(bot)})."
    )
