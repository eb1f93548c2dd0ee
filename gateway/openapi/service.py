"""One OpenAPI document for partners: the gateway's own routes plus every service's, as reached through it.

Generators name a class after a schema's `title`, so every schema is renamed with its service as prefix, title
included (`CustomerCreate` stays, `LoanSummary` of monitoring becomes `MonitoringLoanSummary`), except the
kernel's schemas that every service shares unchanged (`ProblemDetail`, `FieldError`, …): those are kept once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

_REF_PREFIX = "#/components/schemas/"
# The whole API, every service included: its document, and a page to read and try it (public, as the document is).
API_DOCUMENT_PATH = "/api/openapi.json"
API_DOCS_PATH = "/api/docs"


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


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(_REF_PREFIX):]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def _shared(schemas: dict[str, Any], target: dict[str, Any]) -> set[str]:
    """The schemas the document already holds under the same name, unchanged, with all they refer to shared too."""
    shared = {name for name, schema in schemas.items() if target.get(name) == schema}
    while unshared := {name for name in shared if not _refs(schemas[name]) <= shared}:
        shared -= unshared
    return shared


def _prefixed(name: str, prefix: str, schemas: dict[str, Any], target: dict[str, Any]) -> str:
    """`prefix` + `name`, unless `name` already starts with it (and no other schema would be renamed to it)."""
    keep = name.startswith(prefix) and name[len(prefix):] not in schemas and name not in target
    return name if keep else f"{prefix}{name}"


def merge_service(document: dict[str, Any], service: str, spec: dict[str, Any]) -> None:
    """Add one service's paths under /api/{service}; its schemas renamed so that names and titles cannot collide."""
    schemas = spec.get("components", {}).get("schemas", {})
    target = document.setdefault("components", {}).setdefault("schemas", {})
    shared = _shared(schemas, target)
    prefix = service.capitalize()
    rename = {name: _prefixed(name, prefix, schemas, target) for name in schemas if name not in shared}
    spec = _rename_refs(spec, rename)
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        if name in rename:
            target[rename[name]] = {**schema, "title": rename[name]}
    _merge_security(document, spec)
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["tags"] = [f"{service}: {tag}" for tag in operation.get("tags", [service])]
        document.setdefault("paths", {})[f"/api/{service}{path}"] = operations


def _merge_security(document: dict[str, Any], spec: dict[str, Any]) -> None:
    """One scheme for the whole document, the gateway's (its token URL is the gateway's own path), listing the
    scopes of every service."""
    ours = document.get("components", {}).get("securitySchemes", {})
    for name, scheme in spec.get("components", {}).get("securitySchemes", {}).items():
        if name not in ours:
            continue
        for flow, theirs in scheme.get("flows", {}).items():
            ours[name].get("flows", {}).get(flow, {}).setdefault("scopes", {}).update(theirs.get("scopes", {}))


async def aggregate(own: dict[str, Any], services: Sequence[str],
                    get: Callable[[str, str], Awaitable[httpx.Response]]) -> dict[str, Any]:
    """The gateway's document with each service's merged in; `get(service, path)` fetches from a replica."""
    components = own.get("components", {})
    document = {**own, "paths": dict(own.get("paths", {})), "components": {
        **components, "schemas": dict(components.get("schemas", {})),
        "securitySchemes": {name: {**scheme, "flows": {flow: {**value, "scopes": dict(value.get("scopes", {}))}
                                                       for flow, value in scheme.get("flows", {}).items()}}
                            for name, scheme in components.get("securitySchemes", {}).items()}}}

    async def fetch(name: str) -> tuple[str, dict[str, Any] | None]:
        try:
            response = await get(name, "/openapi.json")
            response.raise_for_status()
            return name, response.json()
        except (httpx.HTTPError, ValueError):
            return name, None

    unavailable = []
    for name, spec in await asyncio.gather(*(fetch(name) for name in services)):
        if spec is None:
            unavailable.append(name)
        else:
            merge_service(document, name, spec)
    if unavailable:
        document["x-unavailable-services"] = unavailable
    return document
