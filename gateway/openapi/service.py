"""One OpenAPI document for partners: the gateway's own routes plus every service's, as reached through it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

_REF_PREFIX = "#/components/schemas/"


def _rename_refs(node: Any, rename: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: (_REF_PREFIX + rename[value[len(_REF_PREFIX):]]
                  if key == "$ref" and isinstance(value, str) and value[len(_REF_PREFIX):] in rename
                  else _rename_refs(value, rename))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rename_refs(item, rename) for item in node]
    return node


def merge_service(document: dict[str, Any], service: str, spec: dict[str, Any]) -> None:
    """Add one service's paths under /api/{service}, its schemas prefixed so names cannot collide."""
    schemas = spec.get("components", {}).get("schemas", {})
    prefix = service.capitalize()
    rename = {name: f"{prefix}{name}" for name in schemas}
    spec = _rename_refs(spec, rename)
    target = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        target[rename[name]] = schema
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["operationId"] = f"{service}_{operation['operationId']}"
                operation["tags"] = [f"{service}: {tag}" for tag in operation.get("tags", [service])]
        document.setdefault("paths", {})[f"/api/{service}{path}"] = operations


async def aggregate(own: dict[str, Any], clients: dict[str, httpx.AsyncClient]) -> dict[str, Any]:
    document = {**own, "paths": dict(own.get("paths", {})), "components": {
        "schemas": dict(own.get("components", {}).get("schemas", {}))}}
    document.setdefault("components", {})["securitySchemes"] = {
        "bearer": {"type": "oauth2", "flows": {"password": {"tokenUrl": "/auth/token", "scopes": {}}}}
    }
    document["security"] = [{"bearer": []}]

    async def fetch(name: str, client: httpx.AsyncClient) -> tuple[str, dict[str, Any] | None]:
        try:
            response = await client.get("/openapi.json")
            response.raise_for_status()
            return name, response.json()
        except (httpx.HTTPError, ValueError):
            return name, None

    unavailable = []
    for name, spec in await asyncio.gather(*(fetch(n, c) for n, c in clients.items())):
        if spec is None:
            unavailable.append(name)
        else:
            merge_service(document, name, spec)
    if unavailable:
        document["x-unavailable-services"] = unavailable
    return document
