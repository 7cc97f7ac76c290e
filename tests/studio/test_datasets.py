"""`/dataset` (`studio.datasets`): datasets made of real conversations (driven through the web
chat API against the fake LLM), of tests, of CSV files and row by row; rows' expectations and
the evaluators that score them; roles, other teams, and refusals that change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import col, select

from builders.dataset import DatasetRow, Evaluator, HistoryMessage
from runtime.channel import SendError
from runtime.messages import FileRef
from storage.tables import AuditEvent, Dataset, DatasetSnapshot, Message
from studio.commands import (
    Command,
    DatasetAdd,
    DatasetEvaluate,
    DatasetExpect,
    DatasetFromLast,
    DatasetFromTests,
    DatasetList,
    DatasetRemove,
    DatasetShow,
)
from studio.datasets import DatasetFeature
from studio.errors import OperationError
from studio.roles import Caller
from tests.adapters.slack.test_slack_flow import dm, post, posted, slack_settings, text_of
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import event_body, message_event

FAKE = "openai/fake-model"  # the fake LLM answers "echo: <the user's message>"


@pytest.fixture
async def served(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Service]:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        yield service


def _feature(service: Service) -> DatasetFeature:
    return service.app.state.core.studio.datasets  # type: ignore[no-any-return]


async def _caller(service: Service, key: str | None = None) -> Caller:
    return await service.app.state.core.ops.authenticate(key or service.key)  # type: ignore[no-any-return]


async def _key(service: Service, role: str, team: str = "local") -> str:
    ops = service.app.state.core.ops
    return str((await ops.create_api_key(team=team, role=role, name=role)).key)


async def _say(service: Service, command: Command, *, key: str | None = None) -> str:
    """What the Studio answers `command` about faq-bot (a refusal is its one line)."""
    try:
        answer = await _feature(service).run(await _caller(service, key), "faq-bot", command)
    except OperationError as exc:
        assert "\n" not in exc.message
        return exc.message
    return answer.text


async def _talk(service: Service, deployment: str, *texts: str) -> str:
    """One end user's conversation on the web chat; its session."""
    session: str | None = None
    for text in texts:
        response = await service.chat(deployment, text, session)
        assert response.status_code == 200, response.text
        session = response.json()["session"]
    assert session is not None
    return session


async def _stored(service: Service) -> dict[str, Any]:
    """Every dataset (name -> content), snapshot count and dataset audit action."""
    async with service.app.state.core.db.read() as session:
        datasets = (await session.exec(select(Dataset).order_by(col(Dataset.name)))).all()
        snapshots = (await session.exec(select(DatasetSnapshot))).all()
        events = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
    return {
        "datasets": {d.name: d.content for d in datasets},
        "snapshots": len(snapshots),
        "audit": [e.action for e in events if e.action.startswith("dataset.")],
    }


async def _answers(service: Service) -> list[tuple[int, str]]:
    """(id, text) of the stored answers, oldest first."""
    async with service.app.state.core.db.read() as session:
        query = select(Message).where(Message.role == "assistant").order_by(col(Message.id))
        return [(m.id or 0, m.text) for m in (await session.exec(query)).all()]


async def test_production_s_last_turns_become_rows_with_their_context(served: Service) -> None:
    deployment = await served.live_web_bot(model=FAKE, history=1)
    await _talk(served, deployment, "hi", "how do refunds work?", "thanks!")
    await _talk(served, deployment, "hello there")
    tried = await served.reply("/try faq-bot a sandbox question")  # a member's: not production's
    assert "echo: a sandbox question" in tried

    said = await _say(served, DatasetFromLast(count=3))
    assert said.startswith(
        "Made *recent* of *faq-bot*: 3 rows from production's last answered turns, each "
        "with the answer given then and up to 2 messages before it."
    )
    assert "Before /eval can score it, 3 rows need an expectation or evaluator" in said
    view = await _feature(served).view(await _caller(served), "faq-bot", "recent")
    rows = view.content.rows
    assert [row.turns for row in rows] == [["how do refunds work?"], ["thanks!"], ["hello there"]]
    assert [row.reference for row in rows] == [
        "echo: how do refunds work?",
        "echo: thanks!",
        "echo: hello there",
    ]
    assert rows[0].history == [
        HistoryMessage(role="user", text="hi"),
        HistoryMessage(role="assistant", text="echo: hi"),
    ]
    assert rows[1].history == [  # the bot's window: one exchange
        HistoryMessage(role="user", text="how do refunds work?"),
        HistoryMessage(role="assistant", text="echo: how do refunds work?"),
    ]
    assert rows[2].history == []
    assert rows[0].source == rows[1].source != rows[2].source
    assert rows[0].source.startswith("conversation ")
    assert (view.source, view.updated_by) == ("production's last 3 turns", "api:owner")

    fewer = await _say(served, DatasetFromLast(count=50, dataset="all"))
    assert "4 rows from production's last answered turns (only 4 were there)" in fewer
    assert (await _stored(served))["audit"] == ["dataset.from_last", "dataset.from_last"]


