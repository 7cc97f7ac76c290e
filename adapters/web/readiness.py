"""`GET /readyz`: whether this process can serve, for a load balancer or an orchestrator.

`/healthz` says the process is alive; `/readyz` also asks what serving needs: the database
answers, its schema is at the code's migration head, and the vector store answers. 200 with every
check's outcome, or 503 naming each failed check and why (one line each). Either way it says
which worker answered and its role, `leader` or `follower` (`runtime.cluster.leader`: with
several workers on PostgreSQL, one runs the leader-only work). Neither needs a key, and neither
is part of the API's schema.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from adapters.web.deps import services
from runtime.knowledge.store import VectorStore
from storage.database import Database
from storage.migrate import revisions

logger = logging.getLogger(__name__)
router = APIRouter()
CHECK_TIMEOUT_S = 5.0


class NotReadyError(Exception):
    pass


async def _database(db: Database) -> str:
    async with db.read_conn() as conn:
        await conn.execute(text("SELECT 1"))
    return "ok"


async def _migrations(db: Database) -> str:
    current, head = await revisions(db)
    if current != head:
        raise NotReadyError(
            f"the database is at revision {current or 'none'} but this code expects {head}: "
            "restart the service to migrate (or run the code that migrated it)"
        )
    return f"ok (revision {head})"


async def _vector_store(store: VectorStore) -> str:
    await store.collection_count()
    return "ok"


async def _outcome(name: str, check: Awaitable[str]) -> tuple[bool, str]:
    try:
        return True, await asyncio.wait_for(check, CHECK_TIMEOUT_S)
    except TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT_S:g} s"
    except NotReadyError as exc:
        return False, str(exc)
    except Exception as exc:
        logger.warning("readiness check %s failed", name, exc_info=True)
        lines = str(exc).strip().splitlines()
        return False, f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"[:300]


async def check(db: Database, store: VectorStore | None) -> dict[str, tuple[bool, str]]:
    """Each check's outcome: whether it passed, and what it found or why not, in one line."""
    checks: dict[str, Awaitable[str]] = {"database": _database(db), "migrations": _migrations(db)}
    if store is not None:
        checks["vector_store"] = _vector_store(store)
    results = await asyncio.gather(*(_outcome(n, c) for n, c in checks.items()))
    return dict(zip(checks, results, strict=True))


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    svc = await services(request)
    knowledge = svc.runtime.knowledge
    outcomes = await check(svc.ops.db, knowledge.store if knowledge else None)
    checks = {name: why for name, (_, why) in outcomes.items()}
    failed = [f"{name}: {why}" for name, (ok, why) in outcomes.items() if not ok]
    who = {
        "worker": svc.ops.db.worker,
        "role": "leader" if svc.leadership.leader else "follower",
    }
    if not failed:
        return JSONResponse({"status": "ready", "checks": checks, **who})
    return JSONResponse(
        {"status": "not ready", "error": "; ".join(failed), "checks": checks, **who},
        status_code=503,
    )
