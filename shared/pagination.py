"""The one pagination every list shares: keyset pages with an opaque cursor and a link to the next page.

A list orders its rows by a unique sort key (e.g. (created_at, id)); a page is the first `limit` rows after the
cursor, which packs the sort key of the last row of the page before. No offsets: a page never skips or repeats a
row while rows are added, and reading deep costs the same as reading the first page. A cursor carries a tag of the
route that issued it, so one from another list (or made up) is a 422 naming `query.cursor`.
"""

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_

from shared.errors import field_problem

T = TypeVar("T")

MAX_CURSOR_LENGTH = 1000
# A prefix a proxy may mount a service under (the gateway sends `/api/<service>`); anything else is ignored, so a
# link never points at another host (`//elsewhere`) whatever a caller puts in the header.
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    next: str | None = Field(description="The next page: this request's path and query with `cursor` set "
                                         "(through the gateway when called through it); null on the last page.",
                             examples=["/api/monitoring/loans?limit=50&cursor=WyJhYjEyIiwgIjIwMjYtMDEtMDEiXQ=="])


def forwarded_prefix(request: Request) -> str:
    """Where a proxy mounts this service (`x-forwarded-prefix`), so links resolve through it; '' when direct."""
    prefix = request.headers.get("x-forwarded-prefix", "")
    return prefix if _PREFIX.fullmatch(prefix) else ""


def _foreign() -> Exception:
    return field_problem("query.cursor", "is not a cursor this list issued")


@dataclass(frozen=True)
class PageRequest:
    """What a list was asked for: the cursor, how many rows, and the address to link the next page from. Plain
    data, so a service's queries take it without knowing the web framework."""

    cursor: str | None
    limit: int
    route: str = ""  # the route template: a cursor is valid only on the route that issued it
    path: str = ""  # the path as the caller reached it, prefix included
    query: tuple[tuple[str, str], ...] = ()  # the caller's query parameters but `cursor`

    def encode(self, values: Sequence[Any]) -> str:
        packed = json.dumps([self._tag(), *(v.isoformat() if isinstance(v, date) else v for v in values)])
        return base64.urlsafe_b64encode(packed.encode()).decode().rstrip("=")

    def after(self, *types: type) -> list[Any] | None:
        """The sort key the cursor starts after, each value as `types` says; None without a cursor."""
        if self.cursor is None:
            return None
        try:
            values = json.loads(base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4)))
        except (ValueError, binascii.Error):
            raise _foreign() from None
        if not isinstance(values, list) or len(values) != len(types) + 1 or values[0] != self._tag():
            raise _foreign()
        return [_typed(value, kind) for value, kind in zip(values[1:], types, strict=True)]

    def link(self, cursor: str) -> str:
        return f"{self.path}?{urlencode([*self.query, ('cursor', cursor)])}"

    def page(self, rows: Sequence[Any], key: Callable[[Any], Sequence[Any]],
             read: Callable[[list[Any]], list[Any]] = list) -> Page[Any]:
        """The page from rows fetched with one row more than `limit` (which says whether another page exists)."""
        shown = list(rows[:self.limit])
        cursor = self.encode(key(shown[-1])) if len(rows) > self.limit else None
        return Page[Any](items=read(shown), next_cursor=cursor, next=self.link(cursor) if cursor else None)

    def _tag(self) -> str:
        return hashlib.sha256(self.route.encode()).hexdigest()[:8]


def _typed(value: Any, kind: type) -> Any:
    """A cursor value as its column holds it; anything a database could not compare with (a number past 64 bits,
    a NUL in a text) is refused here rather than by the database."""
    if kind in (datetime, date) and isinstance(value, str):
        try:
            parsed = kind.fromisoformat(value)
            # Every timestamp column holds UTC and refuses a naive bind: a crafted cursor's time is read as UTC.
            if isinstance(parsed, datetime):
                parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            return parsed
        except (ValueError, OverflowError):
            raise _foreign() from None
    if kind is int and type(value) is int and -2**63 <= value < 2**63:
        return value
    if kind is str and isinstance(value, str) and "\x00" not in value:
        return value
    raise _foreign()