async def test_turns_are_masked_when_production_s_pii_guard_is_on(served: Service) -> None:
    deployment = await served.live_web_bot(model=FAKE)
    said = "mail me at ann@example.com or call +44 20 7946 0958"
    await _talk(served, deployment, said, "and my card is 4111 1111 1111 1111")
    assert "masked" not in await _say(served, DatasetFromLast(count=5, dataset="clear"))
    clear = await _feature(served).view(await _caller(served), "faq-bot", "clear")
    assert clear.content.rows[0].turns == [said]  # the guard is off: kept as said

    await served.call("PATCH", "/api/v1/bots/faq-bot", json={"guardrails": {"pii": True}})
    await _say(served, DatasetFromLast(count=5, dataset="clear"))  # production still unguarded
    again = await _feature(served).view(await _caller(served), "faq-bot", "clear")
    assert again.content_hash == clear.content_hash
    for env in ("staging", "production"):
        await served.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
    await _talk(served, deployment, "I'm bob@example.org")  # masked by the live turn itself

    answer = await _say(served, DatasetFromLast(count=5, dataset="masked"))
    assert "3 rows" in answer
    assert "Emails, card and phone numbers are masked, as production's PII guard says." in answer
    rows = (await _feature(served).view(await _caller(served), "faq-bot", "masked")).content.rows
    masked = "mail me at [email] or call [phone]"
    assert rows[0].turns == [masked] and rows[0].reference == f"echo: {masked}"
    assert rows[1].turns == ["and my card is [card]"]
    assert rows[1].history == [
        HistoryMessage(role="user", text=masked),
        HistoryMessage(role="assistant", text=f"echo: {masked}"),
    ]
    assert rows[2].turns == ["I'm [email]"]
    dumped = str((await _stored(served))["datasets"]["masked"])
    assert "example" not in dumped and "4111" not in dumped and "7946" not in dumped


async def test_no_production_or_no_turns_is_refused(served: Service) -> None:
    await served.import_bot(model=FAKE)
    said = await _say(served, DatasetFromLast(count=5))
    assert said.startswith("faq-bot has no production version yet, so no real conversations")
    for env in ("staging", "production"):
        await served.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
    said = await _say(served, DatasetFromLast(count=5))
    assert said.startswith("faq-bot has answered no one in production yet")
    assert await _stored(served) == {"datasets": {}, "snapshots": 0, "audit": []}


async def test_the_draft_s_tests_become_a_dataset(served: Service) -> None:
    await served.import_bot(model=FAKE)
    assert "faq-bot's draft has no tests" in await _say(served, DatasetFromTests())
    tests = [
        {"turns": ["hi"], "expect": {"kind": "contains", "value": "hi"}},
        {"turns": ["a", "b"], "expect": {"kind": "regex", "value": "^echo"}, "step": "llm"},
    ]
    await served.call("PATCH", "/api/v1/bots/faq-bot", json={"tests": tests})
    said = await _say(served, DatasetFromTests())
    assert said.startswith("Made *tests* of *faq-bot*: 2 rows, one per test case")
    content = (await _feature(served).view(await _caller(served), "faq-bot", "tests")).content
    assert content.rows[1] == DatasetRow(
        id=2,
        turns=["a", "b"],
        expected="^echo",
        evaluators=[Evaluator(kind="regex"), Evaluator(kind="step", value="llm")],
        source="test 2",
    )
    assert content.unscorable() == []
    await _say(served, DatasetEvaluate(dataset="tests", kind="latency", max_ms=2000))
    again = await _say(served, DatasetFromTests())
    assert "It replaced the 2 rows it had; its evaluator stays." in again


