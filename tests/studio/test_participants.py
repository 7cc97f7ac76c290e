"""Participant memory operations: naming end users, typing values, seeing, setting and forgetting
what a bot remembers, and forgetting a person everywhere."""

from __future__ import annotations

import pytest

from studio.commands import MemoryForget, MemorySet, MemoryShow
from studio.errors import ForbiddenError, InvalidError, NotFoundError
from studio.grammar import GrammarError, parse
from studio.participants import Participants, end_user, named, typed_value
from studio.roles import Caller
from tests.factories import Service
from tests.people import bot_id, remembered, rows, talked


@pytest.mark.parametrize(
    ("text", "user", "channel", "bare"),
    [
        ("telegram:12345", "telegram:12345", None, False),
        ("  slack:U123 ", "slack:U123", None, False),
        ("12345", "12345", None, True),
        ("sandbox:slack:U123", "slack:U123", "sandbox", False),
        ("api:owner", "api:owner", None, False),
    ],
)
def test_an_end_user_is_named_by_address_or_bare_id(
    text: str, user: str, channel: str | None, bare: bool
) -> None:
    match = end_user(text)
    assert (match.user, match.channel, match.bare) == (user, channel, bare)


@pytest.mark.parametrize("text", ["", "two words", "x" * 201, "bad\x00id", "sandbox:"])
def test_a_malformed_end_user_is_refused_on_one_line(text: str) -> None:
    with pytest.raises(InvalidError) as raised:
        end_user(text)
    assert "\n" not in raised.value.message and "\x00" not in raised.value.message


def test_names_read_back_as_the_same_address() -> None:
    assert named(("telegram", "telegram:1")) == "telegram:1"
    assert named(("sandbox", "slack:U1")) == "sandbox:slack:U1"
    assert end_user(named(("sandbox", "slack:U1"))).channel == "sandbox"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("3.5", 3.5),
        ("-0.25", -0.25),
        ("true", True),
        ("FALSE", False),
        ("pro plan", "pro plan"),
        ('"42"', "42"),
        ("\u201ctrue\u201d", "true"),
        ("02134", "02134"),  # a postcode keeps its zero
        ("1e5", "1e5"),
        ("1" * 30, "1" * 30),  # beyond any sensible integer: text
        ("yes", "yes"),
    ],
)
def test_values_typed_in_chat(text: str, value: object) -> None:
    typed = typed_value(text)
    assert typed == value and type(typed) is type(value)


BOTS = ("faq-bot", "sales-bot")


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("/memory faq-bot telegram:1", MemoryShow(bot="faq-bot", user="telegram:1")),
        ("memory telegram:1", MemoryShow(user="telegram:1")),
        ("/memory it 12345", MemoryShow(user="12345")),
        ("/memory other-bot web:abc", MemoryShow(bot="other-bot", user="web:abc")),
        (
            "/memory faq-bot telegram:1 set plan pro plus",
            MemorySet(bot="faq-bot", user="telegram:1", key="plan", value="pro plus"),
        ),
        ('/memory U1 set zip "02134"', MemorySet(user="U1", key="zip", value='"02134"')),
        ("/memory faq-bot slack:U1 forget", MemoryForget(bot="faq-bot", user="slack:U1")),
        ("/memory slack:U1 forget", MemoryForget(user="slack:U1")),
    ],
)
def test_memory_commands_parse(text: str, command: object) -> None:
    assert parse(text, bots=BOTS) == command


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/memory", "Name the end user"),
        ("/memory faq-bot", "Name the end user"),
        ("/memory faq-bot set plan pro", "Name the end user"),
        ("/memory faq-bot telegram:1 set plan", "Give the KEY and the VALUE"),
        ("/memory faq-bot telegram:1 forget now", "'now'"),
        ("/memory faq-bot telegram:1 wipe", "the memory action 'wipe'"),
        ("/memory faq-bot telegram:1 set " + "k" * 41 + " v", "KEY is too long"),
    ],
)
def test_wrong_memory_arguments_show_the_usage(text: str, says: str) -> None:
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS)
    assert says in raised.value.message
    assert "Usage: /memory BOT USER" in raised.value.message
    assert len(raised.value.message.splitlines()) == 2


async def _setup(service: Service) -> tuple[Participants, Caller]:
    await service.import_bot("faq-bot")
    await service.import_bot("sales-bot")
    ops = service.app.state.core.ops
    return service.app.state.core.studio.participants, await ops.authenticate(service.key)


async def _caller(service: Service, role: str) -> Caller:
    ops = service.app.state.core.ops
    created = await ops.create_api_key(team="local", role=role, name=role)
    return await ops.authenticate(created.key)  # type: ignore[no-any-return]


