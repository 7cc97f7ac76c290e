"""`/review` and `/eval BOT online` (`studio.review`) on the real service: live web turns judged by
the fake LLM as the judge (bots are offline, so every model call is the judge's), rated by end
users through the web API, listed with their context and handed to the datasets feature."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from builders.dataset import DatasetContent, DatasetRow
from runtime.evaluation.judge import NO_JUDGE_MODEL
from storage.datasets import DatasetRepository
from studio.commands import EvalOnlineSet, ReviewAdd, ReviewList
from studio.engine import Studio
from studio.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from studio.roles import Caller
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")

JUDGE = "openai/fake-judge"
ANSWER = "Refunds take 5 days."
RUBRIC = "answers the question about refunds"


@pytest.fixture
async def judged(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Service]:
    """The service with the fake LLM as its judge model."""
    settings = service_settings(tmp_path, llm_api_base=llm.base_url, judge_model=JUDGE)
    async with running_service(settings) as service:
        yield service


def studio_of(service: Service) -> Studio:
    return service.app.state.core.studio  # type: ignore[no-any-return]


async def caller_of(service: Service, key: str | None = None) -> Caller:
    return await service.app.state.core.ops.authenticate(key or service.key)  # type: ignore[no-any-return]


async def member(service: Service, role: str) -> Caller:
    made = await service.call("POST", "/api/v1/keys", json={"name": role, "role": role})
    return await caller_of(service, made["key"])


async def rate(service: Service, deployment: str, session: str, answer: int, rating: str) -> None:
    response = await service.client.post(
        f"/api/v1/chat/{deployment}/feedback",
        json={"session": session, "message_id": answer, "rating": rating},
    )
    assert response.status_code == 204, response.text


async def conversation(
    service: Service, deployment: str, turns: Sequence[tuple[str, str]], llm: FakeLLM
) -> tuple[str, list[int]]:
    """One web session's turns, each answer judged (by the scripted grade) before the next."""
    session: str | None = None
    ids: list[int] = []
    for text, grade in turns:
        llm.reply(grade)
        body = (await service.chat(deployment, text, session)).json()
        assert body["reply"] == ANSWER
        session, answer = body["session"], body["message_id"]
        ids.append(answer)
        await studio_of(service).online.drain()
    assert session is not None
    return session, ids


async def test_review_lists_answers_rated_down_or_flagged_with_the_exchange_before(
    judged: Service, llm: FakeLLM
) -> None:
    deployment = await judged.live_web_bot(fallback=ANSWER)
    owner = await caller_of(judged)
    review = studio_of(judged).review
    turned_on = await review.run(owner, "faq-bot", EvalOnlineSet(percent=100, rubric=RUBRIC))
    assert "100% of live answers" in turned_on.text and "2/5 or lower" in turned_on.text
    session, (polite, ignored, card) = await conversation(
        judged,
        deployment,
        [
            ("Hi", "5 polite"),
            ("How long do refunds take?", "1 it ignores the question"),
            ("And by card?", "4 fine"),
        ],
        llm,
    )
    await rate(judged, deployment, session, card, "down")
    await rate(judged, deployment, session, polite, "up")

    listed = (await review.run(owner, "faq-bot", ReviewList())).text
    blocks = listed.split("\n\n")
    assert blocks[0] == "*faq-bot*: 2 answers to review, newest first."
    assert blocks[1].startswith(f"*{card}* · ")
    assert blocks[1].split("\n")[0].endswith(" · web · v1 · 👎 by 1 person")
    assert blocks[1].split("\n")[1:] == [
        f'  before: user "How long do refunds take?" / bot "{ANSWER}"',
        '  user: "And by card?"',
        f'  bot: "{ANSWER}"',
    ]
    assert blocks[2].startswith(f"*{ignored}* · ")
    assert blocks[2].split("\n")[0].endswith("flagged 1/5: it ignores the question")
    assert '  user: "How long do refunds take?"' in blocks[2]
    assert blocks[3] == "Add some to a dataset: /review faq-bot add ID [ID ...] to DATASET"
    assert f"*{polite}*" not in listed

    shown = (await review.run(owner, "faq-bot", EvalOnlineSet())).text
    assert "Last 7 days: 3 judged, mean score 58%, 1 flagged" in shown
    viewer = await member(judged, "viewer")
    assert (await review.run(viewer, "faq-bot", ReviewList())).text == listed  # viewers read


