"""The secret vault: values encrypted at rest, revealed from a per-process cache (no database
round trip for a tool call), which a write through the vault clears at once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from runtime.cipher import Cipher
from runtime.secrets import MAX_SECRET_CHARS, SecretVault, name_problem, value_problem
from runtime.tools.base import SecretSource
from storage.audit import AuditRepository
from storage.database import Database
from storage.teams import TeamRepository

KEY = "a-service-key-for-the-tests-of-the-secret-vault"
VALUE = "sk-live-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def team(db: Database) -> int:
    async with db.write() as session:
        created = await TeamRepository(session).create("acme")
    assert created.id is not None
    return created.id


@contextmanager
def counted(db: Database) -> Iterator[list[str]]:
    """The queries of secrets the async engine runs meanwhile (SQLAlchemy's own event hook)."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "team_secret" in statement:
            statements.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_value_is_stored_encrypted_and_revealed(db: Database, team: int) -> None:
    vault: SecretSource = SecretVault(db, Cipher(KEY))
    assert isinstance(vault, SecretVault)
    assert await vault.reveal(team, "acme-crm") is None
    stored = await vault.store(team, "acme-crm", VALUE, actor="api:owner")
    assert stored.created
    assert await vault.reveal(team, "acme-crm") == VALUE
    async with db.read_conn() as conn:
        sealed = (await conn.execute(text("select ciphertext from team_secret"))).scalar()
    assert isinstance(sealed, bytes) and VALUE.encode() not in sealed
    assert Cipher(KEY).decrypt(sealed) == VALUE


async def test_a_cached_secret_costs_no_database_round_trip(db: Database, team: int) -> None:
    vault = SecretVault(db, Cipher(KEY))
    await vault.store(team, "acme-crm", VALUE, actor="api:owner")
    with counted(db) as statements:
        assert await vault.reveal(team, "acme-crm") == VALUE  # the first call reads
        assert await vault.reveal(team, "nothing") is None  # so does "not set"
        for _ in range(20):
            assert await vault.reveal(team, "acme-crm") == VALUE
            assert await vault.reveal(team, "nothing") is None
    assert len(statements) == 2


async def test_writes_through_the_vault_are_seen_at_once(db: Database, team: int) -> None:
    vault = SecretVault(db, Cipher(KEY))
    assert await vault.reveal(team, "acme-crm") is None  # "not set" is cached
    await vault.store(team, "acme-crm", "first", actor="api:owner")
    assert await vault.reveal(team, "acme-crm") == "first"
    replaced = await vault.store(team, "acme-crm", "second", actor="api:owner")
    assert not replaced.created
    assert await vault.reveal(team, "acme-crm") == "second"
    assert await vault.remove(team, "acme-crm", actor="api:owner")
    assert await vault.reveal(team, "acme-crm") is None
    assert not await vault.remove(team, "acme-crm", actor="api:owner")


async def test_another_workers_change_is_seen_after_the_ttl(db: Database, team: int) -> None:
    clock = Clock()
    here = SecretVault(db, Cipher(KEY), ttl_s=30, clock=clock)
    elsewhere = SecretVault(db, Cipher(KEY))  # another process's vault
    await elsewhere.store(team, "acme-crm", "first", actor="api:owner")
    assert await here.reveal(team, "acme-crm") == "first"
    await elsewhere.store(team, "acme-crm", "second", actor="api:owner")
    clock.now += 29
    assert await here.reveal(team, "acme-crm") == "first"  # the documented limit
    clock.now += 2
    assert await here.reveal(team, "acme-crm") == "second"


async def test_the_cache_is_bounded(db: Database, team: int) -> None:
    vault = SecretVault(db, Cipher(KEY), size=3)
    for n in range(5):
        await vault.reveal(team, f"s{n}")
    with counted(db) as statements:
        await vault.reveal(team, "s4")  # kept
        await vault.reveal(team, "s0")  # pushed out: read again
    assert len(statements) == 1


async def test_the_audit_records_that_it_changed_never_the_value(db: Database, team: int) -> None:
    vault = SecretVault(db, Cipher(KEY))
    await vault.store(team, "acme-crm", VALUE, actor="slack:U1")
    await vault.store(team, "acme-crm", VALUE + "2", actor="slack:U1")
    await vault.remove(team, "acme-crm", actor="slack:U2")
    async with db.read() as session:
        events = await AuditRepository(session).events(team)
    assert {e.target for e in events} == {"secret:acme-crm"}
    seen = [(e.actor, e.action, e.before, e.after) for e in reversed(events)]
    assert seen == [
        ("slack:U1", "secret.set", None, {"name": "acme-crm", "change": "created"}),
        ("slack:U1", "secret.set", None, {"name": "acme-crm", "change": "replaced"}),
        ("slack:U2", "secret.remove", {"name": "acme-crm"}, None),
    ]


async def test_a_value_another_key_sealed_is_not_revealed(
    db: Database, team: int, caplog: pytest.LogCaptureFixture
) -> None:
    await SecretVault(db, Cipher("another key entirely")).store(team, "k", VALUE, actor="x")
    with caplog.at_level(logging.ERROR, logger="runtime.secrets"):
        assert await SecretVault(db, Cipher(KEY)).reveal(team, "k") is None
    assert "cannot be decrypted" in caplog.text and VALUE not in caplog.text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty"),
        ("x" * (MAX_SECRET_CHARS + 1), "too long"),
        ("two\nlines", "visible ASCII"),
        ("carriage\rreturn", "visible ASCII"),
        ("in side", "visible ASCII"),
        ("tab\tinside", "visible ASCII"),
        ("ünïcode", "visible ASCII"),
        ("nul\x00", "visible ASCII"),
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    db: Database, team: int, value: str, problem: str
) -> None:
    assert problem in (value_problem(value) or "")
    vault = SecretVault(db, Cipher(KEY))
    with pytest.raises(ValueError, match=problem):
        await vault.store(team, "k", value, actor="x")
    assert await vault.listed(team) == []


async def test_a_value_is_stored_without_the_spaces_around_it(db: Database, team: int) -> None:
    assert value_problem("x" * MAX_SECRET_CHARS) is None
    assert value_problem(" \t$ecret-!~{}\t\n") is None
    vault = SecretVault(db, Cipher(KEY))
    await vault.store(team, "k", " \t$ecret-!~{}\t\n", actor="x")
    assert await vault.reveal(team, "k") == "$ecret-!~{}"


@pytest.mark.parametrize("name", ["", "Acme", "-x", "a b", "x" * 65, "ünï"])
def test_bad_names_are_refused_without_being_echoed(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None and (not name or name not in problem)
    assert name_problem("acme-crm_2") is None