async def test_memory_per_channel_for_each_way_of_naming(service: Service) -> None:
    people, owner = await _setup(service)
    await remembered(service, "faq-bot", "telegram:42", {"plan": "pro", "age": 31})
    await remembered(service, "faq-bot", "slack:42", {"vip": True})
    await remembered(service, "faq-bot", "telegram:42", {"tried": 1.5}, channel="sandbox")
    await remembered(service, "faq-bot", "telegram:420", {"other": "person"})
    await remembered(service, "sales-bot", "telegram:42", {"other": "bot"})

    view = await people.memory(owner, "faq-bot", "telegram:42")
    assert [(m.channel, m.user, m.values) for m in view.memory] == [
        ("sandbox", "telegram:42", {"tried": 1.5}),
        ("telegram", "telegram:42", {"plan": "pro", "age": 31}),
    ]
    bare = await people.memory(owner, "faq-bot", "42")
    assert [(m.channel, m.user) for m in bare.memory] == [
        ("sandbox", "telegram:42"),
        ("slack", "slack:42"),
        ("telegram", "telegram:42"),
    ]
    assert bare.memory[1].values == {"vip": True}
    sandbox = await people.memory(owner, "faq-bot", "sandbox:telegram:42")
    assert [m.channel for m in sandbox.memory] == ["sandbox"]


async def test_an_end_user_is_known_by_talking_and_ids_match_exactly(service: Service) -> None:
    people, owner = await _setup(service)
    await talked(service, "faq-bot", "slack:U123")
    assert (await people.memory(owner, "faq-bot", "slack:U123")).memory == []
    assert (await people.memory(owner, "faq-bot", "U123")).memory == []
    for user in ("u123", "slack:u123", "U12", "123", "telegram:U123"):  # SQLite's LIKE is loose
        with pytest.raises(NotFoundError) as raised:
            await people.memory(owner, "faq-bot", user)
        assert raised.value.message == f"No end user {user} has talked to faq-bot."
    with pytest.raises(NotFoundError, match="has talked to sales-bot"):
        await people.memory(owner, "sales-bot", "slack:U123")


async def test_set_types_checks_and_audits_without_the_value(service: Service) -> None:
    people, owner = await _setup(service)
    await talked(service, "faq-bot", "telegram:7")
    saved = await people.set_memory(owner, "faq-bot", "telegram:7", "plan", "pro")
    assert (saved.channel, saved.user, saved.values) == ("telegram", "telegram:7", {"plan": "pro"})
    saved = await people.set_memory(owner, "faq-bot", "7", "seats", 3)  # one place: it is meant
    assert saved.values == {"plan": "pro", "seats": 3}

    before = await rows(service)
    for key, value, says in [
        ("Plan", "x", "'Plan' is not a memory key"),
        ("plan", "x" * 1001, "too long"),
        ("plan", ["a"], "must be text, a number or true/false"),
        ("plan", float("nan"), "finite"),
        ("plan", "a\x00b", "NUL"),
    ]:
        with pytest.raises(InvalidError, match=says):
            await people.set_memory(owner, "faq-bot", "telegram:7", key, value)
    assert await rows(service) == before

    audit = await service.call("GET", "/api/v1/audit")
    sets = [e for e in audit if e["action"] == "memory.set"]
    assert [e["after"] for e in sets] == [
        {"user": "telegram:7", "channel": "telegram", "key": "seats"},
        {"user": "telegram:7", "channel": "telegram", "key": "plan"},
    ]
    assert all(e["target"] == "faq-bot" and "pro" not in str(e) for e in sets)


async def test_set_needs_one_place(service: Service) -> None:
    people, owner = await _setup(service)
    await talked(service, "faq-bot", "telegram:9")
    await talked(service, "faq-bot", "slack:9")
    await talked(service, "faq-bot", "telegram:9", channel="sandbox")
    with pytest.raises(InvalidError) as raised:
        await people.set_memory(owner, "faq-bot", "9", "plan", "pro")
    assert raised.value.message == (
        "9 talks to faq-bot from several places: say which "
        "(sandbox:telegram:9, slack:9, telegram:9)"
    )
    saved = await people.set_memory(owner, "faq-bot", "sandbox:telegram:9", "plan", "trial")
    assert (saved.channel, saved.user) == ("sandbox", "telegram:9")
    saved = await people.set_memory(owner, "faq-bot", "telegram:9", "plan", "pro")
    assert (saved.channel, saved.user) == ("telegram", "telegram:9")
    with pytest.raises(NotFoundError):
        await people.set_memory(owner, "faq-bot", "telegram:10", "plan", "pro")


async def test_at_most_so_many_values_per_person(service: Service) -> None:
    people, owner = await _setup(service)
    await remembered(service, "faq-bot", "web:abc", {f"k{n}": n for n in range(100)})
    with pytest.raises(InvalidError, match="at most 100 values"):
        await people.set_memory(owner, "faq-bot", "web:abc", "one_more", 1)
    saved = await people.set_memory(owner, "faq-bot", "web:abc", "k5", "changed")
    assert saved.values["k5"] == "changed" and len(saved.values) == 100


