"""Importing the outside feeds row by row, and applying the outside rules to the borrowers a file concerns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from services.monitoring.alerts.service import raise_alerts
from services.monitoring.db import insert_ignoring
from services.monitoring.errors import DomainError
from services.monitoring.feeds.models import (
    MAX_FEED_ROWS,
    ROW_MODELS,
    BureauRecord,
    FeedImport,
    FeedImportRead,
    FeedKind,
    FeedRowError,
    FeedRowErrorRead,
    FinancialStatement,
    LegalRecord,
)
from services.monitoring.loans.models import Loan, LoanStatus, new_id
from services.monitoring.rules.engine import Facts
from services.monitoring.rules.models import OUTSIDE_KINDS
from services.monitoring.rules.service import alert_drafts, enabled_rules
from shared.auth.scope import Visibility
from shared.bounds import CONTROL_REFUSED, control_character_in_row
from shared.errors import Problem
from shared.pagination import Page, PageRequest, keyset

TABLES = {FeedKind.BUREAU: BureauRecord.__table__, FeedKind.LEGAL: LegalRecord.__table__,
          FeedKind.FINANCIALS: FinancialStatement.__table__}
# The file's date column -> the stored one, where their names differ.
RENAMED = {"reported_date": "reported_on", "filed_date": "filed_on"}
# Customers looked up or warned on per statement: within every database's limit of bound parameters.
CHUNK = 1000
DATED_BY = {FeedKind.BUREAU: "reported_date", FeedKind.LEGAL: "filed_date", FeedKind.FINANCIALS: "period_end"}


def _parse(feed: FeedKind, text: str) -> list[tuple[int, dict[str, str]]]:
    """The data rows with their line numbers; a header that is not the feed's, or text that is not CSV at all
    (a stray carriage return inside a field), refuses the whole file."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        expected = set(ROW_MODELS[feed].model_fields)
        header = set(reader.fieldnames or ())
        if missing := expected - header:
            raise DomainError("file", f"missing columns: {', '.join(sorted(missing))} "
                                      f"(expected {', '.join(sorted(expected))})")
        if unknown := header - expected:
            raise DomainError("file", f"unknown columns: {', '.join(sorted(unknown))}")
        rows = []
        for row in reader:
            if len(rows) == MAX_FEED_ROWS:
                raise DomainError("file", f"at most {MAX_FEED_ROWS:,} rows a file")
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DomainError("file", f"line {reader.line_num}: not CSV ({exc})") from None
    return rows


def import_feed(session: Session, feed: FeedKind, text: str, *, by: str, scope: Visibility,
                as_of: date) -> FeedImportRead:
    """Store the file's good rows (rows already on file are not stored twice), report each bad row with its line
    and field, and warn on the borrowers it concerns. Does not commit."""
    model = ROW_MODELS[feed]
    errors: list[tuple[int, str, str]] = []
    good: list[tuple[int, Any]] = []
    rows = _parse(feed, text)
    for line, raw in rows:
        if None in raw or any(value is None for value in raw.values()):
            errors.append((line, "line", "wrong number of fields on this line"))
            continue
        if (column := control_character_in_row(raw)) is not None:
            errors.append((line, column, CONTROL_REFUSED))
            continue
        try:
            good.append((line, model.model_validate(raw)))
        except ValidationError as exc:
            first = exc.errors()[0]
            errors.append((line, str(first["loc"][0]) if first["loc"] else "line", first["msg"][:300]))
    named = sorted({row.customer_id for _, row in good})
    known = {customer for start in range(0, len(named), CHUNK) for customer in session.execute(
        sa_select(Loan.customer_id).distinct().where(Loan.customer_id.in_(named[start:start + CHUNK]),
                                                     scope.where(Loan.branch))).scalars()}
    records = []
    import_id = new_id()
    for line, row in good:
        values = row.model_dump(mode="python")
        if row.customer_id not in known:
            errors.append((line, "customer_id", "no loan of this customer that you may see"))
        elif values[DATED_BY[feed]] > as_of:
            errors.append((line, DATED_BY[feed], f"must not be after the business date {as_of.isoformat()}"))
        else:
            records.append({RENAMED.get(k, k): v for k, v in values.items()} | {"id": new_id(),
                                                                                   "import_id": import_id})
    table = TABLES[feed]
    stored = session.execute(insert_ignoring(session, table).returning(table.c.customer_id), records).scalars().all() \
        if records else []
    concerned = sorted({r["customer_id"] for r in records})
    raised = sum(warn_on_outside(session, concerned[start:start + CHUNK], as_of)
                 for start in range(0, len(concerned), CHUNK))
    report = FeedImport(id=import_id, feed=feed.value, uploaded_by=by, rows=len(rows), accepted=len(stored),
                        already_on_file=len(records) - len(stored), rejected=len(errors), alerts_raised=raised)
    session.add(report)
    session.flush()
    if errors:
        session.add_all([FeedRowError(import_id=import_id, row=line, field=field, message=message)
                         for line, field, message in sorted(errors)])
        session.flush()
    return FeedImportRead.model_validate(report)


def _outside_records(session: Session, customer_ids: set[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for feed, table in TABLES.items():
        for row in session.execute(sa_select(table).where(table.c.customer_id.in_(customer_ids))
                                   .order_by(table.c.id)).mappings():
            found.setdefault(row["customer_id"], {}).setdefault(feed.value, []).append(dict(row))
    return found


def warn_on_outside(session: Session, customer_ids: Iterable[str], day: date) -> int:
    """Apply the enabled outside-feed rules to each active loan of these borrowers, on every record on file for
    them (one alert per record or statement: re-importing raises nothing new)."""
    customer_ids = set(customer_ids)
    rules = enabled_rules(session, kinds=OUTSIDE_KINDS)
    if not rules or not customer_ids:
        return 0
    records = _outside_records(session, customer_ids)
    loans = session.execute(sa_select(Loan.id, Loan.customer_id).where(
        Loan.customer_id.in_(customer_ids), Loan.status == LoanStatus.ACTIVE)).all()
    drafts = []
    for loan in loans:
        drafts += alert_drafts(rules, Facts(loan.id, loan.customer_id, day, outside=records.get(loan.customer_id, {})))
    return raise_alerts(session, drafts)


def imports_page(session: Session, paging: PageRequest) -> Page[FeedImportRead]:
    return keyset(session, select(FeedImport), paging, FeedImport.uploaded_at, FeedImport.id, descending=True,
                  read=lambda rows: [FeedImportRead.model_validate(r) for r in rows])


def get_import(session: Session, import_id: str) -> FeedImport:
    found = session.get(FeedImport, import_id)
    if found is None:
        raise Problem(404, "Not found", f"No feed import {import_id!r}.")
    return found


def row_errors(session: Session, import_id: str, paging: PageRequest) -> Page[FeedRowErrorRead]:
    get_import(session, import_id)
    return keyset(session, select(FeedRowError).where(FeedRowError.import_id == import_id), paging, FeedRowError.row,
                  FeedRowError.id, read=lambda rows: [FeedRowErrorRead.model_validate(r) for r in rows])
