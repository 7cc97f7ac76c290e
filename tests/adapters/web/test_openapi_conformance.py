"""Schemathesis against the real app, with the owner key through the declared bearer scheme: no
server errors, and every status, content type and body is the one the OpenAPI document gives.

The default run is bounded and derandomized. A longer, random exploration:
`SCHEMATHESIS_EXAMPLES=3000 python -m pytest tests/adapters/web/test_openapi_conformance.py`"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import Service

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "150"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_GONE = {"/api/v1/bots/{bot}", "/api/v1/deployments/{deployment_id}"}  # when deleted
_bots = itertools.count()


@dataclass
class _World:
    """A live bot with a web deployment, and the calls that name them."""

    bot: str
    deployment: str
    cases: st.SearchStrategy[Case]


_worlds: dict[str, _World] = {}  # by the service's owner key


async def _world(service: Service) -> _World:
    """Valid calls (with unknown names, or naming the live bot and its deployment) and invalid
    ones; the owner key goes through the declared scheme, or is fixed for invalid calls so they
    get past it."""
    if service.key not in _worlds:
        bot = f"bot-{next(_bots)}"
        deployment = await service.live_web_bot(bot)
        named = {"bot": bot, "deployment_id": deployment}
        config = schemathesis.Config.from_dict(
            {"auth": {"openapi": {"bearerAuth": {"bearer": service.key}}}}
        )
        schema = schemathesis.openapi.from_dict(service.app.openapi(), config=config)
        cases = st.one_of(
            schema.as_strategy(GenerationMode.POSITIVE),
            schema.as_strategy(GenerationMode.POSITIVE, path_parameters=named),
            schema.as_strategy(
                GenerationMode.NEGATIVE, path_parameters=named, headers=service.auth()
            ),
        )
        _worlds[service.key] = _World(bot, deployment, cases)
    return _worlds[service.key]


def _request(case: Case) -> dict[str, Any]:
    """The case as httpx arguments (schemathesis serializes for `requests`)."""
    kwargs = case.as_transport_kwargs(base_url=str(_BASE))
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content" if isinstance(data, (bytes, str)) else "data"] = data
    kwargs.pop("cookies", None)
    return kwargs


_BASE = "http://studio.test"


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize="SCHEMATHESIS_EXAMPLES" not in os.environ,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
async def test_the_api_answers_as_its_openapi_document_says(
    service: Service, data: st.DataObject
) -> None:
    case = data.draw((await _world(service)).cases)
    response = await service.client.request(**_request(case))
    case.validate_response(response, checks=CHECKS)
    if case.method == "DELETE" and case.path in _GONE and response.status_code == 204:
        del _worlds[service.key]  # the next call gets a new live bot