async def test_roles_and_other_teams(service: Service) -> None:
    people, owner = await _setup(service)
    await remembered(service, "faq-bot", "telegram:1", {"plan": "pro"})
    viewer = await _caller(service, "viewer")
    editor = await _caller(service, "editor")
    with pytest.raises(ForbiddenError, match="needs the editor role; you are a viewer"):
        await people.memory(viewer, "faq-bot", "telegram:1")
    with pytest.raises(ForbiddenError):
        await people.set_memory(viewer, "faq-bot", "telegram:1", "plan", "free")
    with pytest.raises(ForbiddenError):
        await people.forget_memory(viewer, "faq-bot", "telegram:1")
    with pytest.raises(ForbiddenError, match="Forgetting a person needs the admin role"):
        await people.forget_participant(editor, "faq-bot", "telegram:1")
    assert (await people.memory(editor, "faq-bot", "telegram:1")).memory[0].values == {
        "plan": "pro"
    }

    other = await service.app.state.core.ops.create_team("other")
    stranger = await service.app.state.core.ops.authenticate(other.key)
    for call in (
        people.memory(stranger, "faq-bot", "telegram:1"),
        people.set_memory(stranger, "faq-bot", "telegram:1", "plan", "free"),
        people.forget_memory(stranger, "faq-bot", "telegram:1"),
        people.forget_participant(stranger, "faq-bot", "telegram:1"),
    ):
        with pytest.raises(NotFoundError, match="No bot named 'faq-bot'"):
            await call
    assert (await people.memory(owner, "faq-bot", "telegram:1")).memory[0].values == {"plan": "pro"}


async def test_forget_memory_keeps_the_messages(service: Service) -> None:
    people, owner = await _setup(service)
    await talked(service, "faq-bot", "telegram:5")
    await remembered(service, "faq-bot", "telegram:5", {"plan": "pro", "age": 3})
    await remembered(service, "faq-bot", "telegram:6", {"plan": "free"})
    before = await rows(service)

    forgotten = await people.forget_memory(owner, "faq-bot", "telegram:5")
    assert [m.values for m in forgotten.memory] == [{"plan": "pro", "age": 3}]
    after = await rows(service)
    assert after["conversations"] == before["conversations"]
    assert after["messages"] == before["messages"]
    assert [r[2] for r in after["memory"]] == ["telegram:6"]
    assert (await people.memory(owner, "faq-bot", "telegram:5")).memory == []  # still known
    again = await people.forget_memory(owner, "faq-bot", "telegram:5")
    assert again.memory == []
    audit = await service.call("GET", "/api/v1/audit")
    assert [e["before"] for e in audit if e["action"] == "memory.forget"] == [
        {"user": "telegram:5", "keys": 2}
    ]


async def test_forget_a_person_everywhere_for_one_bot(service: Service) -> None:
    people, owner = await _setup(service)
    faq, sales = await bot_id(service, "faq-bot"), await bot_id(service, "sales-bot")
    await talked(service, "faq-bot", "telegram:8", texts=("a", "b", "c", "d"))
    await talked(service, "faq-bot", "telegram:8", texts=("e", "f"))
    await talked(service, "faq-bot", "telegram:8", channel="sandbox")
    await remembered(service, "faq-bot", "telegram:8", {"email": "a@b.c"})
    await talked(service, "faq-bot", "slack:8")  # another person with the same digits
    await talked(service, "sales-bot", "telegram:8")  # another bot
    await remembered(service, "sales-bot", "telegram:8", {"email": "a@b.c"})

    forgotten = await people.forget_participant(owner, "faq-bot", "telegram:8")
    assert forgotten.model_dump() == {
        "bot": "faq-bot",
        "user": "telegram:8",
        "memory": 1,
        "conversations": 3,
        "messages": 8,
    }
    left = await rows(service)
    assert sorted((b, c, u) for _, b, c, u in left["conversations"]) == [
        (faq, "slack", "slack:8"),
        (sales, "telegram", "telegram:8"),
    ]
    assert sum(count for _, count in left["messages"]) == 4
    assert [(b, u) for b, _, u, _ in left["memory"]] == [(sales, "telegram:8")]
    with pytest.raises(NotFoundError):
        await people.forget_participant(owner, "faq-bot", "telegram:8")

    audit = await service.call("GET", "/api/v1/audit")
    event = next(e for e in audit if e["action"] == "participant.forget")
    assert event["target"] == "faq-bot" and event["after"] is None
    assert event["before"] == {"user": "telegram:8", "memory": 1, "conversations": 3, "messages": 8}
