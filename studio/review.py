"""`/review` and `/eval BOT online`: answers end users rated down or online evaluation flagged,
collected into datasets in one step, and the setting that samples live answers for the judge.

`/review BOT` lists the latest answers (up to 20, newest first) rated 👎 by someone or flagged
by online evaluation, leaving out those already added to one of the bot's datasets (rows whose
source is "review ID"). Each shows the text as stored: with the bot's PII guard on, what end
users wrote was masked before it was kept. `/review BOT add ID… to DATASET` hands the ids to the
datasets feature, which builds the rows. Viewers may read; the online setting is for admins,
needs a judge model and is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from runtime.evaluation.judge import NO_JUDGE_MODEL
from runtime.evaluation.online import FLAGGED_AT, OnlineEvaluator
from storage import datasets as dataset_store
from storage import feedback as feedback_store
from storage.feedback import OnlineSetting, ReviewItem, ScoreSummary
from storage.tables import utcnow
from studio.commands import Command, EvalOnlineSet, ReviewAdd, ReviewList
from studio.datasets import DatasetFeature
from studio.errors import ConflictError, InvalidError
from studio.operations import Operations, audit
from studio.presenters import one_line, usd, when
from studio.replies import Answer
from studio.roles import Caller, Role

REVIEW_COMMANDS: tuple[type[Command], ...] = (ReviewList, ReviewAdd, EvalOnlineSet)
MAX_LISTED = 20
RECENT = timedelta(days=7)  # what `/eval BOT online` sums up
_PAGE = 50  # candidates read at a time (some may be in a dataset already)
_QUESTION_CHARS = 200
_ANSWER_CHARS = 300
_BEFORE_CHARS = 100


@dataclass(frozen=True, slots=True)
class Review:
    bot: str
    items: list[ReviewItem]


@dataclass(frozen=True, slots=True)
class OnlineView:
    """A bot's online evaluation: its setting (None: off), the judge, the last 7 days' verdicts."""

    bot: str
    setting: OnlineSetting | None
    judge_model: str | None
    recent: ScoreSummary


class ReviewFeature:
    def __init__(
        self, *, ops: Operations, datasets: DatasetFeature, online: OnlineEvaluator
    ) -> None:
        self.ops = ops
        self.datasets = datasets
        self.online = online

    async def run(self, caller: Caller, bot: str, command: Command) -> Answer:
        if isinstance(command, ReviewList):
            return review_list(await self.review(caller, bot))
        if isinstance(command, ReviewAdd):
            return await self.add(caller, bot, command.dataset, command.ids)
        assert isinstance(command, EvalOnlineSet)
        if command.off:
            removed = await self.turn_off(caller, bot)
            if removed is None:
                return Answer(f"*{bot}* has no online evaluation to turn off.")
            return Answer(
                f"*{bot}*: online evaluation is off. Its verdicts so far stay (/review {bot})."
            )
        if command.percent is None and command.rubric is None:
            return online_summary(await self.online_view(caller, bot))
        view = await self.set_online(caller, bot, percent=command.percent, rubric=command.rubric)
        return online_set(view)

    # -- /review ----------------------------------------------------------------------------

    async def review(self, caller: Caller, bot: str) -> Review:
        """The latest answers to review (viewers may read): rated down or flagged, not yet in
        one of the bot's datasets, newest first."""
        draft = await self.ops.draft(caller, bot)
        chosen: list[int] = []
        below: int | None = None
        async with self.ops.db.read_conn() as conn:
            collected = await dataset_store.reviewed_ids(conn, draft.bot_id)
            while len(chosen) < MAX_LISTED:
                page = await feedback_store.review_ids(conn, draft.bot_id, below=below, limit=_PAGE)
                fresh = [i for i in page if i not in collected]
                chosen.extend(fresh[: MAX_LISTED - len(chosen)])
                if len(page) < _PAGE:
                    break
                below = page[-1]
            items = await feedback_store.review_items(conn, chosen)
        return Review(draft.name, items)

    async def add(
        self, caller: Caller, bot: str, dataset: str, message_ids: Sequence[int]
    ) -> Answer:
        """Add reviewed answers to a dataset (the datasets feature checks and builds the rows)."""
        return await self.datasets.add_turns(caller, bot, dataset, message_ids)

    # -- online evaluation ------------------------------------------------------------------

    async def online_view(self, caller: Caller, bot: str) -> OnlineView:
        draft = await self.ops.draft(caller, bot)
        async with self.ops.db.read() as session:
            setting = await feedback_store.online_setting(session, draft.bot_id)
        return await self._view(draft.name, draft.bot_id, setting)

    async def _view(self, name: str, bot_id: int, setting: OnlineSetting | None) -> OnlineView:
        async with self.ops.db.read_conn() as conn:
            recent = await feedback_store.score_summary(conn, bot_id, since=utcnow() - RECENT)
        return OnlineView(name, setting, self.online.judge_model, recent)

    async def set_online(
        self, caller: Caller, bot: str, *, percent: float | None, rubric: str | None
    ) -> OnlineView:
        """Judge `percent` of the bot's live answers by `rubric` (admins); either may be left
        out to keep the current one."""
        caller.require(Role.ADMIN, "Setting online evaluation")
        if self.online.judge_model is None:
            raise ConflictError(f"Online evaluation needs a judge model; {NO_JUDGE_MODEL}")
        draft = await self.ops.draft(caller, bot)
        async with self.ops.db.write() as session:
            before = await feedback_store.online_setting(session, draft.bot_id)
            percent = percent if percent is not None else before.percent if before else None
            rubric = rubric if rubric is not None else before.rubric if before else None
            if percent is None or rubric is None:
                raise InvalidError(
                    f"{draft.name} has no online evaluation yet: give both, e.g. "
                    f'/eval {draft.name} online 10% "answers the question politely"'
                )
            if before is not None and (before.percent, before.rubric) == (percent, rubric):
                after = before  # nothing to change, nothing to audit
            else:
                after = await feedback_store.set_online(
                    session,
                    bot_id=draft.bot_id,
                    percent=percent,
                    rubric=rubric,
                    actor=caller.identity,
                )
                await audit(
                    session,
                    caller,
                    action="eval.online.set",
                    target=draft.name,
                    before=_audited(before),
                    after=_audited(after),
                )
        self.online.changed(draft.bot_id, after)
        return await self._view(draft.name, draft.bot_id, after)

    async def turn_off(self, caller: Caller, bot: str) -> OnlineSetting | None:
        """Stop online evaluation of the bot (admins); the setting it had, None: it had none."""
        caller.require(Role.ADMIN, "Turning online evaluation off")
        draft = await self.ops.draft(caller, bot)
        async with self.ops.db.write() as session:
            before = await feedback_store.online_setting(session, draft.bot_id)
            if before is None:
                return None
            await feedback_store.remove_online(session, draft.bot_id)
            await audit(
                session,
                caller,
                action="eval.online.off",
                target=draft.name,
                before=_audited(before),
            )
        self.online.changed(draft.bot_id, None)
        return before