async def test_answers_over_the_openai_api_are_judged_like_any_channel(
    judged: Service, llm: FakeLLM
) -> None:
    await judged.live_web_bot(fallback=ANSWER)
    owner = await caller_of(judged)
    review = studio_of(judged).review
    await review.run(owner, "faq-bot", EvalOnlineSet(percent=100, rubric=RUBRIC))
    llm.reply("1 it ignores the question")
    asked = await judged.client.post(
        "/openai/v1/chat/completions",
        json={"model": "faq-bot", "messages": [{"role": "user", "content": "Refunds?"}]},
        headers={"Authorization": f"Bearer {judged.key}"},
    )
    assert asked.status_code == 200, asked.text
    await studio_of(judged).online.drain()
    [item] = (await review.review(owner, "faq-bot")).items
    listed = (await review.run(owner, "faq-bot", ReviewList())).text
    assert f"*{item.message_id}* · " in listed and " · api · v1 · " in listed
    assert "flagged 1/5: it ignores the question" in listed


async def test_answers_already_in_a_dataset_are_left_out(judged: Service, llm: FakeLLM) -> None:
    deployment = await judged.live_web_bot(fallback=ANSWER)
    session, (first, second) = await conversation(
        judged, deployment, [("one", "3 ok"), ("two", "3 ok")], llm
    )
    for answer in (first, second):
        await rate(judged, deployment, session, answer, "down")
    owner = await caller_of(judged)
    review = studio_of(judged).review
    draft = await judged.app.state.core.ops.draft(owner, "faq-bot")
    rows = [DatasetRow(id=1, turns=["two"], reference=ANSWER, source=f"review {second}")]
    async with judged.app.state.core.db.write() as session_:
        await DatasetRepository(session_).save(
            team_id=owner.team_id,
            bot_id=draft.bot_id,
            name="golden",
            content=DatasetContent(rows=rows),
            actor=owner.identity,
        )
    found = await review.review(owner, "faq-bot")
    assert [item.message_id for item in found.items] == [first]
    rows.append(DatasetRow(id=2, turns=["one"], source=f"review {first}"))
    async with judged.app.state.core.db.write() as session_:
        await DatasetRepository(session_).save(
            team_id=owner.team_id,
            bot_id=draft.bot_id,
            name="more",
            content=DatasetContent(rows=rows),
            actor=owner.identity,
        )
    nothing = (await review.run(owner, "faq-bot", ReviewList())).text
    assert nothing.startswith("Nothing to review for *faq-bot*")


async def test_review_add_puts_the_answers_with_their_context_in_a_dataset(
    judged: Service, llm: FakeLLM
) -> None:
    deployment = await judged.live_web_bot(fallback=ANSWER)
    session, (first, second) = await conversation(
        judged, deployment, [("Hi", "3 ok"), ("How long do refunds take?", "3 ok")], llm
    )
    for answer in (first, second):
        await rate(judged, deployment, session, answer, "down")
    owner, studio = await caller_of(judged), studio_of(judged)

    said = await studio.review.run(owner, "faq-bot", ReviewAdd(ids=[second], dataset="golden"))
    assert said.text.startswith("Made *golden* of *faq-bot*: 1 row (1) of reviewed answers")
    rows = (await studio.datasets.view(owner, "faq-bot", "golden")).content.rows
    assert [(row.turns, row.reference, row.source) for row in rows] == [
        (["How long do refunds take?"], ANSWER, f"review {second}")
    ]
    assert [(m.role, m.text) for m in rows[0].history] == [("user", "Hi"), ("assistant", ANSWER)]
    assert [item.message_id for item in (await studio.review.review(owner, "faq-bot")).items] == [
        first
    ]
    viewer = await member(judged, "viewer")
    with pytest.raises(ForbiddenError, match="needs the editor role"):
        await studio.review.run(viewer, "faq-bot", ReviewAdd(ids=[first], dataset="golden"))
    with pytest.raises(NotFoundError, match=f"faq-bot has no answered turn {second + 100}"):
        await studio.review.run(owner, "faq-bot", ReviewAdd(ids=[second + 100], dataset="golden"))
    assert len((await studio.datasets.view(owner, "faq-bot", "golden")).content.rows) == 1


