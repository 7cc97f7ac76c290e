"""`GET /` serves the web console: a static page that asks for a team key and holds no secret."""

from __future__ import annotations

import re

from tests.factories import Service


async def test_the_root_serves_the_console_with_its_key_form(service: Service) -> None:
    response = await service.client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<form id="key-form"' in page
    assert 'id="key" type="password"' in page
    assert "/api/v1/studio/messages" in page
    assert "forget key" in page


async def test_the_console_holds_no_secret_and_loads_nothing_from_elsewhere(
    service: Service,
) -> None:
    response = await service.client.get("/")

    page = response.text
    assert service.key not in page
    assert "Bearer " + service.key not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external resources
    assert "innerHTML" not in page  # server text becomes DOM nodes, never markup


async def test_the_console_runs_only_its_own_script_and_cannot_be_framed(service: Service) -> None:
    response = await service.client.get("/")

    policy = response.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in policy
    assert "connect-src 'self'" in policy
