"""Shared fixtures: a network guard, databases (SQLite file; PostgreSQL when marked)."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import asyncio
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from storage.database import Database
from storage.migrate import migrate
from studio.settings import Settings
from tests.factories import Service

pytest_plugins = ["tests.fakes.fixtures"]

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address: Any) -> None:
    if isinstance(address, tuple) and address and address[0] not in _LOOPBACK:
        raise ConnectionRefusedError(f"tests may only reach 127.0.0.1, not {address[0]}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    """Any network address but loopback is refused (the sandbox has no network anyway)."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


def skip_unless_ci(needed: str, reason: str) -> NoReturn:
    """Skip a test whose service is missing; under CI=true that is a failure instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs {needed}: {reason}")
    pytest.skip(reason)


def _postgres_available(url: str) -> str | None:
    """None when reachable, else the reason."""
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()

    try:  # in a thread: the caller may already be inside an event loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except Exception as exc:
        return f"PostgreSQL not reachable at {url}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL URL (STUDIO_TEST_POSTGRES_URL); skipped without one, a failure under CI=true."""
    url = os.environ.get("STUDIO_TEST_POSTGRES_URL")
    reason = "STUDIO_TEST_POSTGRES_URL is not set" if not url else _postgres_available(url)
    if reason:
        skip_unless_ci("PostgreSQL for the tests marked postgres", reason)
    assert url is not None
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'studio.db'}"


# Migrated once per session, then copied: a database at the schema's head costs a file copy
# (SQLite, ~1 ms against ~0.15 s to migrate) or `CREATE DATABASE … TEMPLATE` (PostgreSQL, ~0.3 s
# against ~1 s). `tests/storage/test_migrate.py` migrates fresh databases itself.
_sqlite_template: Path | None = None
_postgres_templates: dict[str, str] = {}  # server URL -> its migrated template database's URL
_SQLITE_PREFIX = "sqlite+aiosqlite:///"


def _unseeded(url: str) -> Path | None:
    """The SQLite file of `url` when none is there yet and its folder exists (else None: the
    file is the test's own, or the service makes the folder and migrates)."""
    if not url.startswith(_SQLITE_PREFIX):
        return None
    path = Path(url.removeprefix(_SQLITE_PREFIX))
    return path if not path.exists() and path.parent.is_dir() else None


async def seed_sqlite(url: str) -> None:
    """Put a migrated database at `url`'s file where `_unseeded` finds none."""
    global _sqlite_template
    path = _unseeded(url)
    if path is None:
        return
    if _sqlite_template is None:
        template = Path(tempfile.mkdtemp(prefix="studio-template-")) / "studio.db"
        db = Database(f"{_SQLITE_PREFIX}{template}")
        await migrate(db)
        await db.dispose()
        _sqlite_template = template
    shutil.copyfile(_sqlite_template, path)


async def migrated_postgres_database(url: str) -> str:
    """A new database on the server at `url`, at the schema's head (a copy of a template
    migrated once per session, dropped at its end)."""
    template = _postgres_templates.get(url)
    if template is None:
        template = await fresh_postgres_database(url)
        db = Database(template)
        await migrate(db)
        await db.dispose()
        _postgres_templates[url] = template
    return await fresh_postgres_database(url, template=template.rsplit("/", 1)[1])


@pytest.fixture(autouse=True, scope="session")
def _drop_templates() -> Iterator[None]:
    yield
    if _sqlite_template is not None:
        shutil.rmtree(_sqlite_template.parent, ignore_errors=True)
    for server, template in _postgres_templates.items():
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, drop_postgres_database(server, template)).result()


async def fresh_postgres_database(url: str, *, template: str | None = None) -> str:
    """A new schema-isolated database for one test: a throwaway database on the server (empty,
    or a copy of the database `template`)."""
    import asyncpg

    name = f"studio_test_{uuid.uuid4().hex[:12]}"
    copied = f' TEMPLATE "{template}"' if template is not None else ""
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"{copied}')
    finally:
        await admin.close()
    return url.rsplit("/", 1)[0] + "/" + name


async def drop_postgres_database(url: str, database_url: str) -> None:
    import asyncpg

    name = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def a_database(
    request: pytest.FixtureRequest, tmp_path: Path, *, migrated: bool = False
) -> AsyncIterator[Database]:
    """A database of the kind the test is parametrized with (`request.param`), empty or
    `migrated`: a SQLite file, or a throwaway PostgreSQL database (dropped after)."""
    if request.param == "sqlite":
        url = f"{_SQLITE_PREFIX}{tmp_path / 'studio.db'}"
        if migrated:
            await seed_sqlite(url)
        db = Database(url)
        yield db
        await db.dispose()
        return
    server = request.getfixturevalue("postgres_url")
    make = migrated_postgres_database if migrated else fresh_postgres_database
    url = await make(server)
    db = Database(url)
    yield db
    await db.dispose()
    await drop_postgres_database(server, url)


BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH_DATABASES)
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database: a SQLite file, and the same test on PostgreSQL when available."""
    async with a_database(request, tmp_path, migrated=True) as db:
        yield db


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    """A migrated SQLite database in a temporary file."""
    await seed_sqlite(sqlite_url)
    database = Database(sqlite_url)
    yield database
    await database.dispose()


def service_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a service in `tmp_path`, ignoring any `.env` of the developer."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'studio.db'}",
        "data_dir": tmp_path / "data",
        "web_rate_per_session": 10_000,
        "web_rate_per_address": 10_000,
        "qdrant_url": ":memory:",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Service]:
    """The whole app with its lifespan entered, and a client that speaks to it over ASGI."""
    import httpx

    from main import build_app

    await seed_sqlite(settings.database_url)
    app = build_app(settings)
    before = asyncio.all_tasks()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://studio.test") as client:
            key = (settings.data_dir / "local.key").read_text().strip()
            yield Service(app=app, client=client, key=key, settings=settings)
    # Shutdown leaves nothing running: a task that outlives the service's loop hangs its close.
    started = asyncio.all_tasks() - before - {asyncio.current_task()}
    if started:
        await asyncio.wait(started, timeout=2)
    left = [task for task in started if not task.done()]
    assert not left, f"tasks still running after the service stopped: {left}"


@asynccontextmanager
async def serving_app(settings: Settings) -> AsyncIterator[str]:
    """The app under uvicorn on a free 127.0.0.1 port in this event loop (as `main.py serve`
    runs it), for clients that need a real socket: its base URL. On the way out it stops, and
    nothing it started is left running."""
    import uvicorn

    from main import build_app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        build_app(settings),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,  # never wait on a connection a test left open
    )
    server = uvicorn.Server(config)
    before = asyncio.all_tasks()
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        assert not serving.done(), "the service did not start"
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    await serving
    started = asyncio.all_tasks() - before - {asyncio.current_task()}
    if started:
        await asyncio.wait(started, timeout=2)
    assert not [task for task in started if not task.done()], "tasks outlived the service"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """A fresh service on a temporary SQLite file with the offline model."""
    async with running_service(service_settings(tmp_path)) as running:
        yield running
