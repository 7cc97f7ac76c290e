"""The web's end-user feedback and the REST of `/review` and online evaluation, over HTTP: the chat
answer names itself, `POST /api/v1/chat/{id}/feedback` rates only an answer of that session's
conversation (replacing, taking back), history carries ids and ratings, and the review and
online routes act with the caller's role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM

ANSWER = "Refunds take 5 days."
RUBRIC = "answers the question about refunds"


async def _feedback(
    service: Service, deployment: str, session: str, answer: int, rating: str
) -> httpx.Response:
    return await service.client.post(
        f"/api/v1/chat/{deployment}/feedback",
        json={"session": session, "message_id": answer, "rating": rating},
    )


async def _history(service: Service, deployment: str, session: str) -> list[dict[str, Any]]:
    response = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": session}
    )
    return list(response.json()["messages"])


async def _review(service: Service, key: str | None = None) -> list[dict[str, Any]]:
    return list((await service.call("GET", "/api/v1/bots/faq-bot/review", key=key))["items"])


async def test_an_answer_names_itself_and_its_session_rates_it(service: Service) -> None:
    deployment = await service.live_web_bot(fallback=ANSWER)
    first = (await service.chat(deployment, "How long do refunds take?")).json()
    session, answer = first["session"], first["message_id"]
    assert first["reply"] == ANSWER and isinstance(answer, int)

    assert (await _feedback(service, deployment, session, answer, "up")).status_code == 204
    history = await _history(service, deployment, session)
    assert [(m["id"], m["role"], m["text"], m["rating"]) for m in history] == [
        (answer - 1, "user", "How long do refunds take?", None),
        (answer, "assistant", ANSWER, "up"),
    ]
    assert await _review(service) == []  # rated up: nothing to review

    assert (await _feedback(service, deployment, session, answer, "down")).status_code == 204
    assert (await _history(service, deployment, session))[1]["rating"] == "down"
    [item] = await _review(service)
    assert (item["id"], item["why"], item["rated_down"], item["rated_up"]) == (
        answer,
        "👎 by 1 person",
        1,
        0,
    )
    assert (item["user_message"], item["answer"], item["channel"]) == (
        "How long do refunds take?",
        ANSWER,
        "web",
    )

    assert (await _feedback(service, deployment, session, answer, "none")).status_code == 204
    assert (await _history(service, deployment, session))[1]["rating"] is None
    assert await _review(service) == []


async def test_only_an_answer_of_the_sessions_conversation_is_rated(service: Service) -> None:
    deployment = await service.live_web_bot(fallback=ANSWER)
    other = await service.live_web_bot("other-bot", fallback=ANSWER)
    mine = (await service.chat(deployment, "hello")).json()
    theirs = (await service.chat(deployment, "hello")).json()
    elsewhere = (await service.chat(other, "hello")).json()
    session = mine["session"]
    nonce, mac = session.split(".")
    refused = [
        await _feedback(service, deployment, session, theirs["message_id"], "down"),
        await _feedback(service, deployment, session, mine["message_id"] - 1, "down"),  # theirs
        await _feedback(service, deployment, session, elsewhere["message_id"], "down"),
        await _feedback(service, other, session, mine["message_id"], "down"),
        await _feedback(service, deployment, f"{nonce}.{mac[::-1]}", mine["message_id"], "down"),
        await _feedback(service, deployment, theirs["session"], mine["message_id"], "down"),
        await _feedback(service, "d_unknown", session, mine["message_id"], "down"),
    ]
    for response in refused:
        assert response.status_code == 404, response.text
        assert list(response.json()) == ["error"]
    assert await _review(service) == []
    for m in await _history(service, deployment, session):
        assert m["rating"] is None


async def test_bad_feedback_is_a_422(service: Service) -> None:
    deployment = await service.live_web_bot(fallback=ANSWER)
    body = (await service.chat(deployment, "hello")).json()
    good = {"session": body["session"], "message_id": body["message_id"], "rating": "down"}
    url = f"/api/v1/chat/{deployment}/feedback"
    for bad in (
        {**good, "rating": "meh"},
        {**good, "message_id": 0},
        {**good, "message_id": 2**40},
        {**good, "session": ""},
        {key: value for key, value in good.items() if key != "session"},
    ):
        response = await service.client.post(url, json=bad)
        assert response.status_code == 422, bad
        assert list(response.json()) == ["error"]
    assert (await service.client.post(url, content=b"down")).status_code == 422
    assert await _review(service) == []


async def test_feedback_is_rate_limited_like_chat(tmp_path: Path) -> None:
    settings = service_settings(tmp_path, web_rate_per_session=1, web_rate_per_address=1000)
    async with running_service(settings) as service:
        deployment = await service.live_web_bot(fallback=ANSWER)
        body = (await service.chat(deployment, "hello")).json()
        codes = [
            (
                await _feedback(service, deployment, body["session"], body["message_id"], "down")
            ).status_code
            for _ in range(12)
        ]
        assert codes.count(429) >= 2 and set(codes) <= {204, 429}


async def test_the_greeting_is_not_a_kept_answer_and_has_no_id(service: Service) -> None:
    deployment = await service.live_web_bot("greeter", greeting="Welcome!")
    body = (await service.chat(deployment, "/start")).json()
    assert body["reply"] == "Welcome!" and body["message_id"] is None


async def test_a_refusal_or_a_fallback_after_a_failure_is_not_rated(service: Service) -> None:
    deployment = await service.live_web_bot(
        fallback=ANSWER, guardrails={"blocked_terms": ["password"]}
    )
    refused = (await service.chat(deployment, "What is the admin password?")).json()
    assert refused["reply"] != ANSWER and refused["message_id"] is None
    stored = [m["id"] for m in await _history(service, deployment, refused["session"])]
    for answer in stored:  # the refusal is kept, but is not an answer anyone rates
        rated = await _feedback(service, deployment, refused["session"], answer, "down")
        assert rated.status_code == 404
    assert await _review(service) == []


async def test_review_add_over_rest(service: Service) -> None:
    deployment = await service.live_web_bot(fallback=ANSWER)
    first = (await service.chat(deployment, "Hi")).json()
    session = first["session"]
    second = (await service.chat(deployment, "How long do refunds take?", session)).json()
    for answer in (first, second):
        rated = await _feedback(service, deployment, session, answer["message_id"], "down")
        assert rated.status_code == 204
    url = "/api/v1/bots/faq-bot/review/add"
    added = await service.call(
        "POST", url, json={"ids": [second["message_id"]], "dataset": "golden"}
    )
    assert added["dataset"] == "golden"
    assert added["text"].startswith("Made *golden* of *faq-bot*: 1 row (1) of reviewed answers")
    golden = await service.call("GET", "/api/v1/bots/faq-bot/datasets/golden")
    [row] = golden["content"]["rows"]
    assert (row["turns"], row["reference"], row["source"]) == (
        ["How long do refunds take?"],
        ANSWER,
        f"review {second['message_id']}",
    )
    assert row["history"] == [
        {"role": "user", "text": "Hi"},
        {"role": "assistant", "text": ANSWER},
    ]
    assert [item["id"] for item in await _review(service)] == [first["message_id"]]

    viewer = (await service.call("POST", "/api/v1/keys", json={"name": "v", "role": "viewer"}))[
        "key"
    ]
    body = {"ids": [first["message_id"]], "dataset": "golden"}
    forbidden = await service.client.post(url, json=body, headers=service.auth(viewer))
    assert forbidden.status_code == 403
    unknown = {"ids": [second["message_id"] + 100], "dataset": "golden"}
    assert (await service.client.post(url, json=unknown, headers=service.auth())).status_code == 404
    for bad in ({"ids": [], "dataset": "golden"}, {"ids": [0], "dataset": "golden"}, {"ids": [1]}):
        response = await service.client.post(url, json=bad, headers=service.auth())
        assert response.status_code == 422, bad
    after = await service.call("GET", "/api/v1/bots/faq-bot/datasets/golden")
    assert after["content_hash"] == golden["content_hash"]


@pytest.fixture
async def judged(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Service]:
    settings = service_settings(tmp_path, llm_api_base=llm.base_url, judge_model="openai/judge")
    async with running_service(settings) as service:
        yield service


@pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
async def test_online_evaluation_over_rest(judged: Service, llm: FakeLLM) -> None:
    deployment = await judged.live_web_bot(fallback=ANSWER)
    url = "/api/v1/bots/faq-bot/evals/online"
    off = await judged.call("GET", url)
    assert (off["enabled"], off["percent"], off["judge_model"]) == (False, None, "openai/judge")
    viewer = (await judged.call("POST", "/api/v1/keys", json={"name": "v", "role": "viewer"}))[
        "key"
    ]
    body = {"percent": 100, "rubric": RUBRIC}
    forbidden = await judged.client.put(url, json=body, headers=judged.auth(viewer))
    assert forbidden.status_code == 403
    for bad in (
        {"percent": 0, "rubric": RUBRIC},
        {"percent": 101, "rubric": RUBRIC},
        {"percent": 5},
    ):
        assert (await judged.client.put(url, json=bad, headers=judged.auth())).status_code == 422
    on = await judged.call("PUT", url, json=body)
    assert (on["enabled"], on["percent"], on["rubric"], on["updated_by"]) == (
        True,
        100.0,
        RUBRIC,
        "api:owner",
    )

    llm.reply("1 it does not answer")
    chat = (await judged.chat(deployment, "How long do refunds take?")).json()
    await judged.app.state.core.studio.online.drain()
    [item] = await _review(judged, viewer)
    assert (item["id"], item["flagged"], item["score"], item["why"]) == (
        chat["message_id"],
        True,
        0.0,
        "flagged 1/5: it does not answer",
    )
    seen = await judged.call("GET", url, key=viewer)
    assert seen["last_7_days"]["judged"] == 1 and seen["last_7_days"]["flagged"] == 1

    assert (await judged.client.delete(url, headers=judged.auth())).status_code == 204
    gone = await judged.client.delete(url, headers=judged.auth())
    assert gone.status_code == 404 and "no online evaluation" in gone.json()["error"]
    assert (await judged.call("GET", url))["enabled"] is False
    assert (
        await judged.client.get("/api/v1/bots/nope/evals/online", headers=judged.auth())
    ).status_code == 404


async def test_without_a_judge_model_setting_it_is_a_409(service: Service) -> None:
    await service.import_bot()
    refused = await service.client.put(
        "/api/v1/bots/faq-bot/evals/online",
        json={"percent": 10, "rubric": RUBRIC},
        headers=service.auth(),
    )
    assert refused.status_code == 409 and "STUDIO_JUDGE_MODEL" in refused.json()["error"]
    assert (await service.call("GET", "/api/v1/bots/faq-bot/evals/online"))["enabled"] is False
