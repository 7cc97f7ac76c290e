"""HTTP tools from OpenAPI: describing a document and calling its operations, against the fake
service on 127.0.0.1 over real HTTP (public hosts: a fake resolver and an httpx mock transport,
since tests may only reach 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import JsonValue

from builders.spec import BotSpec, ToolSpec
from runtime.tools.base import MASK, MAX_RESPONSE_BYTES, ToolResult, ToolSetupError
from runtime.tools.gateway import ToolGateway
from runtime.tools.openapi import OpenApiExecutor
from runtime.tools.openapi_document import tool_from_document
from tests.fakes.openapi import CHUNK, HUGE_BYTES, FakeOpenApi

SECRET = "s3cret-value-123"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


@pytest.fixture
def executor(client: httpx.AsyncClient) -> OpenApiExecutor:
    return OpenApiExecutor(client=client, allow_private=True)


async def describe(
    executor: OpenApiExecutor,
    url: str,
    wanted: tuple[str, ...] = (),
    auth: str | None = None,
) -> ToolSpec:
    return await executor.describe(name="shop", url=url, wanted=wanted, auth=auth, secret=None)


async def refusal(executor: OpenApiExecutor, url: str, wanted: tuple[str, ...] = ()) -> str:
    with pytest.raises(ToolSetupError) as caught:
        await describe(executor, url, wanted)
    message = str(caught.value)
    assert "\n" not in message
    return message


async def call(
    executor: OpenApiExecutor,
    tool: ToolSpec,
    function: str,
    arguments: dict[str, JsonValue] | None = None,
    secret: str | None = None,
) -> ToolResult:
    [operation] = [op for op in tool.operations if op.function == function]
    return await executor.call(tool, operation, arguments or {}, secret=secret)


# -- describe ------------------------------------------------------------------------------


async def test_a_json_document_becomes_a_tool(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    tool = await describe(executor, f"{openapi.url}/openapi.json")
    assert (tool.name, tool.kind, tool.url) == ("shop", "openapi", f"{openapi.url}/openapi.json")
    assert tool.base_url == openapi.url
    assert tool.auth is None and tool.auth_header is None
    assert tool.description == "Orders\n\nOrders and tickets."
    # HEAD operations and operations without an operationId are not offered
    assert [(op.function, op.method, op.changes) for op in tool.operations] == [
        ("getOrder", "GET", False),
        ("listOrders", "GET", False),
        ("createTicket", "POST", True),
        ("createCategory", "POST", True),
        ("slowOp", "GET", False),
        ("hugeOp", "GET", False),
        ("failOp", "GET", False),
        ("redirectOp", "GET", False),
        ("whoami", "GET", False),
        ("getLogo", "GET", False),
    ]
    get_order = tool.operations[0]
    assert (get_order.id, get_order.path, get_order.description) == (
        "getOrder",
        "/orders/{id}",
        "Look up one order by its id.",
    )
    assert get_order.parameters == {
        "type": "object",
        "properties": {"id": {"type": "string", "description": "The order's id."}},
        "additionalProperties": False,
        "required": ["id"],
    }
    assert get_order.places == {"id": "path"}
    list_orders = tool.operations[1]
    assert list_orders.parameters["properties"] == {
        "status": {
            "type": "string",
            "enum": ["open", "shipped", "cancelled"],
            "description": "Only orders with this status.",
        },
        "X-Trace": {"type": "string"},  # Accept is not an argument: OpenAPI ignores it
    }
    assert list_orders.places == {"status": "query", "X-Trace": "header"}
    assert "required" not in list_orders.parameters
    assert [r.raw_path for r in openapi.requests] == ["/openapi.json"]


async def test_a_yaml_document_gives_the_same_tool(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    from_json = await describe(executor, f"{openapi.url}/openapi.json")
    from_yaml = await describe(executor, f"{openapi.url}/openapi.yaml")
    assert from_yaml.operations == from_json.operations
    assert from_yaml.base_url == from_json.base_url


async def test_chosen_operations_with_a_body_resolved_through_refs(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    tool = await describe(executor, f"{openapi.url}/openapi.json", ("createTicket", "getOrder"))
    assert [op.function for op in tool.operations] == ["createTicket", "getOrder"]
    ticket = tool.operations[0]
    assert ticket.parameters == {
        "type": "object",
        "properties": {
            "subject": {"type": "string", "maxLength": 200},
            "priority": {"type": "integer", "minimum": 1, "maximum": 5},
            # the order's id is read-only: the service sets it, a request does not send it
            "order": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["open", "shipped", "cancelled"]}
                },
            },
        },
        "additionalProperties": False,
        "required": ["subject"],
    }
    assert ticket.places == {"subject": "body", "priority": "body", "order": "body"}
    assert (ticket.method, ticket.changes, ticket.allowed) == ("POST", True, False)


async def test_a_schema_that_refers_to_itself_is_cut_where_it_recurs(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    tool = await describe(executor, f"{openapi.url}/openapi.json", ("createCategory",))
    properties = tool.operations[0].parameters["properties"]
    assert isinstance(properties, dict)
    assert properties["children"] == {"type": "array", "items": {"type": "object"}}


async def test_an_api_key_in_a_header_is_where_the_secret_goes(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    tool = await describe(executor, f"{openapi.url}/apikey/openapi.json", ("whoami",), "crm")
    assert (tool.auth, tool.auth_header) == ("crm", "X-API-Key")
    bearer = await describe(executor, f"{openapi.url}/openapi.json", ("whoami",), "crm")
    assert (bearer.auth, bearer.auth_header) == ("crm", None)


async def test_an_unknown_operation_id_is_named_with_the_ids_there_are(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    message = await refusal(executor, f"{openapi.url}/openapi.json", ("getOrder", "getOrdr"))
    assert message == (
        f"{openapi.url}/openapi.json has no operation 'getOrdr' (its operations: getOrder, "
        "checkOrder, listOrders, createTicket, createCategory, slowOp, hugeOp, failOp, "
        "redirectOp, whoami, getLogo)"
    )


async def test_a_head_operation_cannot_be_a_tool(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    message = await refusal(executor, f"{openapi.url}/openapi.json", ("checkOrder",))
    assert message.startswith("'checkOrder' is a HEAD operation: only GET, POST")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/broken.yaml", "/broken.yaml does not parse as YAML (line 4: "),
        ("/swagger.json", "/swagger.json is Swagger 2.0: only OpenAPI 3.0 and 3.1 are read"),
        ("/whoami", "/whoami is not an OpenAPI document (it has no 'openapi' version)"),
        ("/logo.png", "/logo.png is not UTF-8 text, so not an OpenAPI document"),
        ("/big.json", "/big.json is over the 2 MB limit"),
        ("/missing.json", "/missing.json answered 404"),
    ],
)
async def test_a_document_that_cannot_be_read_is_one_line(
    executor: OpenApiExecutor, openapi: FakeOpenApi, path: str, expected: str
) -> None:
    assert (await refusal(executor, openapi.url + path)).startswith(openapi.url + expected)


async def test_an_unreachable_document_is_one_line(executor: OpenApiExecutor) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/openapi.json"
    assert (await refusal(executor, url)).startswith(f"{url} could not be reached (")


async def test_calls_go_only_to_the_documents_host(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    url = f"{openapi.url}/openapi.json"
    openapi.servers = [{"url": "http://api.example.com/v1"}]
    assert await refusal(executor, url) == (
        f"{url} sends its calls to api.example.com: only the document's host "
        f"(127.0.0.1:{openapi.port}) is called"
    )
    openapi.servers = [{"url": f"http://127.0.0.1:{openapi.port + 1}/"}]
    assert "only the document's host" in await refusal(executor, url)
    openapi.servers = [{"url": "https://127.0.0.1/"}]  # http -> https may change the port
    assert (await describe(executor, url)).base_url == "https://127.0.0.1"
    openapi.servers = [{"url": "/{version}", "variables": {"version": {"default": "v2"}}}]
    assert (await describe(executor, url)).base_url == f"{openapi.url}/v2"


async def test_a_private_address_is_refused_before_any_request(
    client: httpx.AsyncClient, openapi: FakeOpenApi
) -> None:
    strict = OpenApiExecutor(client=client, allow_private=False)
    url = f"{openapi.url}/openapi.json"
    assert (await refusal(strict, url)).startswith(f"{url} points to a private address (")
    assert openapi.requests == []


async def test_a_redirected_document_is_read_where_it_lands(
    executor: OpenApiExecutor, openapi: FakeOpenApi
) -> None:
    tool = await describe(executor, f"{openapi.url}/moved/openapi.json", ("getOrder",))
    assert tool.url == f"{openapi.url}/openapi.json"  # where it was found: its host is called
    assert tool.base_url == openapi.url
    assert openapi.paths() == ["/moved/openapi.json", "/openapi.json"]


# Public hosts: the test loop's resolver answers, an httpx transport stands in for the web.

PUBLIC = "93.184.216.34"


@pytest.fixture
async def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    answers: dict[str, list[str]] = {}

    async def getaddrinfo(host: bytes | str, port: int, **_: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[name]]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return answers


async def test_a_public_document_cannot_redirect_to_a_private_address(
    resolver: dict[str, list[str]],
) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(302, headers={"Location": "http://10.0.0.5/openapi.json"})

    resolver["api.example.com"] = [PUBLIC]
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        strict = OpenApiExecutor(client=http, allow_private=False)
        message = await refusal(strict, "https://api.example.com/openapi.json")
    assert message.startswith("http://10.0.0.5/openapi.json points to a private address")
    assert [str(r.url) for r in sent] == [f"https://{PUBLIC}/openapi.json"]
    assert sent[0].headers["host"] == "api.example.com"


# -- the document's shape, without HTTP -------------------------------------------------------


def document(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "T"}, "paths": paths, **extra}


def tool_of(doc: dict[str, Any], wanted: tuple[str, ...] = ()) -> ToolSpec:
    return tool_from_document(
        doc,
        name="t",
        url="https://api.example.com/openapi.json",
        document_url=httpx.URL("https://api.example.com/openapi.json"),
        wanted=wanted,
        auth=None,
    )


def setup_error(doc: dict[str, Any], wanted: tuple[str, ...] = ()) -> str:
    with pytest.raises(ToolSetupError) as caught:
        tool_of(doc, wanted)
    return str(caught.value)


def test_more_than_100_operations_must_be_chosen() -> None:
    paths = {f"/op{i}": {"get": {"operationId": f"op{i}"}} for i in range(101)}
    assert setup_error(document(paths)).endswith(
        "has 101 operations: choose at most 100 by id (e.g. op0, op1, op2, op3, op4)"
    )
    assert [op.id for op in tool_of(document(paths), ("op7", "op9")).operations] == ["op7", "op9"]


def test_only_twenty_ids_are_named() -> None:
    paths = {f"/op{i}": {"get": {"operationId": f"op{i}"}} for i in range(30)}
    assert setup_error(document(paths), ("nope",)).endswith("op18, op19 and 10 more)")


def test_a_deep_body_is_offered_within_the_spec_limits() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for level in range(10):
        deep = {"type": "object", "properties": {f"l{level}": deep}}
    paths = {
        "/deep": {
            "post": {
                "operationId": "deep op!",
                "requestBody": {"content": {"application/json": {"schema": deep}}},
            }
        }
    }
    [operation] = tool_of(document(paths)).operations
    assert operation.function == "deep_op"
    assert json.dumps(operation.parameters).count('"properties"') == 3  # deeper: types only
    assert operation.changes


def test_openapi_3_0_nullable_and_exclusive_bounds_become_json_schema() -> None:
    parameter = {
        "name": "n",
        "in": "query",
        "schema": {"type": "number", "nullable": True, "minimum": 0, "exclusiveMinimum": True},
    }
    paths = {"/n": {"get": {"operationId": "n", "parameters": [parameter]}}}
    [operation] = tool_of(document(paths)).operations
    assert operation.parameters["properties"] == {
        "n": {"type": ["number", "null"], "exclusiveMinimum": 0}
    }


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"$ref": "other.yaml#/Thing"}, "points outside the document"),
        ({"$ref": "#/components/schemas/Nothing"}, "points to nothing"),
        ({"$ref": "#/components/schemas/Loop"}, "refers to itself"),
    ],
)
def test_bad_references_are_refused(schema: dict[str, Any], expected: str) -> None:
    paths = {
        "/x": {
            "get": {
                "operationId": "x",
                "parameters": [{"name": "q", "in": "query", "schema": schema}],
            }
        }
    }
    components = {"schemas": {"Loop": {"$ref": "#/components/schemas/Loop"}}}
    assert expected in setup_error(document(paths, components=components))


@pytest.mark.parametrize("header", ["Authorization", "Cookie", "Host", "X-API-Key"])
def test_the_platforms_headers_cannot_be_arguments(header: str) -> None:
    parameter = {"name": header, "in": "header", "schema": {"type": "string"}}
    paths = {
        "/x": {"get": {"operationId": "x", "parameters": [parameter], "security": [{"k": []}]}}
    }
    schemes = {"k": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    doc = document(paths, components={"securitySchemes": schemes})
    with pytest.raises(ToolSetupError, match=f"takes the header {header} as an argument"):
        tool_from_document(
            doc,
            name="t",
            url="https://api.example.com/o.json",
            document_url=httpx.URL("https://api.example.com/o.json"),
            wanted=(),
            auth="key",
        )


# -- call ----------------------------------------------------------------------------------


@pytest.fixture
async def shop(executor: OpenApiExecutor, openapi: FakeOpenApi) -> ToolSpec:
    """Every operation of the fake's document (the fake reset once it is read)."""
    tool = await describe(executor, f"{openapi.url}/openapi.json")
    openapi.reset()
    return tool


