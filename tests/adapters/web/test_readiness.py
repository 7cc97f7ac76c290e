"""`/readyz` asks the database, the migrations and the vector store; `/healthz` asks nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
from sqlalchemy import text

from adapters.web.readiness import check
from runtime.knowledge.store import VectorStore
from storage.database import Database
from tests.factories import Service


async def _probe_until_ready(service: Service) -> httpx.Response:
    """As a load balancer would: the first probe also opens the vector store, which can take
    longer than a check's limit on a loaded machine."""
    for _ in range(5):
        response = await service.client.get("/readyz")
        if response.status_code == 200:
            break
    return response


MIGRATIONS = Path(__file__).parents[3] / "storage" / "migrations" / "versions"
HEAD = sorted(p.name[:4] for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))[-1]


async def test_ready_without_a_key_and_not_in_the_schema(service: Service) -> None:
    response = await _probe_until_ready(service)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": f"ok (revision {HEAD})", "vector_store": "ok"},
        "worker": service.app.state.core.db.worker,
        "role": "leader",  # SQLite: the one process leads
    }
    assert (await service.client.get("/healthz")).json() == {"status": "ok"}
    paths = (await service.client.get("/openapi.json")).json()["paths"]
    assert "/readyz" not in paths and "/healthz" not in paths


async def test_a_database_behind_the_code_is_not_ready(service: Service) -> None:
    assert (await _probe_until_ready(service)).status_code == 200
    db = service.app.state.core.db
    async with db.write_conn() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    response = await service.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["error"] == (
        f"migrations: the database is at revision 0003 but this code expects {HEAD}: restart the "
        "service to migrate (or run the code that migrated it)"
    )
    assert body["checks"]["database"] == "ok" and body["checks"]["vector_store"] == "ok"
    assert body["role"] == "leader"
    assert (await service.client.get("/healthz")).status_code == 200


async def test_an_unreachable_database_and_store_each_say_why(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = Database(f"sqlite+aiosqlite:///{tmp_path}")  # a folder, not a database file
    store = VectorStore(f"http://127.0.0.1:{port}")
    try:
        outcomes = await check(db, store)
    finally:
        await store.close()
        await db.dispose()
    assert {name: ok for name, (ok, _) in outcomes.items()} == {
        "database": False,
        "migrations": False,
        "vector_store": False,
    }
    for _, why in outcomes.values():
        assert "\n" not in why and len(why) <= 300
    assert "unable to open database file" in outcomes["database"][1]
    assert "refused" in outcomes["vector_store"][1].lower()