async def test_online_evaluation_is_set_by_admins_kept_audited_and_applied_at_once(
    judged: Service,
) -> None:
    await judged.import_bot()
    review = studio_of(judged).review
    owner, viewer, editor = (
        await caller_of(judged),
        await member(judged, "viewer"),
        await member(judged, "editor"),
    )
    nothing = (await review.run(viewer, "faq-bot", EvalOnlineSet())).text
    assert nothing.startswith("*faq-bot* has no online evaluation.")
    for who in (viewer, editor):
        with pytest.raises(ForbiddenError, match="needs the admin role"):
            await review.run(who, "faq-bot", EvalOnlineSet(percent=10, rubric=RUBRIC))
    for half in (EvalOnlineSet(percent=10), EvalOnlineSet(rubric=RUBRIC)):
        with pytest.raises(InvalidError, match="give both"):
            await review.run(owner, "faq-bot", half)
    with pytest.raises(NotFoundError, match="No bot named 'faq-bt'"):
        await review.run(owner, "faq-bt", EvalOnlineSet(percent=10, rubric=RUBRIC))
    bot_id = (await judged.app.state.core.ops.draft(owner, "faq-bot")).bot_id
    online = studio_of(judged).online
    assert online.setting(bot_id) is None

    set_ = await review.run(owner, "faq-bot", EvalOnlineSet(percent=12.5, rubric=RUBRIC))
    assert f"(`{JUDGE}`) now grades 12.5% of live answers" in set_.text
    applied = online.setting(bot_id)
    assert applied is not None and (applied.percent, applied.rubric) == (12.5, RUBRIC)
    await review.run(owner, "faq-bot", EvalOnlineSet(percent=20))  # keeps the rubric
    await review.run(owner, "faq-bot", EvalOnlineSet(percent=20, rubric=RUBRIC))  # no change
    shown = (await review.run(viewer, "faq-bot", EvalOnlineSet())).text
    assert shown.startswith(
        f'*faq-bot* online evaluation: 20% of live answers, graded by "{RUBRIC}"'
    )
    assert f"with `{JUDGE}`." in shown and "Last 7 days: nothing judged." in shown

    off = await review.run(owner, "faq-bot", EvalOnlineSet(off=True))
    assert "online evaluation is off" in off.text and online.setting(bot_id) is None
    again = await review.run(owner, "faq-bot", EvalOnlineSet(off=True))
    assert again.text == "*faq-bot* has no online evaluation to turn off."

    audit = await judged.call("GET", "/api/v1/audit")
    events = [
        (e["action"], e["before"], e["after"]) for e in audit if e["action"].startswith("eval.")
    ]
    assert sorted(events, key=str) == sorted(
        [
            ("eval.online.set", None, {"percent": 12.5, "rubric": RUBRIC}),
            (
                "eval.online.set",
                {"percent": 12.5, "rubric": RUBRIC},
                {"percent": 20.0, "rubric": RUBRIC},
            ),
            ("eval.online.off", {"percent": 20.0, "rubric": RUBRIC}, None),
        ],
        key=str,
    )


async def test_another_teams_bot_is_not_found(judged: Service) -> None:
    await judged.import_bot()
    other: Any = await judged.app.state.core.ops.create_team("rivals")
    stranger = await caller_of(judged, other.key)
    review = studio_of(judged).review
    for command in (ReviewList(), EvalOnlineSet(), EvalOnlineSet(off=True)):
        with pytest.raises(NotFoundError, match="No bot named 'faq-bot'"):
            await review.run(stranger, "faq-bot", command)


async def test_without_a_judge_model_online_evaluation_is_refused(service: Service) -> None:
    await service.import_bot()
    review = studio_of(service).review
    owner = await caller_of(service)
    with pytest.raises(ConflictError) as refused:
        await review.run(owner, "faq-bot", EvalOnlineSet(percent=10, rubric=RUBRIC))
    assert NO_JUDGE_MODEL in refused.value.message
    shown = (await review.run(owner, "faq-bot", EvalOnlineSet())).text
    assert shown.startswith("*faq-bot* has no online evaluation.")
    audit = await service.call("GET", "/api/v1/audit")
    assert not [e for e in audit if e["action"].startswith("eval.")]


async def test_with_the_pii_guard_on_review_shows_what_was_kept_masked(
    judged: Service,
) -> None:
    deployment = await judged.live_web_bot(fallback=ANSWER, guardrails={"pii": True})
    body = (await judged.chat(deployment, "I am ann@example.com, card 4111 1111 1111 1111")).json()
    await rate(judged, deployment, body["session"], body["message_id"], "down")
    listed = (
        await studio_of(judged).review.run(await caller_of(judged), "faq-bot", ReviewList())
    ).text
    assert 'user: "I am [email], card [card]"' in listed
    assert "ann@example.com" not in listed and "4111" not in listed
