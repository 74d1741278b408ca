"""The OpenAPI 3.1 document, generated from the route table the server registers."""

from __future__ import annotations

import re
from typing import Any

from teller.http.routing import Route
from teller.http.schemas import COMPONENTS, ERROR

__all__ = ["build_openapi"]

_ERRORS_COMMON = {429: "rate limited"}
_ERRORS_SECURED = {401: "not authenticated"}
_ERRORS_BODY = {400: "malformed input", 413: "body too large", 422: "invalid values"}
_DESCRIPTIONS = {
    200: "OK", 201: "created", 202: "accepted", 400: "malformed input", 401: "not authenticated",
    403: "not allowed", 404: "not found or not yours", 409: "conflict", 413: "body too large",
    422: "invalid values", 429: "rate limited", 502: "upstream failing", 503: "unavailable",
}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, schema in route.responses.items():
        content_schema = schema if schema is not None else (ERROR if status >= 400 else None)
        entry: dict[str, Any] = {"description": _DESCRIPTIONS.get(status, str(status))}
        if content_schema is not None:
            entry["content"] = {route.content_type if status < 300 else "application/json": {"schema": content_schema}}
        responses[str(status)] = entry
    extra = dict(_ERRORS_COMMON) if route.path.startswith(("/api/", "/ops/")) else {}
    if route.security:
        extra.update(_ERRORS_SECURED)
    if route.request_schema is not None:
        extra.update(_ERRORS_BODY)
    for status, text in extra.items():
        responses.setdefault(str(status), {"description": text, "content": {"application/json": {"schema": ERROR}}})
    op: dict[str, Any] = {
        "summary": route.summary, "tags": [route.tag],
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', route.path).strip('_') or 'root'}",
        "responses": responses,
    }
    if route.params:
        op["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.required or p.where == "path", "schema": p.schema,
             **({"description": p.description} if p.description else {})}
            for p in route.params
        ]
    if route.request_schema is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.request_schema}}}
    if route.security == "user":
        op["security"] = [{"bearerAuth": []}]
    elif route.security == "ops":
        op["security"] = [{"opsToken": []}]
    return op


def build_openapi(routes: list[Route], *, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.in_schema:
            paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Teller", "version": version, "description": "Custody and payments API for the Mini App"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "opsToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
