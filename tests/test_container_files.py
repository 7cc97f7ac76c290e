"""The container files say what the README says: the image installs from the lock with the same
`make install` as a developer, runs `serve` as a non-root user and checks `/healthz`; compose
runs it on PostgreSQL and a Qdrant server. (Docker cannot run here: `make lint` runs hadolint.)"""

from __future__ import annotations

import re
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


def test_compose_runs_two_workers_on_postgres_and_qdrant_behind_the_proxy() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    workers = sorted(name for name in services if name.startswith("worker-"))
    assert workers == ["worker-1", "worker-2"]
    assert set(services) == {"postgres", "qdrant", "proxy", *workers}
    volumes = set()
    for name in workers:
        worker = services[name]
        assert worker["build"] == "."
        env = worker["environment"]
        assert env["STUDIO_DATABASE_URL"].startswith("postgresql+asyncpg://studio:")
        assert env["STUDIO_DATABASE_URL"].endswith("@postgres:5432/studio")
        assert env["STUDIO_QDRANT_URL"] == "http://qdrant:6333"
        assert "STUDIO_SECRET_KEY" in env  # the same on every worker: required
        assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "ports" not in worker  # reached through the proxy only
        volumes.update(worker["volumes"])
    assert len(volumes) == len(workers)  # a data folder each
    proxy = services["proxy"]
    assert proxy["ports"] == ["8000:8000"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    assert upstreams.group(1).split() == [f"{name}:8000" for name in workers]
    assert "health_uri /readyz" in caddyfile
