"""MCP tools against a fake MCP server built with the SDK, over real HTTP on 127.0.0.1: reading a
server's tools, calling them, and through the tool gateway (secrets sent, masked for the model).

Public hosts are named through a fake resolver on the test's loop (tests may only reach
127.0.0.1); a name is pinned to the address checked for it."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

import runtime.net
from builders.spec import BotSpec, ToolSpec
from runtime.tools import mcp_sdk
from runtime.tools.base import MASK, MAX_RESPONSE_BYTES, ToolSetupError, function_names
from runtime.tools.gateway import ToolGateway
from runtime.tools.mcp import McpExecutor
from tests.fakes.mcp import FakeMcp

PUBLIC = "93.184.216.34"
SECRET = "s3cret-Value-42"


@pytest.fixture
async def executor() -> AsyncIterator[McpExecutor]:
    executor = McpExecutor(allow_private=True)
    yield executor
    await executor.close()


@pytest.fixture
async def weather(executor: McpExecutor, mcp_server: FakeMcp) -> ToolSpec:
    """The fake's tools, read once (the requests that took are forgotten)."""
    tool = await executor.describe(
        name="weather", url=mcp_server.url, wanted=[], auth=None, secret=None
    )
    mcp_server.requests.clear()
    return tool


def closed_port() -> int:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port: int = closed.getsockname()[1]
    return port


async def setup_error(executor: McpExecutor, url: str, *wanted: str) -> str:
    with pytest.raises(ToolSetupError) as caught:
        await executor.describe(name="t", url=url, wanted=list(wanted), auth=None, secret=None)
    message = str(caught.value)
    assert "\n" not in message
    return message


# describe


async def test_all_tools_become_operations(executor: McpExecutor, mcp_server: FakeMcp) -> None:
    tool = await executor.describe(
        name="weather", url=mcp_server.url, wanted=[], auth="acme", secret=None
    )
    assert (tool.kind, tool.name, tool.url, tool.auth) == ("mcp", "weather", mcp_server.url, "acme")
    ops = {op.id: op for op in tool.operations}
    assert len(ops) == 10
    weather = ops["get_weather"]
    assert (weather.function, weather.description, weather.changes) == (
        "get_weather",
        "The weather in a city today.",
        False,
    )
    assert weather.parameters["properties"] == {"city": {"title": "City", "type": "string"}}
    assert weather.parameters["required"] == ["city"]
    assert ops["create_note"].changes  # not marked read-only
    assert ops["notes.search"].function == "notes_search"
    assert mcp_server.calls == []  # reading the tools calls none


async def test_chosen_tools_in_the_order_asked(executor: McpExecutor, mcp_server: FakeMcp) -> None:
    tool = await executor.describe(
        name="notes",
        url=mcp_server.url,
        wanted=["create_note", "notes.search", "create_note"],
        auth=None,
        secret=None,
    )
    assert [(op.function, op.id, op.changes) for op in tool.operations] == [
        ("create_note", "create_note", True),
        ("notes_search", "notes.search", False),
    ]


async def test_an_unknown_tool_is_named_with_what_the_server_offers(
    executor: McpExecutor, mcp_server: FakeMcp
) -> None:
    message = await setup_error(executor, mcp_server.url, "get_weather", "get_wether")
    assert message.startswith(f"{mcp_server.url} has no tool 'get_wether' (it offers: get_weather,")
    assert "create_note" in message


async def test_pages_are_followed_and_stop_once_the_wanted_tools_are_seen(
    executor: McpExecutor, mcp_server: FakeMcp
) -> None:
    mcp_server.page_size = 3
    tool = await executor.describe(name="t", url=mcp_server.url, wanted=[], auth=None, secret=None)
    assert len(tool.operations) == 10
    mcp_server.page_size = 1
    mcp_server.requests.clear()
    tool = await executor.describe(
        name="t", url=mcp_server.url, wanted=["create_note"], auth=None, secret=None
    )
    assert [op.id for op in tool.operations] == ["create_note"]
    listings = [r for r in mcp_server.requests if r.headers.get("mcp-method") == "tools/list"]
    assert len(listings) == 2  # get_weather's page, then create_note's


async def test_too_many_tools_must_be_chosen(
    executor: McpExecutor, mcp_server: FakeMcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mcp_sdk, "MAX_TOOLS", 4)
    message = await setup_error(executor, mcp_server.url)
    assert message.startswith(
        f"{mcp_server.url} offers 10 tools; a tool takes at most 4: name the ones the bot needs ("
    )
    monkeypatch.setattr(mcp_sdk, "MAX_PAGES", 2)
    mcp_server.page_size = 3
    message = await setup_error(executor, mcp_server.url)
    assert message.startswith(f"{mcp_server.url} offers more than 6 tools;")


