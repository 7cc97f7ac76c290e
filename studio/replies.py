"""`Answer`: what the Studio says, before it is addressed to anyone. Presenters build answers; the
engine turns them into `OutgoingMessage`s and each front renders those in its own form."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.cipher import Cipher
from runtime.messages import Attachment, Button, Field

# What a button's action says: answer a stored confirmation, or run a command.
CONFIRM_PREFIX = "confirm:"  # + the confirmation's id
CANCEL_PREFIX = "cancel:"
RUN_PREFIX = "run:"  # + a command, e.g. "run:/show faq-bot"
# A Telegram bot token handed over on a private path: "token:{request id or ''}:{ciphertext}".
# Fronts seal the token with the service's cipher at once, so the inbox only ever holds it sealed.
TOKEN_PREFIX = "token:"
# In place of the request id: the token of a bot the member just created through the Studio's
# t.me/newbot link (Telegram's managed bots), fetched by the Studio's bot itself.
MANAGED_BOT = "managed"
TOKEN_FORM_PREFIX = "token-form:"  # + a token request's id: a front opens a private form for it
# A team secret's value handed over on a private path: "secret:{request id}:{ciphertext}", sealed
# by the front at once like a token.
SECRET_PREFIX = "secret:"
# + "{request id}:{secret name}": a front takes the value privately (a form, a hidden prompt).
SECRET_FORM_PREFIX = "secret-form:"


def token_action(cipher: Cipher, token: str, *, request: str = "") -> str:
    """The action that hands `token` to the Studio for `request` ('' for the member's latest),
    sealed with the service's cipher."""
    return f"{TOKEN_PREFIX}{request}:{cipher.encrypt(token).decode()}"


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
