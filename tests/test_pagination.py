"""One pagination style on every list (issue 17, found 3): a keyset page `{items, next_cursor, next}` taking
`cursor` and `limit`, whose `next` link works directly and through the gateway, and whose cursors a list refuses
when it did not issue them."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient

from tests.monitoring.api.helpers import admin, borrowers, officer, register  # noqa: F401
from tests.support import every_page

# Lists that are a fixed set of rows by definition (one row per segment, per month, per cluster), not a
# collection that grows: they stay plain arrays. Exact lookup is a POST answering the few customers matching
# one identity number, phone or email.
FIXED_SETS = {
    ("get", "/api/customer/segments"), ("get", "/api/customer/clusters"),
    ("get", "/api/customer/satisfaction/trend"), ("get", "/api/monitoring/portfolio/vintages"),
    # Reports: one cell per loyalty band and risk, one point per month; and a ranking (the nearest N).
    ("get", "/api/customer/relationship/loyalty-segments"), ("get", "/api/customer/relationship/figures"),
    ("get", "/api/customer/products/{product_code}/look-alikes"),
    # The few products one customer holds.
    ("get", "/api/customer/customers/{customer_id}/products"),
}
# Streams, not lists: the event feeds are read by sequence number (`after`) by the gateway's relay, which re-reads
# behind its cursor; the loan outcomes page carries the counts of loans it left out beside the page.
STREAMS = {("get", "/api/scoring/events"), ("get", "/api/monitoring/events")}
PAGE_WITH_COUNTS = {("get", "/api/monitoring/loans/outcomes")}


def _resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_list_in_the_merged_api_is_the_same_cursor_page(suite):  # noqa: ANN001
    document = suite.client.get("/api/openapi.json", headers=admin(suite)).json()
    assert not document.get("x-unavailable-services")
    failures, pages = [], 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = {p["name"] for p in operation.get("parameters", [])}
            if "offset" in parameters:
                failures.append(f"{method.upper()} {path} takes an offset")
            ok = next((operation["responses"][s] for s in ("200", "201") if s in operation["responses"]), None)
            content = (ok or {}).get("content", {}).get("application/json")
            if content is None:
                continue
            schema = _resolve(document, content["schema"])
            if schema.get("type") == "array":
                if (method, path) not in FIXED_SETS and method == "get":
                    failures.append(f"{method.upper()} {path} answers a bare array")
                continue
            properties = schema.get("properties", {})
            if "next_cursor" not in properties and not ("items" in properties and method == "get"):
                continue
            if (method, path) in STREAMS:
                continue
            if (method, path) in PAGE_WITH_COUNTS:
                properties = {k: v for k, v in properties.items() if not k.startswith("excluded_")}
            pages += 1
            if set(properties) != {"items", "next_cursor", "next"} or \
                    _resolve(document, properties["items"]).get("type") != "array":
                failures.append(f"{method.upper()} {path} pages as {sorted(properties)}")
            if method != "get" or not {"cursor", "limit"} <= parameters:
                failures.append(f"{method.upper()} {path} takes {sorted(parameters)}, not cursor and limit")
    assert pages >= 25
    assert not failures, "\n".join(failures)


def test_a_list_of_more_than_a_page_is_read_once_each_in_order_directly_and_through_the_gateway(suite, borrowers):  # noqa: ANN001, F811
    customer_id = borrowers.new_customer("BJ001")
    booked = [register(suite, borrowers, customer_id=customer_id)["id"] for _ in range(5)]
    headers = officer(suite)
    direct = every_page(suite.direct["monitoring"], f"/loans?customer_id={customer_id}&limit=2", headers, limit=2)
    through = every_page(suite.client, f"/api/monitoring/loans?customer_id={customer_id}&limit=2", headers,
                         limit=2)
    assert [loan["id"] for loan in direct] == [loan["id"] for loan in through] == booked
    first = suite.client.get("/api/monitoring/loans", params={"customer_id": customer_id, "limit": 2},
                             headers=headers).json()
    assert first["next"].startswith("/api/monitoring/loans?") and "customer_id=" in first["next"]
    # A page only ever holds what the caller may see: another branch's officer pages through nothing.
    assert every_page(suite.client, f"/api/monitoring/loans?customer_id={customer_id}&limit=2",
                      officer(suite, "SH002"), limit=2) == []


def test_the_customer_and_gateway_lists_page_the_same_way(suite):  # noqa: ANN001
    products = every_page(suite.client, "/api/customer/products?limit=2", admin(suite), limit=2)
    codes = [p["code"] for p in products]
    assert codes == sorted(set(codes)) and len(codes) > 2
    users = every_page(suite.client, "/auth/users?limit=1", admin(suite), limit=1)
    assert [u["username"] for u in users] == sorted({u["username"] for u in users})


def _cursor(tag_of: str, *values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps([tag_of, *values]).encode()).decode()


@pytest.mark.parametrize("path", ["/api/monitoring/loans", "/api/monitoring/alerts", "/api/scoring/models",
                                  "/api/scoring/applications", "/api/customer/customers", "/api/customer/products",
                                  "/api/customer/tasks", "/auth/users"])
def test_a_forged_or_foreign_cursor_is_a_422_naming_query_cursor(suite, path):  # noqa: ANN001
    other = suite.client.get("/api/monitoring/rules", params={"limit": 1}, headers=admin(suite)).json()
    for cursor in ("not-a-cursor", _cursor("deadbeef", "x"), other["next_cursor"], "e30", "WzFd"):
        response = suite.client.get(path, params={"cursor": cursor}, headers=admin(suite))
        assert response.status_code == 422, (path, cursor, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["query.cursor"], response.text


def test_a_crafted_cursor_with_an_odd_timestamp_is_read_as_utc_or_refused_never_a_server_error(  # noqa: ANN001
        suite, borrowers):  # noqa: F811
    """A cursor is not signed: one made by hand with the list's own tag may carry a time without an offset (every
    timestamp column refuses a naive value) or one that leaves the calendar once moved to UTC."""
    document = suite.client.get("/api/openapi.json", headers=admin(suite)).json()
    client = TestClient(suite.gateway, base_url="http://gateway", raise_server_exceptions=False)
    lists = [path for path, operations in document["paths"].items() if "{" not in path and
             {"cursor", "limit"} <= {p["name"] for p in operations.get("get", {}).get("parameters", [])}]
    assert "/api/monitoring/loans" in lists and "/webhooks/deliveries" in lists
    failures = []
    for path in lists:
        route = re.sub(r"^/api/[a-z]+", "", path)
        tag = hashlib.sha256(route.encode()).hexdigest()[:8]
        for when in ("2026-01-01T00:00:00", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+05:00"):
            response = client.get(path, params={"cursor": _cursor(tag, when, "x")}, headers=admin(suite))
            if response.status_code not in (200, 422):
                failures.append(f"{path} {when}: {response.status_code}")
    assert not failures, "\n".join(failures)
    # Read as UTC: a page after 2026-01-01 00:00 UTC holds the loans registered since.
    register(suite, borrowers)
    tag = hashlib.sha256(b"/loans").hexdigest()[:8]
    page = client.get("/api/monitoring/loans", params={"cursor": _cursor(tag, "2026-01-01T00:00:00", "")},
                      headers=admin(suite))
    assert page.status_code == 200 and page.json()["items"], page.text