async def test_a_get_answers_with_compact_json(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    result = await call(executor, shop, "getOrder", {"id": "A1"})
    assert result == ToolResult("ok", '{"id":"A1","status":"open"}', 27, 200)
    [received] = openapi.requests
    assert (received.method, received.raw_path) == ("GET", "/orders/A1")
    assert "authorization" not in received.headers  # no secret, no header


async def test_error_statuses_are_errors_with_the_answer(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    missing = await call(executor, shop, "getOrder", {"id": "Z9"})
    assert (missing.status, missing.content, missing.http_status) == (
        "error",
        'HTTP 404: {"error":"no order Z9"}',
        404,
    )
    failed = await call(executor, shop, "failOp")
    assert (failed.status, failed.content) == ("error", 'HTTP 500: {"error":"boom"}')


@pytest.mark.parametrize(
    ("value", "raw_path"),
    [
        ("../admin?x=1", "/orders/..%2Fadmin%3Fx%3D1"),
        ("..", "/orders/%2E%2E"),
        ("a/b#c d", "/orders/a%2Fb%23c%20d"),
    ],
)
async def test_a_path_argument_cannot_escape_its_segment(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi, value: str, raw_path: str
) -> None:
    result = await call(executor, shop, "getOrder", {"id": value})
    assert result.status == "error" and result.http_status == 404
    assert openapi.paths() == [raw_path]
    assert openapi.requests[0].query == ""


async def test_query_and_header_arguments(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    result = await call(executor, shop, "listOrders", {"status": "shipped", "X-Trace": "t-1"})
    assert result.content == '{"orders":[{"id":"B2","status":"shipped"}]}'  # indentation gone
    [received] = openapi.requests
    assert (received.raw_path, received.query) == ("/orders", "status=shipped")
    assert received.headers["x-trace"] == "t-1"


async def test_body_arguments_are_sent_as_json(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    arguments: dict[str, JsonValue] = {"subject": "Broken lid", "priority": 2}
    result = await call(executor, shop, "createTicket", arguments)
    assert (result.status, result.http_status) == ("ok", 201)
    assert json.loads(result.content) == {"id": "T-1", "received": arguments}
    [received] = openapi.requests
    assert (received.method, received.raw_path, received.json) == ("POST", "/tickets", arguments)
    assert received.headers["content-type"] == "application/json"


async def test_the_secret_goes_as_a_bearer_token_or_in_the_key_header(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    bearer = await call(executor, shop, "whoami", secret=SECRET)
    assert json.loads(bearer.content) == {"authorization": f"Bearer {SECRET}", "x-api-key": None}
    keyed = await describe(executor, f"{openapi.url}/apikey/openapi.json", ("whoami",), "crm")
    header = await call(executor, keyed, "whoami", secret=SECRET)
    assert json.loads(header.content) == {"authorization": None, "x-api-key": SECRET}


async def test_a_slow_service_times_out_within_the_tools_timeout(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    started = time.monotonic()
    result = await call(executor, shop.model_copy(update={"timeout_s": 0.3}), "slowOp")
    assert result == ToolResult("timeout", "no answer within 0.3 s")
    assert time.monotonic() - started < 1.5


async def test_a_huge_answer_is_cut_off_without_reading_it(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    started = time.monotonic()
    result = await call(executor, shop, "hugeOp")
    assert (result.status, result.content, result.http_status) == (
        "too_large",
        "the answer is over 1,000,000 bytes",
        200,
    )
    assert MAX_RESPONSE_BYTES < result.size <= MAX_RESPONSE_BYTES + len(CHUNK)
    assert time.monotonic() - started < 5
    await asyncio.sleep(0.05)
    assert openapi.huge_sent < HUGE_BYTES / 2


async def test_a_declared_length_over_the_cap_is_refused_before_reading(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    result = await call(executor, shop, "hugeOp", {"declared": True})
    assert (result.status, result.size) == ("too_large", HUGE_BYTES)
    assert openapi.requests[0].query == "declared=true"


async def test_a_redirect_on_the_same_host_is_followed(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    result = await call(executor, shop, "redirectOp", secret=SECRET)
    assert json.loads(result.content)["authorization"] == f"Bearer {SECRET}"
    assert openapi.paths() == ["/redirect", "/whoami"]


async def test_a_redirect_to_another_host_is_refused(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    openapi.redirect_to = f"http://localhost:{openapi.port}/whoami"
    result = await call(executor, shop, "redirectOp", secret=SECRET)
    assert result == ToolResult(
        "refused",
        f"http://localhost:{openapi.port}/whoami is not on 127.0.0.1: only 127.0.0.1 is called",
    )
    assert openapi.paths() == ["/redirect"]  # the secret never went to the other host


async def test_a_binary_answer_is_an_error(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    result = await call(executor, shop, "getLogo")
    assert (result.status, result.content) == (
        "error",
        "HTTP 200: the answer is image/png, not text",
    )


async def test_a_private_address_is_refused_at_call_time(
    client: httpx.AsyncClient, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    strict = OpenApiExecutor(client=client, allow_private=False)
    result = await call(strict, shop, "getOrder", {"id": "A1"})
    assert result.status == "refused"
    assert "points to a private address" in result.content
    assert openapi.requests == []


async def test_a_base_url_off_the_documents_host_is_never_called(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    moved = shop.model_copy(update={"url": "http://docs.example.com/openapi.json"})
    result = await call(executor, moved, "getOrder", {"id": "A1"})
    assert result == ToolResult("refused", "only the document's host (docs.example.com) is called")
    assert openapi.requests == []


# -- through the gateway -----------------------------------------------------------------------


class Secrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    async def reveal(self, team_id: int, name: str) -> str | None:
        return self.values.get(name)


@pytest.fixture
def gateway(executor: OpenApiExecutor) -> ToolGateway:
    return ToolGateway([executor], secrets=Secrets({"crm": SECRET}))


def bot(tool: ToolSpec) -> BotSpec:
    return BotSpec(name="shop-bot", tools=[tool])


async def test_arguments_that_fail_the_schema_are_refused_before_any_request(
    gateway: ToolGateway, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    result, _ = await gateway.call(bot(shop), "getOrder", '{"id": 7}', team_id=1)
    assert (result.status, result.content) == ("refused", "id: 7 is not of type 'string'")
    extra, _ = await gateway.call(bot(shop), "getOrder", '{"id": "A1", "as": 1}', team_id=1)
    assert extra.status == "refused" and "'as' was unexpected" in extra.content
    assert openapi.requests == []


async def test_a_post_not_allowed_is_refused_without_a_request(
    gateway: ToolGateway, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    arguments = '{"subject": "Broken lid"}'
    result, _ = await gateway.call(bot(shop), "createTicket", arguments, team_id=1)
    assert result == ToolResult(
        "refused", "'createTicket' changes something and this bot is not allowed to run it"
    )
    assert openapi.requests == []
    allowed = shop.model_copy(
        update={
            "operations": [
                op.model_copy(update={"allowed": True}) if op.function == "createTicket" else op
                for op in shop.operations
            ]
        }
    )
    result, record = await gateway.call(bot(allowed), "createTicket", arguments, team_id=1)
    assert (result.status, record.detail) == ("ok", "HTTP 201")
    assert [r.raw_path for r in openapi.requests] == ["/tickets"]


async def test_the_secret_is_masked_in_what_the_model_and_the_record_see(
    gateway: ToolGateway, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    tool = shop.model_copy(update={"auth": "crm"})
    arguments = json.dumps({"status": "open", "X-Trace": SECRET})
    result, record = await gateway.call(bot(tool), "whoami", "{}", team_id=1)
    assert result.status == "ok"
    assert json.loads(result.content)["authorization"] == f"Bearer {MASK}"
    assert SECRET not in result.content
    _, record = await gateway.call(bot(tool), "listOrders", arguments, team_id=1)
    assert SECRET not in record.arguments and MASK in record.arguments
    assert openapi.requests[0].headers["authorization"] == f"Bearer {SECRET}"


async def test_an_argument_without_a_place_is_refused(
    executor: OpenApiExecutor, shop: ToolSpec, openapi: FakeOpenApi
) -> None:
    result = await call(executor, shop, "getOrder", {"id": "A1", "admin": True})
    assert result == ToolResult("refused", "'admin' is not an argument of 'getOrder' (id)")
    assert openapi.requests == []


async def test_a_service_that_is_down_is_unreachable(
    executor: OpenApiExecutor, shop: ToolSpec
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = shop.model_copy(
        update={"url": f"http://127.0.0.1:{port}/openapi.json", "base_url": None}
    )
    result = await call(executor, down, "getOrder", {"id": "A1"})
    assert result.status == "unreachable"
    assert result.content.startswith("the service could not be reached (")


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [(303, "GET", b""), (302, "GET", b""), (307, "POST", b'{"subject":"Lid"}')],
)
async def test_a_redirected_post_goes_on_as_browsers_do(
    shop: ToolSpec, status: int, method: str, body: bytes
) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/tickets":
            return httpx.Response(status, headers={"Location": "/tickets/T-1"})
        return httpx.Response(200, json={"id": "T-1"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        mocked = OpenApiExecutor(client=http, allow_private=True)
        result = await call(mocked, shop, "createTicket", {"subject": "Lid"}, secret=SECRET)
    assert result == ToolResult("ok", '{"id":"T-1"}', 12, 200)
    assert [(r.method, r.url.path) for r in sent] == [
        ("POST", "/tickets"),
        (method, "/tickets/T-1"),
    ]
    assert sent[1].content.replace(b" ", b"") == body
    assert sent[1].headers["authorization"] == f"Bearer {SECRET}"  # the same host


async def test_each_host_has_its_own_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pinned request names the checked address: hosts behind one address must not share a
    # pooled TLS connection made (and its certificate checked) for the other. Hosts are kept
    # up to a limit; the least recently used one's client is closed once its calls are over.
    monkeypatch.setattr("runtime.tools.openapi.MAX_HOSTS", 2)
    executor = OpenApiExecutor(allow_private=False)
    try:
        a, b = executor._client("https://a.example/x"), executor._client("https://b.example/y")
        assert a is not b and executor._client("https://a.example/other") is a
        c = executor._client("https://c.example/")  # b is the least recently used
        assert executor._client("https://a.example/") is a and c not in (a, b)
        assert executor._client("https://b.example/") is not b
    finally:
        await executor.close()
    assert a.is_closed and b.is_closed and c.is_closed
