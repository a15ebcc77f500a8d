"""T1: a call that answers itself (the event stream's WebSocket) is declared like any other,
so it is in the OpenAPI document and says who may call it."""

from __future__ import annotations

from aiohttp import web
from openapi_spec_validator import validate

from services.server.auth import Access, access_of
from services.server.endpoints import Call, Endpoints, endpoint_of
from services.server.openapi import document

api = Endpoints()


@api("GET", "/stream", summary="A stream", access=Access.CUSTOMER, status=101)
async def stream(call: Call, after: int | None = None) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(call.request)
    return socket


def test_t1_a_call_that_answers_itself_is_declared_and_documented() -> None:
    app = web.Application()
    app.router.add_routes(api.routes)
    [route] = [r for r in api.routes if isinstance(r, web.RouteDef)]
    endpoint = endpoint_of(route.handler)
    assert endpoint is not None and access_of(route.handler) is Access.CUSTOMER
    doc = document(app)
    validate(doc)
    operation = doc["paths"]["/stream"]["get"]
    assert operation["x-access"] == "customer" and "content" not in operation["responses"]["101"]
    assert [p["name"] for p in operation["parameters"]] == ["after"]