async def test_rows_expectations_and_evaluators_by_hand(served: Service) -> None:
    await served.import_bot(model=FAKE)
    made = await _say(served, DatasetAdd(input="refunds?", kind="contains", value="30 days"))
    assert made == (
        'Made *main* of *faq-bot*: row 1 "refunds?" → contains "30 days" (1 row in all).'
    )
    added = await _say(
        served, DatasetAdd(input="hours?", kind="regex", value=r"\d+ ?(am|pm)", dataset="main")
    )
    assert added.startswith('Added to *main* of *faq-bot*: row 2 "hours?" → regex')
    bad = await _say(served, DatasetAdd(input="x", kind="regex", value="(", dataset="main"))
    assert bad.startswith("row 3's expectation is not a valid regular expression")
    assert "nothing was changed" in bad

    # the dataset's own evaluators: one of each kind; off removes it
    said = await _say(served, DatasetEvaluate(dataset="main", kind="judge", value="be polite"))
    assert said == '*main* of *faq-bot*: every row is now scored by judge "be polite".'
    said = await _say(served, DatasetEvaluate(dataset="main", kind="judge"))
    assert 'judge (each row\'s expectation) (in place of judge "be polite")' in said
    said = await _say(served, DatasetEvaluate(dataset="main", kind="latency", max_ms=1500))
    assert "latency ≤ 1,500 ms" in said
    said = await _say(
        served,
        DatasetEvaluate(
            dataset="main", kind="simulated", persona="an angry customer", value="calm", turns=3
        ),
    )
    assert (
        'a simulated user "an angry customer" for 3 turns, the conversation graded by "calm"'
        in (said)
    )
    assert "needs max_usd" in await _say(served, DatasetEvaluate(dataset="main", kind="cost"))
    said = await _say(served, DatasetEvaluate(dataset="main", kind="cost", value="x"))
    assert "needs max_usd" in said
    said = await _say(served, DatasetEvaluate(dataset="main", kind="simulated", value="rubric"))
    assert said.startswith("a simulated-user evaluator needs a persona")
    said = await _say(served, DatasetEvaluate(dataset="main", kind="regex", value="(x"))
    assert said.startswith("not a valid regular expression")
    said = await _say(served, DatasetEvaluate(dataset="main", kind="contains", off=True))
    assert said == "*main* has no contains evaluator (its evaluators: judge, latency, simulated)"
    said = await _say(served, DatasetEvaluate(dataset="main", kind="latency", off=True))
    assert said.startswith("*main* of *faq-bot* is no longer scored by latency. Every row is")

    # expectations: a row's own evaluator, or the dataset's that read it
    said = await _say(served, DatasetExpect(dataset="main", row=2, value="9 am", kind="contains"))
    assert said == 'Row 2 of *main* now expects "9 am", checked by contains and judge.'
    assert "*main* has no row 9 (its rows are 1-2)" in await _say(
        served, DatasetExpect(dataset="main", row=9, value="x")
    )
    said = await _say(served, DatasetExpect(dataset="main", row=1, value="(", kind="regex"))
    assert said.startswith("row 1's expectation is not a valid regular expression")
    content = (await _feature(served).view(await _caller(served), "faq-bot", "main")).content
    assert [(r.expected, r.evaluators) for r in content.rows] == [
        ("30 days", [Evaluator(kind="contains")]),
        ("9 am", [Evaluator(kind="contains")]),
    ]
    assert [e.kind for e in content.evaluators] == ["judge", "simulated"]

    listed = await _say(served, DatasetList())
    assert listed.startswith("*faq-bot*'s datasets:\n• *main*: 2 rows · judge, simulated · rows ")
    shown = await _say(served, DatasetShow(dataset="MAIN"))
    assert shown.splitlines()[2:] == [
        '#1 "refunds?" → "30 days" (contains)',
        "   added by api:owner",
        '#2 "hours?" → "9 am" (contains)',
        "   added by api:owner",
    ]
    assert "faq-bot has no dataset 'golden'; its datasets: main" in await _say(
        served, DatasetShow(dataset="golden")
    )
    with pytest.raises(ValidationError, match="dataset"):  # the grammar and tools refuse it
        DatasetAdd(input="x", kind="contains", value="y", dataset="Not a name!")
    removed = await _say(served, DatasetRemove(dataset="main"))
    assert (
        removed == "Removed the dataset *main* of *faq-bot* (2 rows); evaluation runs on it stay."
    )
    assert "faq-bot has no datasets yet" in await _say(served, DatasetRemove(dataset="main"))
    stored = await _stored(served)
    assert stored["datasets"] == {}
    assert stored["audit"] == [
        "dataset.add",
        "dataset.add",
        *["dataset.evaluate"] * 5,
        "dataset.expect",
        "dataset.remove",
    ]


