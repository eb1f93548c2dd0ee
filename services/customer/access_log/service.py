"""Recording and reading who saw which customer's personal data."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session, select

from services.customer.access_log.models import AccessAction, PiiAccess, PiiAccessRead
from services.customer.common import Page, decode_cursor, encode_cursor, utcnow
from shared.auth.tokens import Principal
from shared.logging import request_id_var


def record_access(session: Session, principal: Principal, customer_ids: Iterable[str], action: AccessAction,
                  via: str) -> None:
    now = utcnow()
    rows = [{"customer_id": cid, "actor": principal.sub, "roles": ",".join(principal.roles), "action": action,
             "via": via, "request_id": request_id_var.get(), "at": now} for cid in customer_ids]
    if rows:
        # One multi-row INSERT: a single round trip, and atomic even when the read runs in autocommit.
        session.execute(insert(PiiAccess).values(rows))


def list_access(session: Session, *, customer_id: str | None, actor: str | None, since: datetime | None,
                until: datetime | None, cursor: str | None, limit: int) -> Page[PiiAccessRead]:
    query = select(PiiAccess)
    if customer_id:
        query = query.where(PiiAccess.customer_id == customer_id)
    if actor:
        query = query.where(PiiAccess.actor == actor)
    if since:
        query = query.where(PiiAccess.at >= since)
    if until:
        query = query.where(PiiAccess.at < until)
    if cursor:
        # Newest first; ids grow with time so the id alone is a stable cursor.
        (last_id,) = decode_cursor(cursor, 1)
        query = query.where(PiiAccess.id < int(last_id))
    rows = session.exec(query.order_by(PiiAccess.id.desc()).limit(limit + 1)).all()
    items = [PiiAccessRead(id=r.id, customer_id=r.customer_id, actor=r.actor, roles=r.roles.split(","),
                           action=r.action, via=r.via, request_id=r.request_id, at=r.at) for r in rows[:limit]]
    return Page[PiiAccessRead](items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None)
