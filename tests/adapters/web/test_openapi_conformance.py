"""Schemathesis against the real app, with the owner key through the declared bearer scheme: no
server errors, and every status, content type and body is the one the OpenAPI document gives.

A longer exploration: `SCHEMATHESIS_EXAMPLES=3000 python -m pytest
tests/adapters/web/test_openapi_conformance.py -p no:cacheprovider` (a fresh random seed each run
when `SCHEMATHESIS_SEED` is unset... the bounded default run is derandomized).
"""

from __future__ import annotations

import os
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
BOT = "faq-bot"
_strategies: dict[str, st.SearchStrategy[Case]] = {}
_bot_exists: set[str] = set()


def _cases(service: Service) -> st.SearchStrategy[Case]:
    """Valid calls (half of them naming a bot that exists) and invalid ones; the owner key goes
    through the declared scheme, or is fixed for invalid calls so they get past it."""
    if service.key not in _strategies:
        config = schemathesis.Config.from_dict(
            {"auth": {"openapi": {"bearerAuth": {"bearer": service.key}}}}
        )
        schema = schemathesis.openapi.from_dict(service.app.openapi(), config=config)
        _strategies[service.key] = st.one_of(
            schema.as_strategy(GenerationMode.POSITIVE),
            schema.as_strategy(GenerationMode.POSITIVE, path_parameters={"bot": BOT}),
            schema.as_strategy(
                GenerationMode.NEGATIVE, path_parameters={"bot": BOT}, headers=service.auth()
            ),
        )
    return _strategies[service.key]


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
    if service.key not in _bot_exists:
        await service.import_bot(BOT)
        _bot_exists.add(service.key)
    case = data.draw(_cases(service))
    response = await service.client.request(**_request(case))
    case.validate_response(response, checks=CHECKS)
    if (case.method, case.path, response.status_code) == ("DELETE", "/api/v1/bots/{bot}", 204):
        _bot_exists.discard(service.key)