async def test_a_long_dataset_shows_its_first_rows(served: Service) -> None:
    await served.import_bot(model=FAKE)
    csv = "input,expected\n" + "".join(f"question {n},answer {n}\n" for n in range(1, 26))
    await _feature(served).import_csv(
        await _caller(served), "faq-bot", "long", csv.encode(), source="file long.csv"
    )
    lines = (await _say(served, DatasetShow(dataset="long"))).splitlines()
    assert lines[0].startswith("*long* of *faq-bot*: 25 rows · file long.csv · `")
    assert lines[1] == "It has no evaluators of its own: each row is scored by its own."
    assert lines[2:4] == ['#1 "question 1" → "answer 1" (contains)', "   line 2"]
    assert lines[-3] == '#20 "question 20" → "answer 20" (contains)'
    assert lines[-1] == ("…and 5 more rows: GET /api/v1/bots/faq-bot/datasets/long has them all.")


@pytest.mark.parametrize("name", ["production", "draft", "v3", "12", "gate"])
async def test_a_name_eval_reads_as_a_version_is_refused(served: Service, name: str) -> None:
    await served.import_bot(model=FAKE)
    said = await _say(
        served, DatasetAdd(input="hours?", kind="contains", value="9 am", dataset=name)
    )
    assert said == (
        f"'{name}' cannot name a dataset: `/eval` reads it as a version or an action; choose "
        "another name, e.g. golden"
    )
    assert "has no datasets yet" in await _say(served, DatasetList())


async def test_a_csv_file_shared_with_the_studio(served: Service) -> None:
    await served.import_bot(model=FAKE)
    files: dict[str, bytes] = {
        "Golden Set.csv": b"input,expected,evaluator\nrefunds?,30 days,\nhi,^echo,regex\n",
        "again.csv": b"input\nonly one\n",
        "bad.csv": b"q,a\nhello,hi\n",
    }
    fetched: list[tuple[str, int]] = []

    async def fetch(file: FileRef, limit: int) -> bytes:
        fetched.append((file.name, limit))
        if file.name not in files:
            raise SendError("Slack answered 404", permanent=True)
        return files[file.name]

    feature, owner = _feature(served), await _caller(served)

    async def share(name: str, size: int | None = None, caller: Caller = owner) -> str:
        return (
            await feature.import_file(caller, "faq-bot", FileRef(name=name, size=size), fetch)
        ).text

    said = await share("Golden Set.csv")
    assert (
        said
        == "Imported Golden Set.csv as *golden-set* of *faq-bot*: 2 rows, 2 with an expectation."
    )
    assert fetched == [("Golden Set.csv", 1024 * 1024)]
    files["golden-set.csv"] = files["again.csv"]
    said = await share("golden-set.csv")
    assert "1 row, 0 with an expectation. It replaced the 2 rows it had." in said
    assert "Before /eval can score it, 1 row needs an expectation or evaluator" in said
    before = await _stored(served)

    assert await share("bad.csv") == (
        "bad.csv: the CSV needs an input column; it has: q, a; nothing was imported"
    )
    assert await share("gone.csv") == "I could not download gone.csv: Slack answered 404"
    assert (await share("big.csv", size=2 * 1024 * 1024)).startswith(
        "big.csv is 2 MB; a dataset's CSV may be 1 MB. Nothing was imported."
    )
    assert "its name has no letter or digit" in await share("___.csv")
    viewer = await _caller(served, await _key(served, "viewer"))
    assert "Importing a dataset needs the editor role" in await share("bad.csv", caller=viewer)
    assert [name for name, _ in fetched] == [
        "Golden Set.csv",
        "golden-set.csv",
        "bad.csv",
        "gone.csv",
    ]
    assert await _stored(served) == before
    assert before["audit"] == ["dataset.import", "dataset.import"]


