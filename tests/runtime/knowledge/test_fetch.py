"""Fetching URLs: a real local HTTP server for the HTTP behaviour; a fake resolver and an httpx
mock transport for public hosts, since tests may only reach 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from runtime.knowledge.extract import KnowledgeInputError
from runtime.knowledge.fetch import fetch_url

PAGE = b"""<html><head><title>Acme</title></head><body>
<h1>Refund policy</h1><p>Refunds are issued within 14 days.</p></body></html>"""


@dataclass
class Site:
    """A local web site; `hits` lists the paths it was asked for."""

    url: str
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    release = asyncio.Event()
    hits: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        hits.append(request.path)
        response: web.StreamResponse = await handler(request)
        return response

    async def page(_: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"b" * 5000, content_type="text/plain")

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"a" * 512)
        return response

    async def served(request: web.Request) -> web.Response:
        content_type, body = {
            "notes.txt": ("text/html", b"<h2>Hours</h2><p>9 to 5</p>"),
            "guide.md": ("application/octet-stream", b"# Hours\n9 to 5"),
        }[request.match_info["file"]]
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def bad_redirect(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "http://127.0.0.1:abc/"})

    def redirect(to: str) -> Any:
        async def handler(_: web.Request) -> web.Response:
            raise web.HTTPFound(to)

        return handler

    app = web.Application(middlewares=[record])
    app.router.add_get("/refund-policy", page)
    app.router.add_get("/old-policy", redirect("/refund-policy"))
    app.router.add_get("/loop", redirect("/loop"))
    app.router.add_get("/to-ftp", redirect("ftp://127.0.0.1/policy"))
    app.router.add_get("/bad-redirect", bad_redirect)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_get("/streamed", streamed)
    app.router.add_get("/files/{file}", served)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    yield Site(url=f"http://127.0.0.1:{port}", hits=hits)
    release.set()
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


async def refusal(url: str, client: httpx.AsyncClient, **options: Any) -> str:
    with pytest.raises(KnowledgeInputError) as caught:
        await fetch_url(url, client=client, **options)
    return str(caught.value)


async def test_a_page_is_fetched_when_private_addresses_are_allowed(
    site: Site, client: httpx.AsyncClient
) -> None:
    document = await fetch_url(f"{site.url}/refund-policy", client=client, allow_private=True)
    assert document.name == "127.0.0.1/refund-policy"
    assert document.kind == "html"
    assert [(s.heading, s.text) for s in document.sections] == [
        ("Refund policy", "Refunds are issued within 14 days.")
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_loopback_is_refused_by_default_before_any_request(
    site: Site, client: httpx.AsyncClient, host: str
) -> None:
    url = site.url.replace("127.0.0.1", host) + "/refund-policy"
    message = await refusal(url, client)
    assert message.startswith(f"{url} points to a private address (")
    assert site.hits == []


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.7",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[2002:7f00:1::]",  # 6to4 around 127.0.0.1
        "[2002:a9fe:a9fe::1]",  # 6to4 around the cloud metadata address
        "[fe80::1]",
        "[fd00::1]",
    ],
)
async def test_private_and_special_addresses_are_refused(
    client: httpx.AsyncClient, host: str
) -> None:
    assert "points to a private address" in await refusal(f"http://{host}/latest", client)


async def test_a_redirect_is_followed(site: Site, client: httpx.AsyncClient) -> None:
    document = await fetch_url(f"{site.url}/old-policy", client=client, allow_private=True)
    assert document.name == "127.0.0.1/refund-policy"
    assert site.hits == ["/old-policy", "/refund-policy"]


async def test_redirects_are_limited_to_five(site: Site, client: httpx.AsyncClient) -> None:
    url = f"{site.url}/loop"
    assert await refusal(url, client, allow_private=True) == f"{url} redirects more than 5 times"
    assert site.hits == ["/loop"] * 6


async def test_a_redirect_to_another_scheme_is_refused(
    site: Site, client: httpx.AsyncClient
) -> None:
    message = await refusal(f"{site.url}/to-ftp", client, allow_private=True)
    assert message == "ftp://127.0.0.1/policy: only http and https URLs can be added"


async def test_a_redirect_to_an_invalid_url_is_refused(
    site: Site, client: httpx.AsyncClient
) -> None:
    url = f"{site.url}/bad-redirect"
    message = await refusal(url, client, allow_private=True)
    assert message.startswith(f"{url} could not be reached (Invalid URL in location header")
    assert "\n" not in message


@pytest.mark.parametrize("url", ["ftp://example.com/policy.pdf", "file:///etc/passwd"])
async def test_other_schemes_are_refused(client: httpx.AsyncClient, url: str) -> None:
    assert await refusal(url, client) == f"{url}: only http and https URLs can be added"


async def test_an_error_status_is_reported(site: Site, client: httpx.AsyncClient) -> None:
    url = f"{site.url}/missing"
    assert await refusal(url, client, allow_private=True) == f"{url} answered 404"


async def test_a_slow_server_times_out(site: Site, client: httpx.AsyncClient) -> None:
    url = f"{site.url}/slow"
    message = await refusal(url, client, allow_private=True, timeout_s=0.3)
    assert message == f"{url} timed out after 0.3 s"


async def test_a_declared_length_over_the_limit_is_refused(
    site: Site, client: httpx.AsyncClient
) -> None:
    url = f"{site.url}/big"
    message = await refusal(url, client, allow_private=True, max_bytes=1024)
    assert message == f"{url} is 4.9 KB; the limit is 1 KB"


async def test_a_streamed_body_over_the_limit_is_cut_off(
    site: Site, client: httpx.AsyncClient
) -> None:
    url = f"{site.url}/streamed"
    message = await refusal(url, client, allow_private=True, max_bytes=1024)
    assert message == f"{url} is over the 1 KB limit"
    document = await fetch_url(url, client=client, allow_private=True, max_bytes=8192)
    assert document.sections[0].text == "a" * 5120


async def test_the_content_type_wins_over_the_extension(
    site: Site, client: httpx.AsyncClient
) -> None:
    html = await fetch_url(f"{site.url}/files/notes.txt", client=client, allow_private=True)
    assert (html.name, html.kind) == ("127.0.0.1/notes.txt", "html")
    assert html.sections[0].heading == "Hours"
    markdown = await fetch_url(f"{site.url}/files/guide.md", client=client, allow_private=True)
    assert (markdown.kind, markdown.sections[0].heading) == ("markdown", "Hours")


async def test_an_unreachable_server_is_one_line(client: httpx.AsyncClient) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/policy"
    message = await refusal(url, client, allow_private=True)
    assert message.startswith(f"{url} could not be reached (")
    assert "\n" not in message


# Public hosts: a fake resolver on the running loop, and an httpx transport standing in for the web.

PUBLIC = "93.184.216.34"


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host name -> addresses, answered by the test loop's getaddrinfo (async: on that loop)."""
    answers: dict[str, list[str]] = {}

    async def getaddrinfo(host: bytes | str, port: int, **_: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[name]]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
