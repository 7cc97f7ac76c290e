"""Fixtures for the browser tests: Debian's chromium for Playwright, and a real `serve`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import skip_unless_ci

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    missing = None if path else "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[dev]')"
    if missing:
        skip_unless_ci("a browser for the tests marked browser", missing)
    assert path is not None
    return path


@contextmanager
def serving(tmp: Path, **env_vars: str) -> Iterator[str]:
    """`main.py serve` on a free port with its data in `tmp/data` (and `env_vars` set, none of the
    developer's STUDIO_, SLACK_ or OTEL_ settings): its base URL, once `/healthz` answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "SLACK_", "OTEL_"))}
    env |= {"STUDIO_DATA_DIR": str(tmp / "data"), **env_vars}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "serve", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a loaded machine without bytecode: tens of seconds
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "serve did not start"
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`main.py serve` on a free port with an empty data dir: (base URL, owner key)."""
    tmp = tmp_path_factory.mktemp("live")
    with serving(tmp) as base:
        yield base, (tmp / "data" / "local.key").read_text().strip()