async def test_a_server_that_is_down(executor: McpExecutor) -> None:
    url = f"http://127.0.0.1:{closed_port()}/mcp"
    message = await setup_error(executor, url)
    assert message.startswith(f"{url} could not be reached (")


@pytest.mark.parametrize("path", ["/page", "/nothing"])
async def test_not_an_mcp_server(executor: McpExecutor, mcp_server: FakeMcp, path: str) -> None:
    url = f"http://127.0.0.1:{mcp_server.port}{path}"
    message = await setup_error(executor, url)
    assert message.startswith(f"{url} is not an MCP server (")


async def test_a_secret_missing_or_refused(executor: McpExecutor, mcp_server: FakeMcp) -> None:
    mcp_server.token = SECRET
    message = await setup_error(executor, mcp_server.url)
    assert message == f"{mcp_server.url} refused access (HTTP 401): it needs a secret (--auth)"
    with pytest.raises(ToolSetupError) as caught:
        await executor.describe(name="t", url=mcp_server.url, wanted=[], auth="acme", secret="old")
    assert str(caught.value) == (
        f"{mcp_server.url} refused access (HTTP 401): the secret 'acme' was not accepted"
    )
    tool = await executor.describe(
        name="t", url=mcp_server.url, wanted=["whoami"], auth="acme", secret=SECRET
    )
    result = await executor.call(tool, tool.operations[0], {}, secret="old")
    assert (result.status, result.http_status) == ("error", 401)
    assert result.content.startswith("HTTP 401: ")