def web_requests() -> list[httpx.Request]:
    return []


@pytest.fixture
async def public_client(web_requests: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    def answer(request: httpx.Request) -> httpx.Response:
        web_requests.append(request)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "http://127.0.0.1/admin"})
        return httpx.Response(200, content=PAGE, headers={"Content-Type": "text/html"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        yield http


async def test_a_public_host_is_requested_at_its_checked_address(
    resolver: dict[str, list[str]],
    public_client: httpx.AsyncClient,
    web_requests: list[httpx.Request],
) -> None:
    resolver["docs.example.com"] = [PUBLIC]
    document = await fetch_url("https://docs.example.com/refund-policy", client=public_client)
    assert document.name == "docs.example.com/refund-policy"
    [sent] = web_requests
    assert str(sent.url) == f"https://{PUBLIC}/refund-policy"
    assert sent.headers["host"] == "docs.example.com"
    assert sent.extensions["sni_hostname"] == "docs.example.com"


async def test_a_host_with_any_private_address_is_refused(
    resolver: dict[str, list[str]],
    public_client: httpx.AsyncClient,
    web_requests: list[httpx.Request],
) -> None:
    resolver["mixed.example.com"] = [PUBLIC, "10.1.2.3"]
    message = await refusal("http://mixed.example.com/", public_client)
    assert message.startswith("http://mixed.example.com/ points to a private address (10.1.2.3)")
    assert web_requests == []


async def test_a_public_page_cannot_redirect_to_a_private_address(
    resolver: dict[str, list[str]],
    public_client: httpx.AsyncClient,
    web_requests: list[httpx.Request],
) -> None:
    resolver["docs.example.com"] = [PUBLIC]
    message = await refusal("http://docs.example.com/moved", public_client)
    assert message.startswith("http://127.0.0.1/admin points to a private address (127.0.0.1)")
    assert [str(r.url) for r in web_requests] == [f"http://{PUBLIC}/moved"]


async def test_an_unknown_host_is_reported(
    resolver: dict[str, list[str]], public_client: httpx.AsyncClient
) -> None:
    message = await refusal("https://nowhere.example/faq", public_client)
    assert message == "https://nowhere.example/faq: the host nowhere.example was not found"
