"""OpenAPI 3.1 document derived from the operations' pydantic models, and Swagger UI.

Query parameters come from the query model's JSON schema (lists: ``style=form,
explode=false``, i.e. comma-separated), bodies and responses from their models; nothing
is written twice. Swagger UI's files come from the ``swagger-ui-py`` package (no CDN).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Invalid parameters (field-level errors)",
    401: "Missing or invalid bearer token",
    403: "Not allowed for this role",
    404: "Not found (or not visible to the caller)",
    412: "If-Match does not match the current version",
    409: "Conflicts with the current state",
    408: "The request body arrived too slowly",
    413: "Request body over the limit",
    415: "Unsupported content type",
    428: "If-Match is required",
}


@dataclass
class Op:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    path_params: dict[str, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    etag: bool = False
    if_match_required: bool = False  # PATCH without If-Match is a 428
    sse: bool = False
    description: str = ""
    status: int = 200  # success status (201 created, 204 no content)


def build_openapi(ops: list[Op], problem: type[BaseModel], prefix: str) -> dict[str, Any]:
    inputs = {m for op in ops for m in (op.query, op.body) if m is not None}
    outputs = {op.response for op in ops if op.response is not None} | {problem}
    keyed = [(m, "validation") for m in inputs] + [(m, "serialization") for m in outputs]
    refs, top = models_json_schema(keyed, ref_template=REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    paths: dict[str, Any] = {}
    for op in ops:
        item = paths.setdefault(prefix + op.path, {})
        item[op.method.lower()] = _operation(op, refs, schemas, problem)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "oadr-vtn discovery and management API",
            "version": "1",
            "description": "DER registry of the OpenADR 2.0b VTN. Bearer JWT; roles "
            "service, aggregator (claim aggregator_id) and prosumer (claim account_id).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(
    op: Op, refs: dict[Any, Any], schemas: dict[str, Any], problem: type[BaseModel]
) -> dict[str, Any]:
    params = [
        {"name": n, "in": "path", "required": True, "description": d, "schema": {"type": "string"}}
        for n, d in op.path_params.items()
    ]
    if op.query is not None:
        params += _query_params(op.query, refs[(op.query, "validation")], schemas)
    if op.etag and op.method == "PATCH":
        params.append({
            "name": "If-Match", "in": "header", "required": op.if_match_required,
            "schema": {"type": "string"}, "description": "ETag from GET",
        })
    if op.sse:
        params.append({
            "name": "Last-Event-ID", "in": "header", "required": False,
            "schema": {"type": "string"}, "description": "resume after this seq",
        })
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.handler.__name__,
        "parameters": params,
        "responses": {},
    }
    if op.description:
        out["description"] = op.description
    if op.body is not None:
        body = refs[(op.body, "validation")]
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body},
                        "application/merge-patch+json": {"schema": body}},
        }
    ok: dict[str, Any] = {"description": {200: "OK", 201: "Created", 204: "No content"}.get(
        op.status, "OK")}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    if op.sse:
        ok["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    if op.etag:
        ok["headers"] = {"ETag": {"schema": {"type": "string"}, "description": "the version"}}
    out["responses"][str(op.status)] = ok
    problem_ref = refs[(problem, "serialization")]
    for status in sorted({400, 401, *op.errors}):
        out["responses"][str(status)] = {
            "description": ERROR_TEXT[status],
            "content": {"application/problem+json": {"schema": problem_ref}},
        }
    return out


def _query_params(
    model: type[BaseModel], ref: dict[str, Any], schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    schema = schemas[ref["$ref"].rsplit("/", 1)[1]] if "$ref" in ref else ref
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": prop}
        if description:
            param["description"] = description
        if _is_array(prop):
            param["style"], param["explode"] = "form", False
        params.append(param)
    return params


def _is_array(prop: dict[str, Any]) -> bool:
    if prop.get("type") == "array":
        return True
    return any(p.get("type") == "array" for p in prop.get("anyOf", []))


# --- Swagger UI -------------------------------------------------------------------------


def swagger_static() -> Path:
    """Swagger UI 5 files shipped by the swagger-ui-py package (renders OpenAPI 3.1)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


SWAGGER_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>oadr-vtn API</title>
<link rel="stylesheet" href="{base}/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{base}/static/swagger-ui-bundle.js"></script>
<script src="{base}/static/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{spec}", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout", persistAuthorization: true}});
</script></body></html>
"""