async def test_a_server_too_slow_or_too_big(
    executor: McpExecutor, mcp_server: FakeMcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    mcp_server.bulky = True
    message = await setup_error(executor, mcp_server.url)
    assert message == f"{mcp_server.url} sent too much (the answer is over 1,000,000 bytes)"
    mcp_server.bulky = False
    monkeypatch.setattr(mcp_sdk, "DESCRIBE_TIMEOUT_S", 0.3)
    mcp_server.list_delay_s = 2.0
    started = time.perf_counter()
    message = await setup_error(executor, mcp_server.url)
    assert message == f"{mcp_server.url} could not be reached (no answer within 0.3 s)"
    assert time.perf_counter() - started < 1.5


async def test_only_http_urls(executor: McpExecutor) -> None:
    message = await setup_error(executor, "ftp://mcp.example.com/mcp")
    assert message == "ftp://mcp.example.com/mcp: only http and https URLs can be added"


async def test_a_private_address_is_refused_before_any_request(mcp_server: FakeMcp) -> None:
    executor = McpExecutor(allow_private=False)
    message = await setup_error(executor, mcp_server.url)
    assert message.startswith(f"{mcp_server.url} points to a private address (127.0.0.1)")
    tool = ToolSpec.model_validate(
        {
            "name": "t",
            "kind": "mcp",
            "url": mcp_server.url,
            "operations": [{"function": "f", "id": "get_weather"}],
        }
    )
    result = await executor.call(tool, tool.operations[0], {"city": "Oslo"}, secret=None)
    assert result.status == "refused"
    assert result.content.startswith(f"{mcp_server.url} points to a private address")
    assert mcp_server.requests == []


async def test_a_server_of_the_2025_protocol_gets_a_session(
    executor: McpExecutor, mcp_server: FakeMcp
) -> None:
    mcp_server.legacy = True
    tool = await executor.describe(
        name="t", url=mcp_server.url, wanted=["get_weather"], auth=None, secret=None
    )
    mcp_server.requests.clear()
    result = await executor.call(tool, tool.operations[0], {"city": "Oslo"}, secret=None)
    assert (result.status, result.content) == ("ok", "Sunny in Oslo, 21 °C")
    assert mcp_server.requests[-1].method == "DELETE"  # the session is closed
    assert any("mcp-session-id" in r.headers for r in mcp_server.requests if r.method == "POST")


# redirects and pinned addresses


async def test_a_redirect_within_the_origin_is_followed(
    executor: McpExecutor, mcp_server: FakeMcp
) -> None:
    url = f"http://127.0.0.1:{mcp_server.port}/moved"
    tool = await executor.describe(
        name="t", url=url, wanted=["get_weather"], auth=None, secret=None
    )
    assert tool.url == url


async def test_a_redirect_to_another_host_is_not(
    executor: McpExecutor, mcp_server: FakeMcp
) -> None:
    url = f"http://127.0.0.1:{mcp_server.port}/elsewhere"
    message = await setup_error(executor, url)
    assert message.startswith(f"{url} is not an MCP server (Redirect to http://localhost:")
    assert {r.path for r in mcp_server.requests} == {"/elsewhere"}


async def test_the_transport_refuses_any_other_host_whoever_follows(mcp_server: FakeMcp) -> None:
    """Even a client that follows every redirect cannot leave the endpoint's host."""
    guard = mcp_sdk._Guard(
        host="127.0.0.1", sni="127.0.0.1", address=None, tls=httpx2.create_ssl_context()
    )
    async with httpx2.AsyncClient(transport=guard, follow_redirects=True) as client:
        with pytest.raises(
            httpx2.TransportError, match=re.escape("only 127.0.0.1 is called, not localhost")
        ):
            await client.post(f"http://127.0.0.1:{mcp_server.port}/elsewhere")
    assert [r.path for r in mcp_server.requests] == ["/elsewhere"]


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Host name -> its successive DNS answers (the last one repeats), on the test's loop."""
    answers: dict[str, list[list[str]]] = {}

    async def getaddrinfo(host: bytes | str, port: int, **_: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        queue = answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return answers


async def test_a_name_is_called_at_its_checked_address_under_its_own_name(
    resolver: dict[str, list[list[str]]], mcp_server: FakeMcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake stands in for a public server: loopback passes the check for this test.
    monkeypatch.setattr(
        runtime.net, "is_public", lambda address: address == ipaddress.ip_address("127.0.0.1")
    )
    resolver["mcp.example.com"] = [["127.0.0.1"]]
    executor = McpExecutor(allow_private=False)
    url = f"http://mcp.example.com:{mcp_server.port}/mcp"
    tool = await executor.describe(
        name="t", url=url, wanted=["get_weather"], auth=None, secret=None
    )
    result = await executor.call(tool, tool.operations[0], {"city": "Oslo"}, secret=None)
    assert result.status == "ok"
    assert {r.headers["host"] for r in mcp_server.requests} == {
        f"mcp.example.com:{mcp_server.port}"
    }


async def test_a_dns_answer_that_changes_after_the_check_is_not_followed(
    resolver: dict[str, list[list[str]]], mcp_server: FakeMcp
) -> None:
    """Rebinding: public when checked, loopback a moment later. The connection goes to the
    checked address (which the tests' network guard refuses), never to the fake."""
    resolver["mcp.example.com"] = [[PUBLIC], ["127.0.0.1"]]
    executor = McpExecutor(allow_private=False)
    url = f"http://mcp.example.com:{mcp_server.port}/mcp"
    message = await setup_error(executor, url)
    assert message.startswith(f"{url} could not be reached (")
    assert mcp_server.requests == []


async def test_a_host_with_any_private_address_is_refused(
    resolver: dict[str, list[list[str]]], mcp_server: FakeMcp
) -> None:
    resolver["mixed.example.com"] = [[PUBLIC, "10.1.2.3"]]
    message = await setup_error(McpExecutor(allow_private=False), "https://mixed.example.com/mcp")
    assert message.startswith(
        "https://mixed.example.com/mcp points to a private address (10.1.2.3)"
    )


# call


async def test_a_call_returns_the_text(
    executor: McpExecutor, mcp_server: FakeMcp, weather: ToolSpec
) -> None:
    [operation] = [op for op in weather.operations if op.id == "get_weather"]
    result = await executor.call(weather, operation, {"city": "Oslo"}, secret=None)
    assert (result.status, result.content) == ("ok", "Sunny in Oslo, 21 °C")
    assert 0 < result.size < 5000
    assert [(c.name, c.arguments) for c in mcp_server.calls] == [("get_weather", {"city": "Oslo"})]


async def test_a_tool_that_changes_things_is_called_by_its_own_name(
    executor: McpExecutor, mcp_server: FakeMcp, weather: ToolSpec
) -> None:
    # Whether it may run is the gateway's decision (see below); the executor calls it.
    ops = {op.function: op for op in weather.operations}
    assert ops["create_note"].changes and not ops["notes_search"].changes
    result = await executor.call(weather, ops["notes_search"], {"query": "milk"}, secret=None)
    assert (result.status, result.content) == ("ok", "No notes match milk")
    assert mcp_server.calls[-1].name == "notes.search"


async def test_an_error_result(executor: McpExecutor, weather: ToolSpec) -> None:
    [operation] = [op for op in weather.operations if op.id == "failing_tool"]
    result = await executor.call(weather, operation, {}, secret=None)
    assert result.status == "error"
    assert "the order service is down" in result.content


async def test_a_tool_the_server_no_longer_has(executor: McpExecutor, weather: ToolSpec) -> None:
    operation = weather.operations[0].model_copy(update={"id": "gone"})
    result = await executor.call(weather, operation, {}, secret=None)
    assert result.status == "error"
    assert "gone" in result.content


async def test_content_that_is_not_text(executor: McpExecutor, weather: ToolSpec) -> None:
    ops = {op.id: op for op in weather.operations}
    chart = await executor.call(weather, ops["chart"], {}, secret=None)
    assert (chart.status, chart.content) == ("ok", "[image/png, 3 KB]")
    stats = await executor.call(weather, ops["stats"], {}, secret=None)
    assert (stats.status, stats.content) == ("ok", '{"orders":3,"open":1}')


async def test_arguments_the_2026_protocol_also_sends_as_headers(
    executor: McpExecutor, mcp_server: FakeMcp, weather: ToolSpec
) -> None:
    [operation] = [op for op in weather.operations if op.id == "lookup_order"]
    result = await executor.call(weather, operation, {"order_id": "A-17"}, secret=None)
    assert (result.status, result.content) == ("ok", "Order A-17 has shipped")
    [call] = [r for r in mcp_server.requests if r.headers.get("mcp-method") == "tools/call"]
    assert call.headers["mcp-param-order-id"] == "A-17"


async def test_a_slow_tool_times_out(
    executor: McpExecutor, mcp_server: FakeMcp, weather: ToolSpec
) -> None:
    mcp_server.slow_s = 3.0
    tool = weather.model_copy(update={"timeout_s": 0.3})
    [operation] = [op for op in tool.operations if op.id == "slow_tool"]
    started = time.perf_counter()
    result = await executor.call(tool, operation, {}, secret=None)
    assert (result.status, result.content) == ("timeout", "no answer within 0.3 s")
    assert time.perf_counter() - started < 1.5


async def test_a_huge_answer_is_cut_off(executor: McpExecutor, weather: ToolSpec) -> None:
    [operation] = [op for op in weather.operations if op.id == "huge_tool"]
    result = await executor.call(weather, operation, {}, secret=None)
    assert (result.status, result.content) == ("too_large", "the answer is over 1,000,000 bytes")
    assert result.size <= MAX_RESPONSE_BYTES


async def test_a_server_gone_down_is_unreachable(executor: McpExecutor, weather: ToolSpec) -> None:
    tool = weather.model_copy(update={"url": f"http://127.0.0.1:{closed_port()}/mcp"})
    started = time.perf_counter()
    result = await executor.call(tool, tool.operations[0], {"city": "Oslo"}, secret=None)
    assert result.status == "unreachable"
    assert result.content
    assert time.perf_counter() - started < 1.5


# names


def test_function_names_fit_the_model_and_are_unique() -> None:
    assert function_names(["a.b", "a_b", "handoff", "", "é", "x" * 70, "x" * 70]) == [
        "a_b",
        "a_b_2",
        "handoff_2",
        "tool",
        "tool_2",
        "x" * 64,
        "x" * 62 + "_2",
    ]


# through the gateway


class Secrets:
    def __init__(self, values: dict[tuple[int, str], str]) -> None:
        self.values = values

    async def reveal(self, team_id: int, name: str) -> str | None:
        return self.values.get((team_id, name))


async def test_through_the_gateway_the_secret_is_sent_and_masked(mcp_server: FakeMcp) -> None:
    gateway = ToolGateway([McpExecutor(allow_private=True)], secrets=Secrets({(7, "acme"): SECRET}))
    tool = await gateway.describe(
        kind="mcp", name="acme", url=mcp_server.url, wanted=[], auth="acme", team_id=7
    )
    assert {r.headers.get("authorization") for r in mcp_server.requests} == {f"Bearer {SECRET}"}
    spec = BotSpec(name="helper", tools=[tool])

    result, record = await gateway.call(spec, "whoami", "{}", team_id=7)
    assert (result.status, result.content) == ("ok", f"you sent: Bearer {MASK}")
    assert mcp_server.calls[-1].authorization == f"Bearer {SECRET}"
    assert (record.function, record.status) == ("whoami", "ok")

    result, record = await gateway.call(spec, "create_note", '{"text": "hi"}', team_id=7)
    assert result.status == "refused"  # changes something, not allowed by the spec
    assert [c.name for c in mcp_server.calls] == ["whoami"]
    await gateway.close()
