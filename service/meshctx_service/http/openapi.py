"""The OpenAPI document, with error responses declared as ``application/problem+json`` (what is sent)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from .errors import PROBLEM_JSON


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
