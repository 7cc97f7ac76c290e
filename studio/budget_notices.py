"""The Studio's side of budget notices: a bot's team owners and admins are told when its monthly
spend reaches 80% and 100% of its budget (`runtime.turn.budget` decides when, once each).

They are told where each talks to the Studio: a DM with the Studio on Slack or Telegram, else the
pull channel whose messages `studio_notice` keeps for the web console and the terminal
(`Studio.tell_leaders`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from storage.bots import BotRepository
from storage.database import Database
from studio.presenters import usd

Tell = Callable[[int, str], Awaitable[None]]  # (team id, text): `Studio.tell_leaders`


def budget_notice(bot: str, *, percent: int, spent: float, budget: float) -> str:
    """What the owners are told when `bot` reached `percent` of its monthly budget."""
    raise_it = (
        f"To raise it: `/budget {bot} $N per month`, then promote the draft "
        f"(`/promote {bot}`, then `/promote {bot} production`)."
    )
    if percent >= 100:
        return (
            f"*{bot}* reached its monthly budget: {usd(spent)} of {usd(budget)} this month "
            "(UTC). Until the month ends it tells end users it has reached its limit. " + raise_it
        )
    return (
        f"*{bot}* has used {percent}% of its monthly budget: {usd(spent)} of {usd(budget)} this "
        "month (UTC). At 100% it stops answering end users until the month ends. " + raise_it
    )


class StudioBudgetNotifier:
    """`runtime.turn.budget.BudgetNotifier` for the Studio: `tell` reaches the team's owners
    and admins (`Studio.tell_leaders`)."""

    def __init__(self, *, db: Database, tell: Tell) -> None:
        self.db = db
        self.tell = tell

    async def budget_reached(
        self, *, bot_id: int, percent: int, spent: float, budget: float
    ) -> None:
        async with self.db.read() as session:
            bot = await BotRepository(session).by_id(bot_id)
        if bot is None:  # deleted meanwhile: nobody to tell about it
            return
        text = budget_notice(bot.name, percent=percent, spent=spent, budget=budget)
        await self.tell(bot.team_id, text)
