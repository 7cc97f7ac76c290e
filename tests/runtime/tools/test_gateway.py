"""The tool gateway: what it checks before a call leaves, the secret it sends and masks, and the
record a turn keeps."""

from __future__ import annotations

import html
import json
from urllib.parse import quote, quote_plus

import pytest

from builders.spec import BotSpec
from runtime.tools.base import MASK, ToolResult, masked
from runtime.tools.gateway import MAX_MODEL_CHARS
from tests.runtime.tools.kit import CREATE_TICKET, GET_ORDER, TableTools, shop, tool_gateway

SECRET = "sk-live-0123456789"


def bot(**tool_fields: object) -> BotSpec:
    operations = tool_fields.pop("operations", ())
    return BotSpec(name="shop-bot", tools=[shop(*operations, **tool_fields)])  # type: ignore[arg-type, misc]


async def test_a_call_runs_with_the_teams_secret_and_is_recorded() -> None:
    tools = TableTools()
    result, record = await tool_gateway(tools, shop_key=SECRET).call(
        bot(), "getOrder", '{"id": "A-1"}', team_id=1
    )
    assert (result.status, json.loads(result.content)) == ("ok", {"id": "A-1", "status": "shipped"})
    assert tools.calls == [("getOrder", {"id": "A-1"}, SECRET)]
    assert (record.function, record.arguments, record.status, record.detail) == (
        "getOrder",
        '{"id": "A-1"}',
        "ok",
        "HTTP 200",
    )
    assert record.size == result.size and record.ms >= 0


async def test_the_secret_is_masked_in_what_the_model_and_the_record_get() -> None:
    gateway = tool_gateway(TableTools(echo_secret=True), shop_key=SECRET)
    arguments = json.dumps({"id": "A-1", "note": SECRET})
    result, record = await gateway.call(
        bot(operations=[GET_ORDER.model_copy(update={"parameters": {"type": "object"}})]),
        "getOrder",
        arguments,
        team_id=1,
    )
    assert SECRET not in result.content and MASK in result.content
    assert SECRET not in record.arguments and MASK in record.arguments


@pytest.mark.parametrize(
    ("function", "arguments", "reason"),
    [
        ("getOrders", "{}", "there is no tool called 'getOrders' (tools: getOrder, createTicket)"),
        ("getOrder", "{id: 1}", "the arguments are not valid JSON"),
        ("getOrder", "[1]", "the arguments must be a JSON object"),
        ("getOrder", "{}", "arguments: 'id' is a required property"),
        ("getOrder", '{"id": "../admin"}', "id: '../admin' does not match '^[A-Z]-[0-9]+$'"),
        (
            "createTicket",
            '{"text": "refund me"}',
            "'createTicket' changes something and this bot is not allowed to run it",
        ),
    ],
)
async def test_a_call_the_platform_refuses_never_reaches_the_tool(
    function: str, arguments: str, reason: str
) -> None:
    tools = TableTools()
    result, record = await tool_gateway(tools, shop_key=SECRET).call(
        bot(), function, arguments, team_id=1
    )
    assert (result.status, result.content) == ("refused", reason)
    assert (record.status, record.detail) == ("refused", reason)
    assert tools.calls == []


async def test_a_change_the_spec_allows_runs() -> None:
    tools = TableTools()
    allowed = CREATE_TICKET.model_copy(update={"allowed": True})
    result, _ = await tool_gateway(tools, shop_key=SECRET).call(
        bot(operations=[GET_ORDER, allowed]), "createTicket", '{"text": "hi"}', team_id=1
    )
    assert (result.status, result.http_status) == ("ok", 201)
    assert tools.calls == [("createTicket", {"text": "hi"}, SECRET)]


async def test_a_secret_that_is_not_set_refuses_the_call() -> None:
    tools = TableTools()
    result, _ = await tool_gateway(tools).call(bot(), "getOrder", '{"id": "A-1"}', team_id=1)
    assert (result.status, result.content) == (
        "refused",
        "the secret 'shop-key' is not set for this team",
    )
    other_team, _ = await tool_gateway(tools, shop_key=SECRET).call(
        bot(), "getOrder", '{"id": "A-1"}', team_id=2
    )
    assert other_team.status == "refused"
    assert tools.calls == []


async def test_a_tool_without_auth_needs_no_secret() -> None:
    result, _ = await tool_gateway().call(bot(auth=None), "getOrder", '{"id": "B-2"}', team_id=None)
    assert result.status == "ok"


