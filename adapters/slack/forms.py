"""Private forms (Slack modals) for what is never typed into a channel: a team secret's value
for `/secret set NAME`, a secret a deployment needs (a Telegram bot's token for `/deploy BOT
telegram`).

The Studio answers such a request with one button whose action is the form's prefix and the
request (`secret-form:{request}:{name}`). Clicking it (or the slash
command itself) opens the form; what is submitted is checked here, sealed with the service's
cipher and handed to the Studio as an action, so neither Slack's channels nor the inbox ever hold
it in clear.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.cipher import Cipher
from runtime.secrets import MAX_SECRET_CHARS, value_problem
from studio.replies import SECRET_FORM_PREFIX, secret_action, secret_form

INPUT = "value"  # the input's action id


@dataclass(frozen=True, slots=True)
class PrivateForm:
    """One kind of form. `label(request)` is the input's label; `read(typed)` gives the value
    or a one-line error shown under the input; `seal(cipher, value, request)` is the action
    that hands the value to the Studio."""

    prefix: str
    callback_id: str
    block: str  # the input's block id
    title: str
    submit: str
    label: Callable[[str], str]
    placeholder: str
    hint: str
    read: Callable[[str], tuple[str | None, str | None]]
    seal: Callable[[Cipher, str, str], str]
    max_length: int | None = None


def _read_secret(typed: str) -> tuple[str | None, str | None]:
    problem = value_problem(typed)
    return (None, f"{problem[0].upper()}{problem[1:]}.") if problem else (typed, None)


def _secret_name(request: str) -> str:
    found = secret_form(SECRET_FORM_PREFIX + request)
    return found[1] if found else "the secret"


def _seal_secret(cipher: Cipher, value: str, request: str) -> str:
    return secret_action(cipher, value, request=request.partition(":")[0])


SECRET_MODAL = PrivateForm(
    prefix=SECRET_FORM_PREFIX,
    callback_id="studio-secret",
    block="secret",
    title="A secret",  # a team secret, or one a deployment needs
    submit="Save",
    label=lambda request: f"The value of {_secret_name(request)}",
    placeholder="one line, as the service issued it",
    hint="Kept encrypted and never shown again, to anyone. "
    f"Longer than {min(MAX_SECRET_CHARS, 3000):,} characters? Give it by REST instead.",
    read=_read_secret,
    seal=_seal_secret,
    max_length=min(MAX_SECRET_CHARS, 3000),  # Slack's limit for a text input
)
FORMS = (SECRET_MODAL,)


def form_for(action: str) -> tuple[PrivateForm, str] | None:
    """The form a button's action opens, and its request; None for any other action."""
    for form in FORMS:
        if action.startswith(form.prefix):
            return form, action.removeprefix(form.prefix)
    return None


def form_by_callback(callback_id: str) -> PrivateForm | None:
    return next((form for form in FORMS if form.callback_id == callback_id), None)


def view(form: PrivateForm, request: str, *, channel: str, thread: str | None) -> dict[str, Any]:
    """The modal; `private_metadata` keeps the request and where the Studio answers."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": INPUT,
        "placeholder": {"type": "plain_text", "text": form.placeholder},
    }
    if form.max_length is not None:
        element["max_length"] = form.max_length
    return {
        "type": "modal",
        "callback_id": form.callback_id,
        "private_metadata": json.dumps({"request": request, "channel": channel, "thread": thread}),
        "title": {"type": "plain_text", "text": form.title},
        "submit": {"type": "plain_text", "text": form.submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": form.block,
                "label": {"type": "plain_text", "text": form.label(request)},
                "element": element,
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": form.hint}]},
        ],
    }


def typed(form: PrivateForm, view: dict[str, Any]) -> str:
    """What was typed into a submitted form ('' when nothing)."""
    values = view.get("state", {}).get("values", {})
    return str(values.get(form.block, {}).get(INPUT, {}).get("value") or "")
