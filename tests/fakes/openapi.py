"""A fake HTTP service described by OpenAPI 3.1, for HTTP tools: records every request and
answers the operations its document lists.

    fake = FakeOpenApi().start()
    fake.url + "/openapi.json"          # the document (also /openapi.yaml; $refs throughout)
    fake.url + "/apikey/openapi.json"   # the same with an API key in the X-API-Key header
    fake.slow_s = 0.5                   # how long slowOp sleeps (5 s by default)
    fake.redirect_to = "http://localhost:PORT/whoami"   # where redirectOp sends (default /whoami)
    fake.servers = [{"url": "http://api.example.com"}]  # the documents' servers (default "/")
    fake.requests[-1].raw_path, .headers, .json         # what it received
    fake.reset()

Operations: getOrder GET /orders/{id} (orders A1 and B2; 404 otherwise), listOrders GET
/orders?status= (indented JSON), createTicket POST /tickets (a JSON body, echoed), slowOp GET
/slow, hugeOp GET /huge (streams 50 MB; `?declared=true` says so in Content-Length first),
failOp GET /fail (500), redirectOp GET /redirect (302), whoami GET /whoami (echoes Authorization
and X-API-Key), getLogo GET /logo.png (an image), createCategory POST /categories (a schema that
refers to itself), checkOrder HEAD /orders/{id}, and GET /health without an operationId. Other
documents: /swagger.json (Swagger 2.0), /broken.yaml (does not parse), /big.json (3 MB), and
/moved/openapi.json (a redirect to /openapi.json).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server import ServedFake

ORDERS = {"A1": "open", "B2": "shipped"}
HUGE_BYTES = 50 * 1024 * 1024
CHUNK = b"x" * 65536
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@dataclass(frozen=True, slots=True)
class Received:
    """One request the fake got (any path), recorded before it is answered."""

    method: str
    path: str  # decoded, as the route saw it
    raw_path: str  # as sent (percent-encoding kept)
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class FakeOpenApi(ServedFake):
    name = "OpenAPI service"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self.slow_s = 5.0
        self.redirect_to = "/whoami"
        self.servers: list[dict[str, Any]] | None = None
        self.huge_sent = 0  # bytes hugeOp has handed to the server so far
        routes = [
            Route("/openapi.json", self._document_json),
            Route("/openapi.yaml", self._document_yaml),
            Route("/apikey/openapi.json", self._document_apikey),
            Route("/moved/openapi.json", self._moved),
            Route("/swagger.json", self._swagger),
            Route("/broken.yaml", self._broken),
            Route("/big.json", self._big),
            Route("/orders/{id}", self._order),
            Route("/orders", self._orders),
            Route("/tickets", self._ticket, methods=["POST"]),
            Route("/categories", self._ticket, methods=["POST"]),
            Route("/slow", self._slow),
            Route("/huge", self._huge),
            Route("/fail", self._fail),
            Route("/redirect", self._redirect),
            Route("/whoami", self._whoami),
            Route("/logo.png", self._logo),
            Route("/health", self._health),
        ]
        self._app = Starlette(routes=routes)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self._recording(scope, receive, send)  # a function: uvicorn sees ASGI 3

        self.app = app

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the fake OpenAPI service is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def paths(self) -> list[str]:
        """The raw path of every request so far."""
        return [received.raw_path for received in self.requests]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
        self.slow_s = 5.0
        self.redirect_to = "/whoami"
        self.servers = None
        self.huge_sent = 0

    # -- serving --------------------------------------------------------------------------

    async def _recording(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        parts: list[bytes] = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(parts)
        received = Received(
            method=scope["method"],
            path=scope["path"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
        )
        with self._lock:
            self._requests.append(received)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            result: dict[str, Any] = await receive()
            return result

        await self._app(scope, replay, send)

    def document(self, *, security: str = "bearer") -> dict[str, Any]:
        """The OpenAPI 3.1 document (`security`: "bearer" or "apikey")."""
        schemes = {
            "bearer": {"token": {"type": "http", "scheme": "bearer"}},
            "apikey": {"key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        }[security]
        return {
            "openapi": "3.1.0",
            "info": {"title": "Orders", "version": "1.0", "description": "Orders and tickets."},
            "servers": self.servers if self.servers is not None else [{"url": "/"}],
            "security": [{name: []} for name in schemes],
            "paths": _PATHS,
            "components": {**_COMPONENTS, "securitySchemes": schemes},
        }

    async def _document_json(self, _: Request) -> Response:
        return JSONResponse(self.document())

    async def _document_yaml(self, _: Request) -> Response:
        text = yaml.safe_dump(self.document(), sort_keys=False)
        return Response(text, media_type="application/yaml")

    async def _document_apikey(self, _: Request) -> Response:
        return JSONResponse(self.document(security="apikey"))

    async def _moved(self, _: Request) -> Response:
        return RedirectResponse("/openapi.json", status_code=302)

    async def _swagger(self, _: Request) -> Response:
        return JSONResponse({"swagger": "2.0", "info": {"title": "Old"}, "paths": {}})

    async def _broken(self, _: Request) -> Response:
        return Response("openapi: 3.1.0\npaths: {\n  /x: [\n", media_type="application/yaml")

    async def _big(self, _: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"openapi": "3.1.0", "paths": {}, "x-padding": "'
            for _ in range(48):  # 3 MB
                yield CHUNK
            yield b'"}'

        return StreamingResponse(chunks(), media_type="application/json")

    async def _order(self, request: Request) -> Response:
        order = request.path_params["id"]
        if order not in ORDERS:
            return JSONResponse({"error": f"no order {order}"}, status_code=404)
        return JSONResponse({"id": order, "status": ORDERS[order]})

    async def _orders(self, request: Request) -> Response:
        wanted = request.query_params.getlist("status")
        found = [
            {"id": order, "status": status}
            for order, status in ORDERS.items()
            if not wanted or status in wanted
        ]
        return Response(json.dumps({"orders": found}, indent=2), media_type="application/json")

    async def _ticket(self, request: Request) -> Response:
        return JSONResponse({"id": "T-1", "received": await request.json()}, status_code=201)

    async def _slow(self, request: Request) -> Response:
        deadline = time.monotonic() + self.slow_s
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.02))
            if await request.is_disconnected():
                break
        return JSONResponse({"done": True})

    async def _huge(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(HUGE_BYTES // len(CHUNK)):
                if await request.is_disconnected():
                    return  # the client stopped reading and hung up
                self.huge_sent += len(CHUNK)
                yield CHUNK

        headers = {"content-length": str(HUGE_BYTES)} if "declared" in request.query_params else {}
        return StreamingResponse(chunks(), media_type="text/plain", headers=headers)

    async def _fail(self, _: Request) -> Response:
        return JSONResponse({"error": "boom"}, status_code=500)

    async def _redirect(self, _: Request) -> Response:
        return RedirectResponse(self.redirect_to, status_code=302)

    async def _whoami(self, request: Request) -> Response:
        return JSONResponse(
            {
                "authorization": request.headers.get("authorization"),
                "x-api-key": request.headers.get("x-api-key"),
            }
        )

    async def _logo(self, _: Request) -> Response:
        return Response(PNG, media_type="image/png")

    async def _health(self, _: Request) -> Response:
        return JSONResponse({"ok": True})


def _get(operation_id: str, summary: str, **extra: Any) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "responses": {"200": {"$ref": "#/components/responses/Json"}},
            **extra,
        }
    }


_PATHS: dict[str, Any] = {
    "/orders/{id}": {
        "parameters": [{"$ref": "#/components/parameters/OrderId"}],
        **_get("getOrder", "Look up one order by its id."),
        "head": {"operationId": "checkOrder", "responses": {"200": {"description": "exists"}}},
    },
    "/orders": _get(
        "listOrders",
        "List orders.",
        parameters=[
            {
                "name": "status",
                "in": "query",
                "description": "Only orders with this status.",
                "schema": {"$ref": "#/components/schemas/Status"},
            },
            {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
            {"name": "Accept", "in": "header", "schema": {"type": "string"}},
        ],
    ),
    "/tickets": {
        "post": {
            "operationId": "createTicket",
            "summary": "Open a support ticket.",
            "requestBody": {"$ref": "#/components/requestBodies/NewTicket"},
            "responses": {"201": {"$ref": "#/components/responses/Json"}},
        }
    },
    "/categories": {
        "post": {
            "operationId": "createCategory",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Category"}}
                },
            },
            "responses": {"201": {"$ref": "#/components/responses/Json"}},
        }
    },
    "/slow": _get("slowOp", "Answers slowly."),
    "/huge": _get(
        "hugeOp",
        "Answers 50 MB.",
        parameters=[{"name": "declared", "in": "query", "schema": {"type": "boolean"}}],
    ),
    "/fail": _get("failOp", "Always fails."),
    "/redirect": _get("redirectOp", "Redirects."),
    "/whoami": _get("whoami", "Who the caller is."),
    "/logo.png": _get("getLogo", "The logo."),
    "/health": {"get": {"responses": {"200": {"description": "ok"}}}},
}

_COMPONENTS: dict[str, Any] = {
    "parameters": {
        "OrderId": {
            "name": "id",
            "in": "path",
            "required": True,
            "description": "The order's id.",
            "schema": {"type": "string"},
        }
    },
    "schemas": {
        "Status": {"type": "string", "enum": ["open", "shipped", "cancelled"]},
        "Order": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "readOnly": True},
                "status": {"$ref": "#/components/schemas/Status"},
            },
        },
        "NewTicket": {
            "type": "object",
            "required": ["subject"],
            "properties": {
                "subject": {"type": "string", "maxLength": 200},
                "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                "order": {"$ref": "#/components/schemas/Order"},
            },
        },
        "Category": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Category"}},
            },
        },
    },
    "requestBodies": {
        "NewTicket": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewTicket"}}},
        }
    },
    "responses": {"Json": {"description": "A JSON answer", "content": {"application/json": {}}}},
}
