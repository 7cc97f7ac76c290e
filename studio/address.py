"""The Studio's address scheme.

Every front reaches the Studio as the built-in deployment `studio`. The conversation key starts
with the team id, so the engine knows the team from any address:
`studio_address("studio", 3, "api:owner")` -> conversation `3:api:owner`. Fronts that cannot be
pushed to (the terminal, the web console, the HTTP endpoint) use the channel `studio`, whose
messages are kept for the member to fetch (`adapters.mailbox`).
"""

from __future__ import annotations

from runtime.messages import Address

STUDIO_DEPLOYMENT = "studio"
PULL_CHANNEL = "studio"
TELEGRAM_STUDIO = "telegram-studio"  # the Studio's own Telegram bot (a DM: secrets may be sent)


def studio_address(
    channel: str, team_id: int, identity: str, *, thread: str | None = None
) -> Address:
    """Where a member talks to the Studio; `thread` separates conversations on one channel."""
    conversation = f"{team_id}:{thread or identity}"
    return Address(
        channel=channel,
        deployment_id=STUDIO_DEPLOYMENT,
        conversation=conversation,
        user=identity,
        thread=thread,
    )


def team_of(address: Address) -> int:
    """The team id a Studio address belongs to (see `studio_address`)."""
    head, _, _ = address.conversation.partition(":")
    return int(head)
