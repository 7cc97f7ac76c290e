"""Telegram bot tokens the Studio's own bot hands over unasked: one pasted into its DM when no
deployment is waiting for a token, or the token of a bot a member created through the Studio's
t.me/newbot link (Telegram's managed bots) when none is waiting either, which is a managed bot's
replaced token. A token a deployment asked for goes the way of every privately asked secret
(`studio.team_secrets`); these are the Studio's answers for the rest (`Studio.on_action`)."""

from __future__ import annotations

from runtime.cipher import Cipher
from runtime.messages import Address
from studio.errors import OperationError
from studio.operations import Operations
from studio.replies import Answer
from studio.roles import Caller

# "token:{how}:{ciphertext}": a token sealed by the Studio's Telegram bot at once, so the inbox
# only ever holds it sealed; `how` is MANAGED_BOT for a managed bot's, else empty.
TOKEN_PREFIX = "token:"
MANAGED_BOT = "managed"


def token_action(cipher: Cipher, token: str, *, how: str = "") -> str:
    """The action that hands `token` to the Studio unasked, sealed with the service's cipher."""
    return f"{TOKEN_PREFIX}{how}:{cipher.encrypt(token).decode()}"


class UnaskedTokens:
    """The Studio's answer to a token handed over with no deployment waiting for it."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    async def __call__(self, caller: Caller, handed: str, address: Address) -> Answer:
        how, _, sealed = handed.partition(":")
        try:
            token = self.ops.cipher.decrypt(sealed.encode())
        except ValueError:  # not sealed by this service
            return Answer("That token could not be read; nothing was deployed. Send it again.")
        if how != MANAGED_BOT:
            return Answer(
                "That looks like a bot token: I removed it and kept nothing. To put a bot on "
                "Telegram, say /deploy BOT telegram first, then send the token within 5 minutes."
            )
        return await self._replaced(caller, token)

    async def _replaced(self, caller: Caller, token: str) -> Answer:
        """A managed bot's token with no request waiting: its token was replaced in Telegram
        (the deployment using that bot takes the new one), or nothing asked for it."""
        bot_id = token.partition(":")[0]
        serving = [
            d
            for d in await self.ops.deployments(caller, None)
            if d.channel == "telegram" and d.target == bot_id
        ]
        if not serving:
            return Answer(
                "Telegram told me about a new bot you created with me, but no deployment was "
                "waiting for one (a request lasts 5 minutes). Say /deploy BOT telegram, then "
                "send me that bot's token from @BotFather."
            )
        used = serving[0]  # a Telegram bot serves one deployment at most
        try:
            view = await self.ops.deploy(
                caller, used.bot, channel="telegram", env=used.env, token=token
            )
        except OperationError as exc:
            return Answer(f"The Telegram bot of *{used.bot}* has a new token, but: {exc.message}")
        return Answer(
            f"The Telegram bot of *{used.bot}* ({used.env}) has a new token; "
            f"its deployment uses it now: {view.url}"
        )