@cache
def paged(default: int = 50, maximum: int = 500) -> Any:
    """The `cursor` and `limit` query parameters of a list, as a PageRequest (`limit` from 1 to `maximum`)."""

    def page_request(
        request: Request,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description=(
            "`next_cursor` of the page before; omit for the first page."))] = None,
        limit: Annotated[int, Query(ge=1, le=maximum, description="Items on the page at most.")] = default,
    ) -> PageRequest:
        route = request.scope.get("route")
        return PageRequest(cursor=cursor, limit=limit, route=getattr(route, "path", request.url.path),
                           path=forwarded_prefix(request) + request.url.path,
                           query=tuple((k, v) for k, v in request.query_params.multi_items() if k != "cursor"))

    return Annotated[PageRequest, Depends(page_request)]


def _python_type(column: Any) -> type:
    """What a column's values are in Python: a TypeDecorator (e.g. an aware timestamp) answers by its impl."""
    for kind in (column.type, getattr(column.type, "impl", None)):
        try:
            python_type = kind.python_type
        except (AttributeError, NotImplementedError):
            continue
        if python_type is not object:
            return python_type
    return str


def keyset(session: Any, query: Any, paging: PageRequest, *columns: Any, descending: bool = False,
           key: Callable[[Any], Sequence[Any]] | None = None,
           read: Callable[[list[Any]], list[Any]] = list) -> Page[Any]:
    """A page of `query` ordered by `columns` (together unique, e.g. created_at then id), starting after the
    cursor. Rows are what `session.exec(query)` yields; `key` gives a row's values of `columns` (by default its
    attributes of the columns' names), `read` turns a page of rows into the items shown. A mixed order (worst
    first, then oldest) is one direction over negated columns."""
    after = paging.after(*(_python_type(c) for c in columns))
    if after is not None:
        query = query.where(_beyond(list(columns), after, descending))
    order = [c.desc() for c in columns] if descending else list(columns)
    rows = list(session.exec(query.order_by(*order).limit(paging.limit + 1)))
    return paging.page(rows, key or (lambda row: [getattr(row, c.key) for c in columns]), read)


def _beyond(columns: list[Any], values: list[Any], descending: bool) -> Any:
    """Rows after `values` in the order of `columns`: (a, b) > (x, y) is a > x or (a = x and b > y)."""
    first, value = columns[0], values[0]
    past = first < value if descending else first > value
    if len(columns) == 1:
        return past
    return or_(past, and_(first == value, _beyond(columns[1:], values[1:], descending)))


def page_of(items: Sequence[Any], paging: PageRequest, key: Callable[[Any], tuple[Any, ...]], *types: type,
            descending: bool = False, read: Callable[[list[Any]], list[Any]] = list) -> Page[Any]:
    """A page of a list already in memory (a list a rule computes rather than a query), keyset on `key` (unique
    per item, values of `types`), so its cursors work exactly as a query's."""
    after = paging.after(*types)
    ordered = sorted(items, key=key, reverse=descending)
    if after is not None:
        start = tuple(after)
        ordered = [i for i in ordered if (key(i) < start if descending else key(i) > start)]
    return paging.page(ordered[:paging.limit + 1], key, read)


def every_item(fetch: Callable[[PageRequest], Page[Any]], limit: int = 200) -> list[Any]:
    """Every item of a paged query, page after page (for a batch or the command line, which have no request)."""
    items: list[Any] = []
    paging = PageRequest(cursor=None, limit=limit, route="every_item")
    while True:
        page = fetch(paging)
        items += page.items
        if page.next_cursor is None:
            return items
        paging = PageRequest(cursor=page.next_cursor, limit=limit, route="every_item")
