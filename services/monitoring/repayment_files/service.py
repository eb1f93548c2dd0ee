"""Repayment files: reading and checking their rows, and posting a chunk of them through the posting core."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from datetime import date
from decimal import Decimal
from typing import IO

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import insert, select, update
from sqlmodel import Session, select as select_entities

from services.monitoring.loans.models import Loan, now
from services.monitoring.repayment_files.models import (
    COLUMNS,
    REQUIRED,
    FileStatus,
    RepaymentFile,
    RepaymentFileError,
    RepaymentFileErrorRead,
)
from services.monitoring.repayments.models import Posting
from services.monitoring.repayments.posting import Posted, Refused, Repayment, post_repayments
from services.monitoring.transactions.service import account_reference
from shared.audit import note_rows
from shared.auth.scope import Visibility, shaped_where
from shared.bounds import CONTROL_REFUSED, BusinessDate, PositiveAmount, control_character_in_row
from shared.db import Step, among, run_together
from shared.errors import Problem, field_problem
from shared.pagination import Page, PageRequest, keyset
from shared.pii import PiiVault

SOURCE = re.compile(r"^[A-Za-z0-9_.-]{1,20}$")
MAX_REFERENCE = 40  # with the source, the posting's external_id (64)
# A row's amount is read by the API's own money type, so a file and a body agree: "1.230" is 1.23 in both,
# "1.234" (or "1_0", or another script's digits) is refused in the words the API uses.
_AMOUNT = TypeAdapter(PositiveAmount)
_VALUE_DATE = TypeAdapter(BusinessDate)
_ERRORS = RepaymentFileError.__table__


@dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]
    unreadable: str | None = None  # why the reader could not read this row (the file's other rows still post)


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    reference: str | None
    message: str


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check_source(source: str) -> str:
    if not SOURCE.match(source):
        raise field_problem("query.source", "1 to 20 letters, digits, '_', '.' or '-'")
    return source


def open_text(raw: IO[bytes]) -> io.TextIOWrapper:
    # UTF-8, with or without a byte-order mark (spreadsheets write one).
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def read_rows(text: IO[str]) -> Iterator[Row]:
    """The file's data rows, streamed; line numbers count the header as line 1. A bad header is a 422."""
    reader = csv.reader(text)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise field_problem("body.file", "is empty: a header line is required") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise field_problem("body.file", f"is not UTF-8 CSV: {exc}") from None
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED if name not in header]
    if unknown or missing or not {"loan_id", "loan_external_id"} & set(header):
        raise field_problem("body.file", f"header must name {', '.join(REQUIRED)} and loan_id or "
                                         f"loan_external_id, from the columns {', '.join(COLUMNS)}"
                                         + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    while True:
        line = reader.line_num + 1  # where the row starts: a quoted field may span lines
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # One row the reader refuses (a field past its size limit) is that row's error, as a bad amount is:
            # the reader goes on from the next line.
            yield Row(line, {}, unreadable=str(exc))
            continue
        except UnicodeDecodeError as exc:
            raise Problem(422, "Unreadable file", f"line {line}: {exc}") from None
        if cells:
            yield Row(line, dict(zip(header, (c.strip() for c in cells), strict=False)))


def count_rows(raw: IO[bytes]) -> int:
    return sum(1 for _ in read_rows(open_text(raw)))


def _parse(row: Row, source: str, vault: PiiVault) -> tuple[Repayment | None, str | None, RowError | None]:
    """The row as a repayment (its loan still to resolve when it names the loan's external id), or its error."""
    values = row.values
    reference = values.get("reference") or None

    def error(field: str | None, message: str) -> tuple[None, None, RowError]:
        return None, None, RowError(row.line, field, reference, message)

    if row.unreadable is not None:
        return error(None, f"the row cannot be read ({row.unreadable}); it was not posted")
    if (column := control_character_in_row(values)) is not None:  # the reference itself may hold one: not kept
        return None, None, RowError(row.line, column, None, CONTROL_REFUSED)
    if reference is None:
        return error("reference", "is required")
    if len(reference) > MAX_REFERENCE or not reference.isprintable():
        return error("reference", f"must be printable and at most {MAX_REFERENCE} characters")
    loan_id, external = values.get("loan_id") or None, values.get("loan_external_id") or None
    if loan_id is None and external is None:
        return error("loan_id", "loan_id or loan_external_id is required")
    if not values.get("amount"):
        return error("amount", "is required")
    try:
        amount = _AMOUNT.validate_python(values["amount"])
    except ValidationError as exc:
        return error("amount", exc.errors()[0]["msg"])
    value_date = None
    if values.get("value_date"):
        try:  # as the API reads one: ISO 8601 text within the kernel's dates (20260115 was taken too)
            value_date = _VALUE_DATE.validate_python(values["value_date"])
        except ValidationError as exc:
            return error("value_date", exc.errors()[0]["msg"])
    payer = values.get("payer_account") or None
    if payer is not None and not re.fullmatch(r"[A-Za-z0-9]{1,34}", payer):
        return error("payer_account", "must be 1 to 34 letters and digits (an IBAN or account number)")
    return (Repayment(loan_id or "", amount, value_date, f"{source}:{reference}",
                      None if payer is None else account_reference(vault, payer)),
            None if loan_id else external, None)


@cache
def _lookups(dialect_name: str, scope: str) -> SimpleNamespace:
    """A chunk's loans by the external ids its rows name, among those the job's scope (`Visibility.shape`) may
    see, and the postings already made under its references: one array parameter each (whatever the chunk's
    size, one statement the server prepares), read together. A loan outside the scope is not found, exactly as
    an external id no loan has: the file's report must not tell the two apart (nor name the loan)."""
    loans, postings = Loan.__table__, Posting.__table__
    return SimpleNamespace(
        loans=select(loans.c.id, loans.c.external_id).where(among(loans.c.external_id, "externals", dialect_name),
                                                            shaped_where(scope, loans.c.branch)),
        postings=select(postings.c.external_id, postings.c.loan_id).where(
            among(postings.c.external_id, "references", dialect_name)))


@dataclass
class ChunkResult:
    posted: int = 0
    duplicates: int = 0
    failed: int = 0


def post_chunk(session: Session, job: RepaymentFile, rows: Sequence[Row], *, as_of: date, vault: PiiVault,
               tolerance: Decimal) -> ChunkResult:
    """Post one chunk of the file's rows in the caller's transaction and move the job past them; a row more than
    settles its loan plus `tolerance` is that row's error (`post_repayments`). Raises
    `Problem(409)` when another run moved the job meanwhile (this chunk must then roll back)."""
    result, errors = ChunkResult(), []
    parsed = [(row, *_parse(row, job.source, vault)) for row in rows]
    externals = sorted({ext for _, _, ext, _ in parsed if ext})
    references = sorted({item.external_id for _, item, _, _ in parsed if item is not None})
    by_external: dict[str, list[str]] = {}
    posted_to: dict[str, str] = {}
    scope = Visibility(everything=job.scope_everything, branch=job.scope_branch)
    shape, scope_params = scope.shape()
    lookups = _lookups(session.get_bind().dialect.name, shape)
    found = run_together(session.connection(), [Step(lookups.loans, {"externals": externals, **scope_params},
                                                     rows=True),
                                                Step(lookups.postings, {"references": references}, rows=True)])
    for row in found[0]:
        by_external.setdefault(row["external_id"], []).append(row["id"])
    for row in found[1]:
        posted_to[row["external_id"]] = row["loan_id"]
    items: list[tuple[Row, Repayment]] = []
    seen: set[str] = set()
    for row, item, external, error in parsed:
        if error is None and external is not None:
            found = by_external.get(external, [])
            if len(found) != 1:
                error = RowError(row.line, "loan_external_id", item.external_id.partition(":")[2],
                                 "no loan has this external id" if not found else
                                 "several loans have this external id; name the loan_id")
            else:
                item = Repayment(found[0], item.amount, item.value_date, item.external_id, item.payer)
        if error is None:
            reference = item.external_id.partition(":")[2]
            if item.external_id in posted_to and posted_to[item.external_id] == item.loan_id:
                result.duplicates += 1
                continue
            if item.external_id in posted_to or item.external_id in seen:
                error = RowError(row.line, "reference", reference, "this reference was already used for another "
                                 "row of this source" + ("" if item.external_id in seen else " (another loan)"))
        if error is not None:
            errors.append(error)
            continue
        seen.add(item.external_id)
        items.append((row, item))
    answers = post_repayments(session, [item for _, item in items], scope=scope, posted_by=job.created_by,
                              as_of=as_of, tolerance=tolerance)
    for (row, item), answer in zip(items, answers, strict=True):
        if isinstance(answer, Posted):
            result.posted += 1
        else:
            errors.append(_refusal(row, item, answer))
    if errors:
        rows_ = [{"file_id": job.id, "line": e.line, "field": e.field, "reference": e.reference,
                  "message": e.message[:500]} for e in errors]
        session.connection().execute(insert(_ERRORS), rows_)
        note_rows(session, _ERRORS, "insert", rows_)
    result.failed = len(errors)
    moved = session.execute(update(RepaymentFile).where(
        RepaymentFile.id == job.id, RepaymentFile.rows_done == job.rows_done).values(
        rows_done=job.rows_done + len(rows), posted=RepaymentFile.posted + result.posted,
        duplicates=RepaymentFile.duplicates + result.duplicates, failed=RepaymentFile.failed + result.failed,
        status=FileStatus.RUNNING.value)).rowcount
    if moved != 1:
        raise Problem(409, "Conflict", "Another run is posting this file.")
    return result


def _refusal(row: Row, item: Repayment, refused: Refused) -> RowError:
    field = refused.field or ("loan_id" if refused.status == 404 else None)
    return RowError(row.line, field, item.external_id.partition(":")[2], refused.message)


def finish(session: Session, job: RepaymentFile) -> None:
    # An upload's bytes name payers' accounts in clear: once every row is posted nothing reads them again.
    session.execute(update(RepaymentFile).where(RepaymentFile.id == job.id).values(
        status=FileStatus.COMPLETED.value, finished_at=now(), content=None))


def get_file(session: Session, file_id: str, owner: str | None) -> RepaymentFile:
    """The job, or 404 when it does not exist or (`owner` given) another user uploaded it."""
    job = session.get(RepaymentFile, file_id)
    if job is None or (owner is not None and job.created_by != owner):
        raise Problem(404, "Not found", f"No repayment file {file_id!r}.")
    return job


def errors_page(session: Session, file_id: str, paging: PageRequest) -> Page[RepaymentFileErrorRead]:
    return keyset(session, select_entities(RepaymentFileError).where(RepaymentFileError.file_id == file_id), paging,
                  RepaymentFileError.line, read=lambda rows: [RepaymentFileErrorRead.model_validate(r) for r in rows])
