"""The OpenAPI document, with error responses declared as ``application/problem+json`` (what is sent)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from .errors import PROBLEM_JSON

#: Request models of routes that read their own body (to parse it off the event loop); their schemas join the
#: document's components so the routes can refer to them.
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def body_doc(model: type[BaseModel], examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` documenting a route's JSON body as ``model`` when the route parses the body itself."""
    _BODY_MODELS[model.__name__] = model
    content: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    if examples:
        content["examples"] = examples
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _add_bodies(schema, getattr(app.state, "body_models", ()))
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and "application/json" in content:
                        response["content"] = {PROBLEM_JSON: content["application/json"]}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _BODY_MODELS.items():
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for part, definition in body.pop("$defs", {}).items():
                components.setdefault(part, definition)
            components.setdefault(name, body)
        app.openapi_schema = schema
    return app.openapi_schema


def _add_bodies(schema: dict[str, Any], models: tuple[type[BaseModel], ...]) -> None:
    """Bodies that routes read from raw bytes (``http.wire.read_body``) and document by ``$ref``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in body.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault(model.__name__, body)
