"""A zero-latency HTTP service described by OpenAPI, for the tool benchmark, in its own process
(so that its CPU is not counted with the caller's).

`python -m bench.tools_server PORT_FILE` binds 127.0.0.1 on a free port, writes the port to
PORT_FILE and serves `GET /openapi.json` (one operation, getOrder) and `GET /orders/{id}` (a
small fixed JSON answer). A bare ASGI app: its cost stays small and identical for every caller.
"""

from __future__ import annotations

import json
import sys

from bench.asgi_server import Receive, Scope, Send, read_body, respond, serve

DOCUMENT = json.dumps(
    {
        "openapi": "3.1.0",
        "info": {"title": "Orders", "version": "1"},
        "paths": {
            "/orders/{id}": {
                "get": {
                    "operationId": "getOrder",
                    "summary": "Look up one order by its id.",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": {"description": "The order"}},
                }
            }
        },
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
    }
).encode()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await read_body(receive)
    path = scope["path"]
    if scope["method"] == "GET" and path == "/openapi.json":
        await respond(send, 200, DOCUMENT)
    elif scope["method"] == "GET" and path.startswith("/orders/"):
        order = path.removeprefix("/orders/")
        answer = {"id": order, "status": "shipped", "items": 3, "total": "42.50", "currency": "EUR"}
        await respond(send, 200, json.dumps(answer, indent=2).encode())
    else:
        await respond(send, 404, b'{"error": "not found"}')


if __name__ == "__main__":
    serve(app, sys.argv[1])
