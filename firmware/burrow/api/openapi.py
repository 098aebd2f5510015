"""The OpenAPI 3.1 document, generated from the route registry and its schemas.

Nothing here is written by hand per endpoint: paths, roles, parameters, bodies and response
shapes all come from ``Api.routes`` and the schema objects the handlers validate with. The
responses are ``Api.responses_of(route)``: the route's own (what its handler answers) and those
the wrapper answers for it (Route.wrapper_statuses); the wrapper logs any answer outside them,
so the document and the server cannot drift apart unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import reason
from .schema import Field, Obj


@dataclass(frozen=True)
class Media:
    """A response that is not JSON, for a route's ``responses``: its media type (documented as
    the response's content, a string) and what it holds, e.g.
    ``Media("text/html", "an HTML fragment")``."""

    media_type: str
    description: str


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "code", "message", "timestamp"],
    "properties": {
        "error": {"type": "string", "description": "reason phrase or short error code"},
        "code": {"type": "integer", "description": "HTTP status"},
        "message": {"type": "string"},
        "details": {"description": "optional: e.g. [{field, message}] for validation errors"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}


def _schema_ref(schema, components: dict) -> dict:
    if isinstance(schema, Obj):
        components.setdefault(schema.name, schema.json_schema())
        return schema.ref()
    if isinstance(schema, Field):
        return schema.json_schema()
    if isinstance(schema, dict):
        return schema
    return {}


def build(api, version: str) -> dict:
    components: dict = {"Error": ERROR_SCHEMA}
    paths: dict = {}
    for route in api.routes:
        op: dict = {"summary": route.summary, "tags": route.tags or ["misc"],
                    "operationId": f"{route.method.lower()}{route.openapi_path.replace('/', '_').replace('{', '').replace('}', '')}",
                    "x-role": route.role}
        if route.role == "public":
            op["security"] = []
        params = []
        for kind, name in route.path_params:
            declared = route.params.get(name)
            params.append({"name": name, "in": "path", "required": True,
                           "schema": declared.json_schema() if declared is not None
                           else {"type": "integer" if kind == "int" else "string"}})
        if route.query is not None:
            for name, field in route.query.fields.items():
                params.append({"name": name, "in": "query", "required": field.required,
                               "schema": field.json_schema()})
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _schema_ref(route.body, components)}}}
        elif route.body_media is not None:
            op["requestBody"] = {"required": True, "content": {
                route.body_media: {"schema": {"type": "string", "format": "binary"}}}}
        responses = {}
        for status, schema in sorted(api.responses_of(route).items()):
            if isinstance(schema, Media):
                responses[str(status)] = {"description": schema.description, "content": {
                    schema.media_type: {"schema": {"type": "string"}}}}
                continue
            entry = {"description": schema if isinstance(schema, str) else reason(status)}
            if schema is not None and not isinstance(schema, str):
                entry["content"] = {"application/json": {"schema": _schema_ref(schema, components)}}
            elif status >= 400:  # every error answer has the one shape
                entry["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
            responses[str(status)] = entry
        op["responses"] = responses
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Burrow API", "version": version,
                 "description": "REST API of the Burrow DNS sinkhole. Roles: public, viewer "
                                "(read-only), admin (everything), self (own account)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "an access token from /api/auth/login, or an API token"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "burrow_session"}}},
        "security": [{"bearer": []}, {"cookie": []}],
    }