async def test_reviewed_answers_are_added_with_their_context(served: Service) -> None:
    deployment = await served.live_web_bot(model=FAKE)
    await _talk(served, deployment, "hi", "where is my order?")
    await _talk(served, deployment, "cancel it")
    other = await served.live_web_bot("second-bot", model=FAKE)
    await _talk(served, other, "not faq-bot's")
    answers = await _answers(served)
    by_text = {text: ident for ident, text in answers}
    order, cancel = by_text["echo: where is my order?"], by_text["echo: cancel it"]
    foreign = by_text["echo: not faq-bot's"]
    feature, owner = _feature(served), await _caller(served)

    said = (await feature.add_turns(owner, "faq-bot", "reviewed", [order, cancel, order])).text
    assert said.startswith(
        "Made *reviewed* of *faq-bot*: 2 rows (1-2) of reviewed answers, each with the "
        "conversation before it; 2 rows in all."
    )
    rows = (await feature.view(owner, "faq-bot", "reviewed")).content.rows
    assert [(r.turns, r.reference, r.source) for r in rows] == [
        (["where is my order?"], "echo: where is my order?", f"review {order}"),
        (["cancel it"], "echo: cancel it", f"review {cancel}"),
    ]
    assert rows[0].history == [
        HistoryMessage(role="user", text="hi"),
        HistoryMessage(role="assistant", text="echo: hi"),
    ]
    before = await _stored(served)
    with pytest.raises(OperationError) as refused:
        await feature.add_turns(owner, "faq-bot", "reviewed", [cancel, foreign, order - 1, 2**70])
    assert refused.value.message == (
        f"faq-bot has no answered turn {foreign}, {order - 1}, {2**70}: nothing was added "
        "(/review faq-bot lists the ids)"
    )
    with pytest.raises(OperationError, match="holds those turns already"):
        await feature.add_turns(owner, "faq-bot", "reviewed", [cancel])
    assert await _stored(served) == before
    hi = by_text["echo: hi"]
    said = (await feature.add_turns(owner, "faq-bot", "reviewed", [hi, cancel])).text
    assert said.startswith("Added to *reviewed* of *faq-bot*: 1 row (3) of reviewed answers")
    assert "(1 was there already)" in said


async def test_roles_and_other_teams(served: Service) -> None:
    await served.import_bot(model=FAKE)
    await _say(served, DatasetAdd(input="hi", kind="contains", value="hello"))
    viewer = await _key(served, "viewer")
    assert "*main*: 1 row" in await _say(served, DatasetList(), key=viewer)
    assert '#1 "hi" → "hello"' in await _say(served, DatasetShow(dataset="main"), key=viewer)
    changes: list[Command] = [
        DatasetFromLast(count=5),
        DatasetFromTests(),
        DatasetAdd(input="x", kind="contains", value="y"),
        DatasetExpect(dataset="main", row=1, value="z"),
        DatasetEvaluate(dataset="main", kind="latency", max_ms=100),
        DatasetEvaluate(dataset="main", kind="latency", off=True),
        DatasetRemove(dataset="main"),
    ]
    for command in changes:
        said = await _say(served, command, key=viewer)
        assert "needs the editor role; you are a viewer" in said, command
    feature = _feature(served)
    viewing = await _caller(served, viewer)
    with pytest.raises(OperationError, match="editor role"):
        await feature.add_turns(viewing, "faq-bot", "main", [1])
    with pytest.raises(OperationError, match="editor role"):
        await feature.import_csv(viewing, "faq-bot", "x", b"input\nhi\n", source="t")

    acme = (await served.app.state.core.ops.create_team("acme")).key
    for command in [DatasetList(), DatasetShow(dataset="main"), *changes]:
        assert await _say(served, command, key=acme) == "No bot named 'faq-bot'.", command
    with pytest.raises(OperationError, match="No bot named 'faq-bot'"):
        await feature.add_turns(await _caller(served, acme), "faq-bot", "main", [1])
    stored = await _stored(served)
    assert stored["audit"] == ["dataset.add"] and stored["snapshots"] == 1


