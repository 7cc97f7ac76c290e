"""The container files say what the README says: the image installs from the lock with the same
`make install` as a developer, runs `serve` as a non-root user and checks `/healthz`; compose
runs it on PostgreSQL and a Qdrant server. (Docker cannot run here: `make lint` runs hadolint.)"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def test_the_image_installs_from_the_lock_and_serves_as_a_user() -> None:
    steps = _instructions()
    runs = " ".join(rest for word, rest in steps if word == "RUN")
    assert "make install" in runs  # the Makefile's `uv sync --frozen` from uv.lock
    [user] = [rest for word, rest in steps if word == "USER"]
    assert not user.startswith(("0", "root"))
    [health] = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert "/healthz" in health
    [command] = [rest for word, rest in steps if word == "CMD"]
    assert '"serve"' in command and '"0.0.0.0"' in command


def test_the_build_context_leaves_out_local_environments_and_secrets() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", ".env", "data", ".git"} <= set(ignored)


def test_compose_runs_the_image_on_postgres_and_qdrant() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"postgres", "qdrant", "studio"}
    studio = services["studio"]
    assert studio["build"] == "."
    env = studio["environment"]
    assert env["STUDIO_DATABASE_URL"].startswith("postgresql+asyncpg://studio:")
    assert env["STUDIO_DATABASE_URL"].endswith("@postgres:5432/studio")
    assert env["STUDIO_QDRANT_URL"] == "http://qdrant:6333"
    assert "STUDIO_SECRET_KEY" in env  # required with a server database
    assert studio["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "studio:/app/data" in studio["volumes"]