def _audited(setting: OnlineSetting | None) -> dict[str, Any] | None:
    return {"percent": setting.percent, "rubric": setting.rubric} if setting else None


# -- presenters ---------------------------------------------------------------------------------


def _percent(value: float) -> str:
    return f"{value:g}%"


def grade(score: float) -> int:
    """A judge's score (0..1) as the grade it gave (1..5)."""
    return round(score * 4) + 1


def why(item: ReviewItem) -> str:
    """Why an answer is up for review: "👎 by 2 people", "flagged 1/5: reason", or both."""
    reasons: list[str] = []
    if item.downs:
        reasons.append("👎 by 1 person" if item.downs == 1 else f"👎 by {item.downs} people")
    if item.flagged and item.score is not None:
        flagged = f"flagged {grade(item.score)}/5"
        reasons.append(f"{flagged}: {item.reason}" if item.reason else flagged)
    return " · ".join(reasons)


def _speaker(role: str) -> str:
    return "user" if role == "user" else "team" if role == "human" else "bot"


def _item_lines(item: ReviewItem) -> list[str]:
    where = [f"*{item.message_id}*", when(item.at), item.channel]
    if item.version is not None:
        where.append(f"v{item.version}" + (f" (variant {item.variant})" if item.variant else ""))
    lines = [" · ".join([*where, why(item)])]
    if item.before:
        earlier = " / ".join(
            f'{_speaker(role)} "{one_line(text, _BEFORE_CHARS)}"' for role, text in item.before
        )
        lines.append(f"  before: {earlier}")
    if item.question is not None:
        lines.append(f'  user: "{one_line(item.question, _QUESTION_CHARS)}"')
    lines.append(f'  bot: "{one_line(item.answer, _ANSWER_CHARS)}"')
    return lines


def review_list(review: Review) -> Answer:
    bot = review.bot
    if not review.items:
        return Answer(
            f"Nothing to review for *{bot}*: no answer is rated 👎 or flagged by online "
            "evaluation (other than those already added to a dataset)."
        )
    count = len(review.items)
    latest = f"The latest {count}" if count == MAX_LISTED else str(count)
    noun = "answer" if count == 1 else "answers"
    blocks = ["\n".join(_item_lines(item)) for item in review.items]
    return Answer(
        "\n\n".join(
            [
                f"*{bot}*: {latest} {noun} to review, newest first.",
                *blocks,
                f"Add some to a dataset: /review {bot} add ID [ID ...] to DATASET",
            ]
        )
    )


def _recent(summary: ScoreSummary) -> str:
    """The last 7 days' verdicts, in words."""
    if not summary.judged:
        return "nothing judged"
    parts = [f"{summary.judged:,} judged"]
    if summary.mean is not None:
        parts.append(f"mean score {summary.mean:.0%}")
    parts.append(f"{summary.flagged:,} flagged")
    if summary.failed:
        parts.append(f"{summary.failed:,} without a grade")
    parts.append(f"judge cost {usd(summary.cost_usd)}")
    return ", ".join(parts)


def online_summary(view: OnlineView) -> Answer:
    bot, setting = view.bot, view.setting
    if setting is None:
        text = (
            f"*{bot}* has no online evaluation. "
            f'/eval {bot} online 10% "RUBRIC" has the judge grade a sample of live answers '
            "in the background (admins); low grades are flagged for /review."
        )
        if view.recent.judged:
            text += f" Last 7 days, before it was turned off: {_recent(view.recent)}."
        return Answer(text)
    text = (
        f"*{bot}* online evaluation: {_percent(setting.percent)} of live answers, graded by "
        f'"{one_line(setting.rubric, _QUESTION_CHARS)}"'
    )
    text += (
        f" with `{view.judge_model}`." if view.judge_model else f". Not judging: {NO_JUDGE_MODEL}."
    )
    text += f"\nLast 7 days: {_recent(view.recent)}."
    text += f"\nSet by {setting.updated_by} on {when(setting.updated_at)} (UTC)."
    return Answer(text)


def online_set(view: OnlineView) -> Answer:
    assert view.setting is not None
    setting = view.setting
    low = grade(FLAGGED_AT)
    return Answer(
        f"*{view.bot}*: the judge (`{view.judge_model}`) now grades "
        f"{_percent(setting.percent)} of live answers in the background by "
        f'"{one_line(setting.rubric, _QUESTION_CHARS)}"; answers graded {low}/5 or lower are '
        f"flagged for /review {view.bot}."
    )