async def test_a_csv_file_shared_in_slack_becomes_a_dataset(
    tmp_path: Path, slack: FakeSlack
) -> None:
    async with running_service(slack_settings(tmp_path, slack)) as studio:
        await dm(studio, slack, "newbot faq-bot")
        golden = slack.add_file(
            "F1",
            b"input,expected\nHow long do refunds take?,5 business days\n",
            name="Golden.csv",
            mimetype="text/csv",
        )
        before = len(slack.calls_to("chat.postMessage"))
        shared = message_event("for faq-bot", subtype="file_share", files=[golden])
        await post(studio, event_body(shared))
        said = text_of((await posted(slack, before + 1))[-1])
        assert "Imported Golden.csv as *golden* of *faq-bot*: 1 row, 1 with an expectation." in said
        wrong = slack.add_file("F2", b"question\nhi\n", name="golden.csv", mimetype="text/csv")
        before = len(slack.calls_to("chat.postMessage"))
        await post(studio, event_body(message_event("", subtype="file_share", files=[wrong])))
        said = text_of((await posted(slack, before + 1))[-1])
        assert "golden.csv: the CSV needs an input column; it has: question" in said
        stored = await _stored(studio)  # the Slack workspace's team's dataset
        assert stored["datasets"]["golden"]["rows"][0]["turns"] == ["How long do refunds take?"]
        assert stored["audit"] == ["dataset.import"]


async def test_rows_added_at_the_same_moment_all_stay(served: Service) -> None:
    await served.import_bot(model=FAKE)
    feature, owner = _feature(served), await _caller(served)
    await asyncio.gather(
        *(
            feature.add_row(owner, "faq-bot", said=f"q{n}", kind="contains", value=f"a{n}")
            for n in range(6)
        )
    )
    rows = (await feature.view(owner, "faq-bot", "main")).content.rows
    assert sorted(row.turns[0] for row in rows) == [f"q{n}" for n in range(6)]
    assert [row.id for row in rows] == [1, 2, 3, 4, 5, 6]


async def test_only_admins_change_or_remove_the_evaluation_gate_s_dataset(
    served: Service,
) -> None:
    tests = [{"turns": ["hi"], "expect": {"kind": "contains", "value": "hi"}}]
    deployment = await served.live_web_bot(model=FAKE, tests=tests)
    await _talk(served, deployment, "where is my order?")
    [(answer, _)] = await _answers(served)
    for name in ("golden", "other"):
        await _say(served, DatasetAdd(input="hi", kind="contains", value="hi", dataset=name))
    assert "golden" in await served.reply("/eval faq-bot gate golden 80%")
    editor_key, admin_key = await _key(served, "editor"), await _key(served, "admin")
    feature, editor = _feature(served), await _caller(served, editor_key)
    before = await _stored(served)

    changing = "*golden* is the evaluation gate's dataset: changing it needs the admin role"
    changes: list[Command] = [
        DatasetFromLast(count=5, dataset="golden"),
        DatasetFromTests(dataset="golden"),
        DatasetAdd(input="x", kind="contains", value="y", dataset="golden"),
        DatasetExpect(dataset="golden", row=1, value="anything"),
        DatasetEvaluate(dataset="golden", kind="latency", max_ms=100),
        DatasetEvaluate(dataset="golden", kind="contains", off=True),
    ]
    for command in changes:
        said = await _say(served, command, key=editor_key)
        assert said.startswith(f"{changing}; you are an editor."), command
    said = await _say(served, DatasetRemove(dataset="golden"), key=editor_key)
    assert said.startswith("*golden* is the evaluation gate's dataset: removing it needs the admin")
    with pytest.raises(OperationError, match=r"^\*golden\* is the evaluation gate's dataset"):
        await feature.import_csv(editor, "faq-bot", "golden", b"input\nhi\n", source="t")
    with pytest.raises(OperationError, match=r"^\*golden\* is the evaluation gate's dataset"):
        await feature.add_turns(editor, "faq-bot", "golden", [answer])

    async def fetch(file: FileRef, limit: int) -> bytes:
        return b"input\nhi\n"

    shared = await feature.import_file(editor, "faq-bot", FileRef(name="Golden.csv"), fetch)
    assert shared.text.startswith(f"Golden.csv: {changing}")
    assert await _stored(served) == before

    assert "*other*" in await _say(
        served, DatasetExpect(dataset="other", row=1, value="h"), key=editor_key
    )
    said = await _say(
        served, DatasetAdd(input="x", kind="step", value="y", dataset="golden"), key=admin_key
    )
    assert said.startswith("Added")
    said = await _say(served, DatasetRemove(dataset="golden"), key=admin_key)
    assert said.startswith("Removed the dataset *golden*")
    said = await _say(
        served, DatasetAdd(input="x", kind="contains", value="y", dataset="golden"), key=editor_key
    )
    assert said.startswith(changing)  # nor make it again while the gate names it
