"""T1: the server describes its API in an OpenAPI 3.1 document, written from the same
declarations the routes are registered from: every /api/v1 route is in it and nothing else,
and it is valid by the specification's own schema."""

from __future__ import annotations

from aiohttp import ClientSession
from openapi_spec_validator import validate

from services.api import Service
from services.server.app import build_app
from services.server.auth import API_PREFIX
from services.server.endpoints import endpoint_of


async def test_t1_the_openapi_document_lists_every_route_and_is_valid(
    http: ClientSession, base_url: str, svc: Service
) -> None:
    async with http.get(f"{base_url}/api/v1/openapi.json") as response:  # no token needed
        assert response.status == 200
        document = await response.json()
    validate(document)
    described = {
        (method.upper(), API_PREFIX.rstrip("/") + path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    app = build_app(svc)
    registered = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(API_PREFIX)
        and route.method != "HEAD"
    }
    assert described == registered
    undeclared = [
        route.resource.canonical
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(API_PREFIX)
        and endpoint_of(route.handler) is None
    ]
    assert undeclared == []
    operation = document["paths"]["/conversations/{conversation_id}/messages"]["get"]
    assert operation["x-access"] == "customer"
    assert {p["name"]: p["in"] for p in operation["parameters"]} == {
        "conversation_id": "path",
        "before": "query",
        "limit": "query",
    }
    assert document["paths"]["/users"]["post"]["x-access"] == "admin"
    assert document["paths"]["/sessions"]["post"]["security"] == []
