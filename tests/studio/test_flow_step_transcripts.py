"""Flows with every step kind built by conversation: router, template, extract and bot steps next
to llm and retrieve, checked by saving (the node kinds' compile-time checks) and by `/try`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM

FALLBACK = "I can't answer that yet."


async def pipeline(service: Service, bot: str = "faq-bot") -> list[dict[str, Any]]:
    return (await service.call("GET", f"/api/v1/bots/{bot}"))["draft"]["pipeline"]  # type: ignore[no-any-return]


async def tried(service: Service, text: str) -> str:
    return (await service.reply(f"/try faq-bot {text}")).removeprefix("*faq-bot* (draft): ")


async def test_a_template_reached_by_a_keyword_and_by_a_regex(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    added = await service.reply('/flow faq-bot add template refunds text="Refunds take 5 days."')
    assert "Both answer; to answer only some messages with `refunds`" in added
    routed = await service.reply("if they mention refund, send them to refunds")
    assert routed.startswith(
        'Added router `router` at the start. Messages matching "refund" now go to `refunds`; '
        "the rest go on to `llm`. `refunds` now answers only what is routed to it."
    )
    await service.reply('/flow faq-bot add template orders text="Your order is on its way."')
    await service.reply(r"/route faq-bot /order\s+\d+/ to orders")
    assert await pipeline(service) == [
        {
            "id": "router",
            "kind": "router",
            "params": {
                "routes": [
                    {"keyword": "refund", "to": "refunds"},
                    {"regex": r"order\s+\d+", "to": "orders"},
                ],
                "default": "llm",
            },
            "next": None,
        },
        {
            "id": "refunds",
            "kind": "template",
            "params": {"text": "Refunds take 5 days."},
            "next": None,
        },
        {"id": "llm", "kind": "llm", "params": {}, "next": None},
        {
            "id": "orders",
            "kind": "template",
            "params": {"text": "Your order is on its way."},
            "next": None,
        },
    ]
    assert await tried(service, "I want a refund") == "Refunds take 5 days."
    assert await tried(service, "where is order 1234?") == "Your order is on its way."
    assert await tried(service, "hello") == FALLBACK

    linked = await service.reply("/flow faq-bot link refunds llm")  # answers, then the model
    assert linked.startswith("`refunds` now goes on to `llm`.")
    assert await tried(service, "a refund?") == f"Refunds take 5 days.\n\n{FALLBACK}"

    removed = await service.reply("/flow faq-bot remove orders")
    assert removed.startswith("Removed `orders`.")
    assert "/order" not in await service.reply("/flow faq-bot")


async def test_ask_for_an_email_gates_the_flow_until_it_is_known(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    said = await service.reply("ask for their email and remember it")
    assert said.startswith(
        "Every message now goes through `remember-email` first, which remembers the person's "
        "email address when they give it; while it is unknown, `ask-email` asks for it"
    )
    steps = {step["id"]: step for step in await pipeline(service)}
    assert list(steps) == ["remember-email", "check-email", "llm", "ask-email"]
    assert steps["remember-email"]["params"]["fields"]["properties"]["email"]["format"] == "email"
    assert await tried(service, "hi") == "Before we go on: what's your email address?"
    refused = await service.reply("ask for their email")
    assert "Nothing was changed: `remember-email` already remembers email." in refused


async def test_steps_of_every_kind_by_flow_add(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/newbot billing-bot")
    await service.reply("/flow faq-bot add extract contact fields=email,phone")
    await service.reply('/flow faq-bot set llm prompt="Answer in French."')
    await service.reply("/flow faq-bot add retrieve kb top_k=2 after contact")
    await service.reply(
        '/flow faq-bot add router triage routes=[{"keyword": "invoice", "to": "llm"}]'
    )
    await service.reply("/flow faq-bot add bot billing bot=billing-bot after llm")
    steps = {step["id"]: step for step in await pipeline(service)}
    assert list(steps) == ["triage", "contact", "llm", "kb", "billing"]
    assert steps["triage"]["params"] == {
        "routes": [{"keyword": "invoice", "to": "llm"}],
        "default": "contact",
    }
    assert steps["contact"]["next"] == "kb" and steps["kb"]["next"] == "llm"
    assert steps["llm"] == {
        "id": "llm",
        "kind": "llm",
        "params": {"prompt": "Answer in French."},
        "next": "billing",
    }
    assert set(steps["contact"]["params"]["fields"]["properties"]) == {"email", "phone"}
    refused = await service.reply("/flow faq-bot set billing bot=nobody")
    assert "step 'billing' asks 'nobody', which is no bot of this team" in refused


async def test_a_route_to_another_bot_of_the_team(service: Service) -> None:
    await service.reply("/newbot billing-bot")
    await service.reply("/newbot faq-bot")
    said = await service.reply("when someone asks about billing, send them to billing-bot")
    assert said.startswith("Added bot step `billing-bot` (it asks billing-bot).")
    flow = await service.reply("/flow faq-bot")
    assert '    "billing" → `billing-bot`' in flow
    assert "`billing-bot` bot asks billing-bot (answers)" in flow
    intent = await service.reply('/route faq-bot intent "questions about invoices" to llm')
    assert intent.startswith("Nothing was changed: step 'router': intent routes need a model")
    # billing-bot has no production version yet: /try says a step failed, not the model
    assert (await tried(service, "a billing question")).endswith(
        "A step failed: bot: 'billing-bot' has no production version to ask. End users would "
        "get the fallback message above; /stats counts such errors."
    )


async def test_a_flow_of_every_kind_round_trips_through_yaml(service: Service) -> None:
    await service.reply("/newbot billing-bot")
    await service.reply("/newbot faq-bot")
    await service.reply('/flow faq-bot add template refunds text="Refunds: {{ input }}"')
    await service.reply('/route faq-bot "refund" to refunds')
    await service.reply(r"/route faq-bot /invoice\s+\d+/ to billing-bot")
    await service.reply("/flow faq-bot ask phone")
    exported = await service.call("GET", "/api/v1/bots/faq-bot/export")
    copy = exported.replace("name: faq-bot", "name: faq-copy", 1)
    imported = await service.call("POST", "/api/v1/bots/import", content=copy.encode())
    assert imported["draft"]["pipeline"] == await pipeline(service)
    assert len(imported["draft"]["pipeline"]) == 7


async def test_diff_after_a_flow_is_built(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")
    await service.reply('/flow faq-bot add template refunds text="5 days."')
    await service.reply('/route faq-bot "refund" to refunds')
    assert await service.reply("/diff faq-bot") == "\n".join(
        [
            "*faq-bot*: v1 → draft",
            "flow (pipeline):",
            "  ~ starts at `router` (was `llm`)",
            '  + `router` router "refund" → `refunds`, default → `llm`',
            '  + `refunds` template "5 days."',
        ]
    )


async def test_the_builder_model_routes_through_its_tool(tmp_path: Path, llm: FakeLLM) -> None:
    settings = service_settings(tmp_path, builder_model="openai/builder", llm_api_base=llm.base_url)
    async with running_service(settings) as service:
        await service.reply("/newbot faq-bot")
        await service.reply('/flow faq-bot add template refunds text="5 days."')
        llm.tool_calls(("route", {"bot": "faq-bot", "value": "money back", "step": "refunds"}))
        reply = await service.reply("people who want their money back should get the refund text")
        assert 'Messages matching "money back" now go to `refunds`' in reply
        [router, *_] = await pipeline(service)
        assert router["params"]["routes"] == [{"keyword": "money back", "to": "refunds"}]
