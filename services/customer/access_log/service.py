"""Recording and reading who saw which customer's personal data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import JSON, Connection, bindparam, text
from sqlmodel import Session, select

from services.customer.access_log.models import AccessAction, PiiAccess, PiiAccessRead
from services.customer.common import connection_of, utcnow
from services.customer.customers.models import Customer
from shared.audit import Entry, entry, note
from shared.pagination import Page, PageRequest, keyset
from shared.auth.tokens import Principal
from shared.logging import request_id_var


# One INSERT whatever the number of customers seen, with the ids as one array (PostgreSQL) or one JSON list
# (SQLite): a single round trip, atomic even when the read runs in autocommit, and a fixed text that is parsed
# once. (A multi-row VALUES insert is compiled afresh for every request: 15 ms for a page of 50 customers.) On
# PostgreSQL it goes straight to the driver, the same way as the reads in customers/service.py.
_COLUMNS = "customer_id, actor, roles, action, via, request_id, reason, at"
_POSTGRES_INSERT = (f"INSERT INTO pii_access_log ({_COLUMNS}) SELECT unnest(%(ids)s::varchar[]), %(actor)s, "
                    "%(roles)s, %(action)s, %(via)s, %(request_id)s, %(reason)s, %(at)s")
_SQLITE_INSERT = text(f"INSERT INTO pii_access_log ({_COLUMNS}) SELECT value, :actor, :roles, :action, :via, "
                      ":request_id, :reason, :at FROM json_each(:ids)").bindparams(
    bindparam("ids", type_=JSON), bindparam("at", type_=PiiAccess.__table__.c.at.type))


def record_access(session: Session | Connection, principal: Principal, customer_ids: Iterable[str],
                  action: AccessAction, via: str, reason: str | None = None) -> None:
    """Appends one access-log row per customer, committed with (or, in autocommit, before) the read's answer."""
    ids = list(customer_ids)
    if not ids:
        return
    params = {"ids": ids, "actor": principal.sub, "roles": ",".join(principal.roles),
              "action": AccessAction(action).value, "via": via, "request_id": request_id_var.get(), "reason": reason,
              "at": utcnow()}
    connection = connection_of(session)
    if connection.dialect.name == "postgresql":
        with connection.connection.cursor() as cursor:
            cursor.execute(_POSTGRES_INSERT, params)
    else:
        connection.execute(_SQLITE_INSERT, params)


def read_entry(via: str, full: Sequence[str], masked: Sequence[str], **detail: str) -> Entry | None:
    """The audit trail's `read` row for a read that returned customers' personal data: which, in full or masked
    (and for a reveal, which field and why); None when it returned none."""
    ids = [*full, *masked]
    if not ids:
        return None
    return entry("read", Customer.__tablename__, ids[0] if len(ids) == 1 else None, None, None,
                 {"via": via, "full": list(full), "masked": list(masked), **detail})


def audit_read(session: Session | Connection, via: str, full: Sequence[str], masked: Sequence[str],
               **detail: str) -> None:
    """`read_entry` in the read's transaction, or committed before it answers."""
    item = read_entry(via, full, masked, **detail)
    if item is not None:
        note(session, Customer.__table__, item)


def list_access(session: Session, paging: PageRequest, *, customer_id: str | None, actor: str | None,
                since: datetime | None, until: datetime | None) -> Page[PiiAccessRead]:
    query = select(PiiAccess)
    if customer_id:
        query = query.where(PiiAccess.customer_id == customer_id)
    if actor:
        query = query.where(PiiAccess.actor == actor)
    if since:
        query = query.where(PiiAccess.at >= since)
    if until:
        query = query.where(PiiAccess.at < until)
    # Newest first; ids grow with time so the id alone is a stable sort key.
    return keyset(session, query, paging, PiiAccess.id, descending=True, read=lambda rows: [
        PiiAccessRead(id=r.id, customer_id=r.customer_id, actor=r.actor, roles=r.roles.split(","), action=r.action,
                      via=r.via, request_id=r.request_id, reason=r.reason, at=r.at) for r in rows])
