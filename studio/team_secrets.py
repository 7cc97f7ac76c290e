"""Team secrets by conversation and by REST: `/secret set NAME | list | remove NAME` and
`/api/v1/secrets`. A secret is a tool's credential (`ToolSpec.auth` names it), kept encrypted by
`runtime.secrets.SecretVault`.

A value never travels through a command. `/secret set NAME` opens a request (stored, 5 minutes,
like a token request) and says how to give the value privately on the front it was said on: the
next message in the Studio's Telegram DM (the front deletes it and hands it over sealed), a
Slack form, a hidden prompt in the terminal or the web console, or `PUT /api/v1/secrets/NAME`.
The value is then checked, stored and answered with its name only; the audit trail records that
it changed. Listing is for editors and up, setting and removing for admins and up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from runtime.cipher import Cipher
from runtime.messages import Address, Button, Field
from runtime.secrets import SecretVault, name_problem, value_problem
from runtime.team_front import TeamFronts
from storage.database import Database
from storage.secrets import SecretRepository
from studio.address import PULL_CHANNEL
from studio.commands import COMMANDS, Command, SecretList, SecretRemove, SecretSet
from studio.confirmations import SECRET_REQUEST, Confirmations
from studio.errors import InvalidError, NotFoundError
from studio.presenters import when
from studio.replies import SECRET_FORM_PREFIX, Answer
from studio.roles import Caller, Role
from studio.views import Timestamp

SECRET_COMMANDS: tuple[type[Command], ...] = (SecretSet, SecretList, SecretRemove)
_SECRET_VALUE = "SecretValue"  # a request's type: the value of a team secret
# (caller, the request's args, the value, where it was given) -> the answer
ValueAnswer = Callable[[Caller, dict[str, Any], str, Address], Awaitable[Answer]]
_SETTING = "Setting a team secret"
_REMOVING = "Removing a team secret"
_SEEING = "Seeing the team's secrets"
# A reply that is a command, not a value: the member changed their mind.
_CANCEL_WORDS = frozenset({"cancel"} | {c.name.split()[0] for c in COMMANDS})


class SecretView(BaseModel):
    """A secret as listed (never its value): `used_by` names the bots whose tools use it."""

    name: str
    updated_at: Timestamp
    updated_by: str
    used_by: list[str]


class SecretSaved(BaseModel):
    name: str
    created: bool  # False: it replaced the value the secret had
    updated_at: Timestamp
    used_by: list[str]


class SecretRemoved(BaseModel):
    name: str
    used_by: list[str]  # bots whose tools are now refused until the secret is set again


def rest_hint(name: str) -> str:
    return f'`PUT /api/v1/secrets/{name}` with `{{"value": "..."}}` and an admin key'


class TeamSecrets:
    """What `/secret` and `/api/v1/secrets` do."""

    def __init__(
        self,
        *,
        db: Database,
        vault: SecretVault,
        confirmations: Confirmations,
        cipher: Cipher,
        fronts: TeamFronts,
    ) -> None:
        self.db = db
        self.fronts = fronts  # how each of the Studio's fronts takes a value privately
        self.vault = vault
        self.confirmations = confirmations
        self.cipher = cipher
        # What a value asked for privately completes, by its request's type (besides a team
        # secret's value): the Studio's deploy asks for a channel's secrets this way.
        self.on_value: dict[str, ValueAnswer] = {}

    # -- operations (REST and chat) ---------------------------------------------------------------

    async def listed(self, caller: Caller) -> list[SecretView]:
        caller.require(Role.EDITOR, _SEEING)
        rows = await self.vault.listed(caller.team_id)
        users = await self._used_by(caller.team_id)
        return [
            SecretView(
                name=row.name,
                updated_at=row.updated_at,
                updated_by=row.updated_by,
                used_by=users.get(row.name, []),
            )
            for row in rows
        ]

    async def set(self, caller: Caller, name: str, value: str) -> SecretSaved:
        caller.require(Role.ADMIN, _SETTING)
        problem = name_problem(name) or value_problem(value)
        if problem:
            raise InvalidError(f"Nothing was saved: {problem}.")
        stored = await self.vault.store(caller.team_id, name, value, actor=caller.identity)
        return SecretSaved(
            name=name,
            created=stored.created,
            updated_at=stored.updated_at,
            used_by=(await self._used_by(caller.team_id)).get(name, []),
        )

    async def remove(self, caller: Caller, name: str) -> SecretRemoved:
        caller.require(Role.ADMIN, _REMOVING)
        problem = name_problem(name)
        if problem:
            raise InvalidError(f"Nothing was removed: {problem}.")
        if not await self.vault.remove(caller.team_id, name, actor=caller.identity):
            raise NotFoundError(f"There is no secret called {name} (/secret list shows them).")
        return SecretRemoved(name=name, used_by=(await self._used_by(caller.team_id)).get(name, []))

    async def _used_by(self, team_id: int) -> dict[str, list[str]]:
        async with self.db.read() as session:
            return await SecretRepository(session).used_by(team_id)

    # -- chat ------------------------------------------------------------------------------------

    async def run(self, caller: Caller, command: Command, address: Address) -> Answer:
        if isinstance(command, SecretList):
            return secret_list(await self.listed(caller))
        if isinstance(command, SecretRemove):
            return removed(await self.remove(caller, command.name_))
        assert isinstance(command, SecretSet)
        return await self._ask(caller, command.name_, address)

    async def _ask(self, caller: Caller, name: str, address: Address) -> Answer:
        """Open a request for the value and say how to give it privately on this front."""
        caller.require(Role.ADMIN, _SETTING)
        problem = name_problem(name)
        if problem:
            raise InvalidError(f"Nothing was saved: {problem}.")
        return await self.ask_privately(
            caller,
            address,
            command={"type": _SECRET_VALUE, "args": {"name": name}},
            what=f"the value of the secret *{name}*",
            form_name=name,
            elsewhere=rest_hint(name),
            retry=f"/secret set {name}",
        )

    async def ask_privately(
        self,
        caller: Caller,
        address: Address,
        *,
        command: dict[str, Any],
        what: str,
        form_name: str,
        elsewhere: str,
        retry: str,
    ) -> Answer:
        """Ask for one value on a private path of the front `address` is on (the next message
        in the Studio's Telegram DM, a Slack form, a hidden field in the terminal or the web
        console); `command` is what the value completes (`on_value`). A front with no private
        path is told `elsewhere` (how to give it by REST) and nothing is asked."""
        front = self.fronts.of_channel(address.channel)
        way = front.private if front is not None else None
        if front is not None and way == "message":
            spot = front.spot(address)
            if spot is None or not spot.direct:
                raise InvalidError(
                    f"I ask for {what} only in a direct message: say {retry} to me there, or "
                    f"use {elsewhere}."
                )
        if way is None and address.channel != PULL_CHANNEL:
            return Answer(f"Give me {what} privately: {elsewhere}.")
        request = await self.confirmations.ask(
            team_id=caller.team_id,
            identity=caller.identity,
            command=command,
            bot=None,
            revision=None,
            kind=SECRET_REQUEST,
        )
        if way == "message":
            return Answer(
                f"Send me {what} as your next message (within 5 minutes). I delete that message "
                "at once, keep it encrypted and never show it again. /cancel to stop."
            )
        form = Button(
            label="Enter the value",
            action=f"{SECRET_FORM_PREFIX}{request}:{form_name}",
            style="primary",
        )
        if way == "form":
            return Answer(
                f"{what[0].upper()}{what[1:]} goes into a private form, never into a channel "
                "(within 5 minutes).",
                buttons=(form,),
            )
        return Answer(
            f"Give me {what} privately, never in a chat: the terminal and the web console ask "
            f"for it in a hidden field (within 5 minutes); or use {elsewhere}.",
            buttons=(form,),
        )

    async def hand_over(self, caller: Caller, handed: str, address: Address) -> Answer:
        """A value a front sealed (`secret:{request}:{ciphertext}`, the prefix removed), given
        to what its request asked it for: a team secret, or another command's (`on_value`).
        The answer names what was set, never the value."""
        request, _, sealed = handed.partition(":")
        try:
            value = self.cipher.decrypt(sealed.encode())
        except ValueError:  # not sealed by this service: the request stays open
            return Answer("That value could not be read; nothing was saved. Send it again.")
        team, identity = caller.team_id, caller.identity
        if _is_command(value):  # "/cancel", or a command: the member moved on
            await self.confirmations.claim(
                team_id=team, identity=identity, token=request or None, kind=SECRET_REQUEST
            )
            return Answer(
                "Cancelled: no secret was saved. (Say the command again if you meant one.)"
            )
        problem = value_problem(value)
        if problem:  # the request stays open for a better value
            return Answer(
                f"Nothing was saved: {problem}. Send the value again (within 5 minutes of asking)."
            )
        pending = await self.confirmations.claim(
            team_id=team, identity=identity, token=request or None, kind=SECRET_REQUEST
        )
        if pending is None:
            return Answer(
                "No secret was waiting for a value (a request lasts 5 minutes, until your next "
                "command); nothing was kept. Say what asks for it again first (/secret set NAME, "
                "/deploy BOT CHANNEL)."
            )
        kind = str(pending.command.get("type", ""))
        args = dict(pending.command.get("args") or {})
        if kind != _SECRET_VALUE:
            answer = self.on_value.get(kind)
            if answer is None:
                return Answer("That request can no longer be answered; nothing was saved.")
            return await answer(caller, args, value, address)
        name = str(args.get("name", ""))
        if not name:
            return Answer("That request named no secret; nothing was saved.")
        return saved(await self.set(caller, name, value))

    def form_clicked(self, name: str) -> Answer:
        """The private form's button reached the Studio itself: this front cannot take the
        value privately."""
        return Answer(f"This front cannot take a secret's value privately; use {rest_hint(name)}.")


def _is_command(value: str) -> bool:
    if not value.startswith("/"):
        return False
    word = value[1:].split(None, 1)[0] if value[1:].strip() else ""
    return word.split("@", 1)[0].lower() in _CANCEL_WORDS


# -- presenters ----------------------------------------------------------------------------------


def _used(bots: list[str]) -> str:
    return f"used by {', '.join(bots)}" if bots else "no bot's tools use it"


def secret_list(views: list[SecretView]) -> Answer:
    if not views:
        return Answer(
            "The team has no secrets yet. An admin sets one with /secret set NAME (I ask for "
            "the value privately); a tool uses it with --auth NAME."
        )
    return Answer(
        "Team secrets (values are never shown):",
        fields=tuple(
            Field(
                label=view.name,
                value=f"set {when(view.updated_at)} by {view.updated_by} · {_used(view.used_by)}",
            )
            for view in views
        ),
    )


def saved(view: SecretSaved) -> Answer:
    replaced = "" if view.created else " (it replaces the old value)"
    text = f"Secret *{view.name}* saved{replaced}; its value is never shown again."
    if view.used_by:
        text += f" Tools of {', '.join(view.used_by)} use it from their next call."
    else:
        text += f" A tool uses it with `--auth {view.name}`."
    return Answer(text)


def removed(view: SecretRemoved) -> Answer:
    text = f"Removed the secret *{view.name}*."
    if view.used_by:
        text += (
            f" The tools of {', '.join(view.used_by)} that use it are now refused until "
            f"/secret set {view.name} gives it a value again."
        )
    return Answer(text)
