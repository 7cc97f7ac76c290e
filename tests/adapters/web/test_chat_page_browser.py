"""The chat page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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

pytestmark = pytest.mark.browser


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


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`main.py serve` on a free port with an empty data dir: (base URL, owner key)."""
    tmp = tmp_path_factory.mktemp("live")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env["STUDIO_DATA_DIR"] = str(tmp / "data")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "serve", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "serve did not start"
            time.sleep(0.05)
        yield base, (tmp / "data" / "local.key").read_text().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _deploy(base: str, key: str) -> str:
    with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}) as api:
        spec = {
            "name": "faq-bot",
            "greeting": "Hi! Ask me about refunds.",
            "fallback": "Not yet. See **docs** at https://example.com",
        }
        for path, body in [
            ("/bots/import", spec),
            ("/bots/faq-bot/promote", {"to": "staging"}),
            ("/bots/faq-bot/promote", {"to": "production"}),
            ("/bots/faq-bot/deployments", {"channel": "web"}),
        ]:
            response = api.post(path, json=body)
            assert response.status_code < 300, response.text
    return str(response.json()["url"])


async def test_a_visitor_chats_and_finds_the_conversation_after_a_reload(
    chromium: str, live_service: tuple[str, str]
) -> None:
    from playwright.async_api import async_playwright

    base, key = live_service
    url = base + _deploy(base, key)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(url)
        await page.wait_for_selector(".msg.bot")
        assert await page.inner_text("header h1") == "faq-bot"
        await page.fill("#text", "How do refunds work? <b>x</b>")
        await page.press("#text", "Enter")
        last = ".msg:nth-child(3)"
        await page.wait_for_function(
            f"document.querySelector('{last}') && "
            f"!document.querySelector('{last}').textContent.startsWith('…')"
        )
        await page.reload()
        await page.wait_for_function("document.querySelectorAll('.msg').length === 3")
        bubbles = [await m.inner_html() for m in await page.query_selector_all(".msg")]
        assert bubbles[0] == "Hi! Ask me about refunds."
        assert bubbles[1] == "How do refunds work? &lt;b&gt;x&lt;/b&gt;"  # escaped, not bold
        assert "<strong>docs</strong>" in bubbles[2]
        assert '<a href="https://example.com"' in bubbles[2]
        await page.click("#reset")
        await page.wait_for_function("document.querySelectorAll('.msg').length === 1")
        await browser.close()
