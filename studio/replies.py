"""`Answer`: what the Studio says, before it is addressed to anyone. Presenters build answers; the
engine turns them into `OutgoingMessage`s and each front renders those in its own form."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.messages import Attachment, Button, Field

# What a button's action says: answer a stored confirmation, or run a command.
CONFIRM_PREFIX = "confirm:"  # + the confirmation's id
CANCEL_PREFIX = "cancel:"
RUN_PREFIX = "run:"  # + a command, e.g. "run:/show faq-bot"


@dataclass(frozen=True, slots=True)
class Answer:
    """Text with light markup (`*bold*`, `` `code` ``), optional fields, buttons and a file."""

    text: str
    fields: tuple[Field, ...] = ()
    buttons: tuple[Button, ...] = ()
    file: Attachment | None = None