async def test_a_tool_that_stalls_is_cut_at_its_timeout() -> None:
    tools = TableTools(delay_s=5)
    result, record = await tool_gateway(tools).call(
        bot(auth=None, timeout_s=0.05), "getOrder", '{"id": "A-1"}', team_id=1
    )
    assert (result.status, record.detail) == ("timeout", "no answer within 0.05 s")
    assert record.ms < 3000


async def test_a_long_result_is_cut_for_the_model() -> None:
    class Long(TableTools):
        async def call(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            from runtime.tools.base import ToolResult

            return ToolResult("ok", "x" * (MAX_MODEL_CHARS + 10), size=MAX_MODEL_CHARS + 10)

    result, _ = await tool_gateway(Long()).call(
        bot(auth=None), "getOrder", '{"id": "A-1"}', team_id=1
    )
    assert len(result.content) < MAX_MODEL_CHARS + 100
    assert result.content.endswith(f"[cut: {MAX_MODEL_CHARS + 10} characters in all]")


def test_a_schema_may_only_refer_to_itself() -> None:
    from pydantic import ValidationError

    remote = {"type": "object", "properties": {"x": {"$ref": "http://169.254.169.254/x.json"}}}
    with pytest.raises(ValidationError, match=r"\$ref must point inside the schema"):
        GET_ORDER.model_validate({**GET_ORDER.model_dump(), "parameters": remote})


async def test_a_reference_outside_the_schema_is_never_fetched() -> None:
    # A spec built without validation (as from an old store) still cannot make the gateway fetch.
    tools = TableTools()
    remote = {"type": "object", "properties": {"id": {"$ref": "file:///etc/hostname"}}}
    spec = bot(
        auth=None,
        operations=[GET_ORDER.model_construct(**{**dict(GET_ORDER), "parameters": remote})],
    )
    result, _ = await tool_gateway(tools).call(spec, "getOrder", '{"id": "A-1"}', team_id=1)
    assert (result.status, result.content) == (
        "refused",
        "the operation's argument schema refers outside itself",
    )
    assert tools.calls == []


async def test_a_pattern_that_backtracks_is_cut_short() -> None:
    slow = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(a|aa)+$"}}}
    spec = bot(auth=None, operations=[GET_ORDER.model_copy(update={"parameters": slow})])
    result, record = await tool_gateway().call(
        spec, "getOrder", json.dumps({"id": "a" * 40 + "!"}), team_id=1
    )
    assert result.status == "refused" and "the pattern cannot be checked" in result.content
    assert record.ms < 1000


def test_argument_names_are_never_matched_by_a_schemas_regex() -> None:
    from pydantic import ValidationError

    names = {"type": "object", "patternProperties": {"^(a+)+$": {}}}
    with pytest.raises(ValidationError, match="patternProperties is not supported"):
        GET_ORDER.model_validate({**GET_ORDER.model_dump(), "parameters": names})


SLY = 'tok\\"en&x+/'  # a backslash, a quote, an ampersand, a plus and a slash


@pytest.mark.parametrize(
    "echoed",
    [
        SLY,
        json.dumps(SLY)[1:-1],  # in a JSON string
        html.escape(SLY),  # in HTML
        quote(SLY, safe=""),  # in a URL
        quote_plus(SLY, safe=""),  # in a form
    ],
)
def test_a_secret_echoed_back_escaped_is_masked_too(echoed: str) -> None:
    assert masked(f"key={echoed}!", SLY) == f"key={MASK}!"


class AnswersWith(TableTools):
    """A service whose every answer is `answer`."""

    def __init__(self, answer: ToolResult) -> None:
        super().__init__()
        self.answer = answer

    async def call(self, *args: object, **kwargs: object) -> ToolResult:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            ToolResult("error", "HTTP 200: the answer is image/png, not text", 0, 200),
            "HTTP 200: the answer is image/png, not text",
        ),
        (
            ToolResult("too_large", "the answer is over 1,000,000 bytes", 1_048_569, 200),
            "HTTP 200: the answer is over 1,000,000 bytes",
        ),
        (ToolResult("error", "HTTP 500: Traceback of the service", 30, 500), "HTTP 500"),
        (ToolResult("timeout", "no answer within 10 s"), "no answer within 10 s"),
    ],
)
async def test_the_record_says_why_a_call_that_got_a_2xx_answer_failed(
    answer: ToolResult, detail: str
) -> None:
    _, record = await tool_gateway(AnswersWith(answer), shop_key=SECRET).call(
        bot(), "getOrder", '{"id": "A-1"}', team_id=1
    )
    assert (record.status, record.detail) == (answer.status, detail)
