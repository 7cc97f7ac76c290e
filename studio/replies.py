"""`Answer`: what the Studio says, before it is addressed to anyone. Presenters build answers; the
engine turns them into `OutgoingMessage`s and each front renders those in its own form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.cipher import Cipher
from runtime.messages import Attachment, Button, Field

# What a button's action says: answer a stored confirmation, or run a command.
CONFIRM_PREFIX = "confirm:"  # + the confirmation's id
CANCEL_PREFIX = "cancel:"
RUN_PREFIX = "run:"  # + a command, e.g. "run:/show faq-bot"
# A value asked for privately and handed over: "secret:{request id}:{ciphertext}". Fronts seal
# it with the service's cipher at once, so the inbox only ever holds it sealed.
SECRET_PREFIX = "secret:"
# + "{request id}:{secret name}": a front takes the value privately (a form, a hidden prompt).
SECRET_FORM_PREFIX = "secret-form:"
# The type of a private request's command when the value is a secret a deployment needs
# (args: bot, channel, env, target, options, the secrets given so far, and `name`).
DEPLOY_SECRET = "DeploySecret"


def deploy_secret(command: Mapping[str, Any]) -> tuple[str, str] | None:
    """(channel, secret name) of a private request for a deployment's secret; None when the
    request asks for something else (a team secret's value)."""
    if command.get("type") != DEPLOY_SECRET:
        return None
    args = command.get("args") or {}
    return str(args.get("channel", "")), str(args.get("name", ""))


def secret_action(cipher: Cipher, value: str, *, request: str) -> str:
    """The action that hands a secret's `value` to the Studio for `request`, sealed."""
    return f"{SECRET_PREFIX}{request}:{cipher.encrypt(value).decode()}"


def secret_form(action: str) -> tuple[str, str] | None:
    """(request id, secret name) of a `SECRET_FORM_PREFIX` action; None for any other."""
    if not action.startswith(SECRET_FORM_PREFIX):
        return None
    request, _, name = action.removeprefix(SECRET_FORM_PREFIX).partition(":")
    return (request, name) if request and name else None


@dataclass(frozen=True, slots=True)
class Answer:
    """Text with light markup (`*bold*`, `` `code` ``), optional fields, buttons and a file."""

    text: str
    fields: tuple[Field, ...] = ()
    buttons: tuple[Button, ...] = ()
    file: Attachment | None = None
