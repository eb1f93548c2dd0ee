"""Bulk import of customers from CSV or JSON lines: validate every row, report bad ones by line, commit good ones
in batches, and skip what is already on file so a re-run never duplicates."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import psycopg
from pydantic import ValidationError
from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from tqdm import tqdm

from services.customer.customers.models import Customer, CustomerCreate
from services.customer.customers.pii import load_vault
from services.customer.customers.service import (branch_for_new, customer_row, not_registrable,
                                                  refuse_fields_not_yours, require_business_registration)
from services.customer.imports.models import ImportFormat, ImportReport, RowError
from services.customer.scoping import can_see
from services.customer.settings import CustomerSettings
from shared.auth.tokens import Principal
from shared.bounds import CONTROL_REFUSED, control_character_in_row
from shared.db import Database, bulk_insert
from shared.errors import Problem
from shared.pii import PiiVault
from shared.settings import KernelSettings, load_settings

DEFAULT_BATCH = 1000
Row = tuple[int, dict[str, Any] | None, str | None]  # line, fields (None if unreadable), why unreadable


def read_rows(stream: TextIO, fmt: ImportFormat) -> Iterator[Row]:
    """Each row with its line; a line that cannot be read is a row error, and the lines after it are read on."""
    if fmt == ImportFormat.CSV:
        reader = csv.DictReader(stream)
        try:
            if reader.fieldnames is None:  # reads the header, so the line numbers below are the rows'
                return
        except csv.Error as exc:
            yield 1, None, f"not readable CSV ({exc})"
            return
        while True:
            read = reader.line_num
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a field past the reader's limit, a NUL: that line only
                yield read + 1, None, f"not readable CSV ({exc})"
                continue
            # Empty cells mean "not given", as a JSON null would.
            yield reader.line_num, {k: (v.strip() or None) for k, v in record.items() if k and v is not None}, None
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, nested past the decoder, an int past Python's digits
            yield number, None, "not valid JSON"
            continue
        yield (number, record, None) if isinstance(record, dict) else (number, None, "not a JSON object")


class CustomerImport:
    def __init__(self, database: Database, vault: PiiVault, principal: Principal, batch_size: int = DEFAULT_BATCH,
                 default_branch: str | None = None) -> None:
        self.database, self.vault, self.principal = database, vault, principal
        self.batch_size, self.default_branch = batch_size, default_branch
        self.report = ImportReport(rows=0, created=0, already_present=0, failed=0, errors=[])
        # Identities met earlier in this same file, so a file repeating a person does not fail its batch.
        self._seen: dict[str, int] = {}

    def _fail(self, line: int, field_name: str | None, reason: str) -> None:
        self.report.failed += 1
        self.report.errors.append(RowError(line=line, field=field_name, reason=reason))

    def _validate(self, line: int, record: dict[str, Any]) -> CustomerCreate | None:
        if (column := control_character_in_row(record)) is not None:
            self._fail(line, column, CONTROL_REFUSED)
            return None
        if self.default_branch and not record.get("branch"):
            record = {**record, "branch": self.default_branch}
        try:
            command = CustomerCreate.model_validate(record)
            require_business_registration(command)
            branch_for_new(self.principal, command.branch)
            refuse_fields_not_yours(self.principal, command.model_dump(exclude_unset=True))
        except ValidationError as exc:
            first = exc.errors()[0]
            self._fail(line, ".".join(str(p) for p in first["loc"]) or None, first["msg"])
            return None
        except Problem as exc:
            problem_field = exc.errors[0].field.removeprefix("body.") if exc.errors else None
            self._fail(line, problem_field, exc.errors[0].message if exc.errors else exc.title)
            return None
        for kind, value in (("national_id", command.national_id), ("phone", command.phone)):
            earlier = self._seen.get(f"{kind}:{value}")
            if earlier is not None:
                self._fail(line, kind, f"same {kind} as line {earlier}")
                return None
        self._seen[f"national_id:{command.national_id}"] = self._seen[f"phone:{command.phone}"] = line
        return command

    def _commit(self, batch: list[tuple[int, CustomerCreate]]) -> None:
        hashes = {line: (self.vault.digest(c.national_id), self.vault.digest(c.phone)) for line, c in batch}
        externals = [c.external_id for _, c in batch if c.external_id]
        present, clashes, hidden, fresh = 0, [], [], []
        with self.database.session() as session:
            existing = session.exec(select(Customer.national_id_hash, Customer.phone_hash, Customer.external_id,
                                           Customer.branch, Customer.referred_by).where(
                or_(Customer.national_id_hash.in_([h[0] for h in hashes.values()]),
                    Customer.phone_hash.in_([h[1] for h in hashes.values()]),
                    (Customer.external_source == self.principal.sub) & Customer.external_id.in_(externals)))).all()
            known_ids, known_phones = {row[0] for row in existing}, {row[1] for row in existing}
            known_external = {row[2] for row in existing if row[2]}
            # Someone on file the importer may not see: the same refusal as a registration, saying nothing more.
            unseen = {value for row in existing if not can_see(self.principal, row[3], row[4])
                      for value in row[:3] if value}
            for line, command in batch:
                id_hash, phone_hash = hashes[line]
                if {id_hash, phone_hash, command.external_id} & unseen:
                    hidden.append(line)
                elif id_hash in known_ids or (command.external_id and command.external_id in known_external):
                    present += 1
                elif phone_hash in known_phones:
                    clashes.append(line)
                else:
                    fresh.append(customer_row(self.vault, command, self.principal,
                                              branch_for_new(self.principal, command.branch)))
            try:
                if fresh:
                    bulk_insert(session, Customer.__table__, fresh)
                session.commit()
            except (IntegrityError, psycopg.errors.UniqueViolation):
                # Someone registered one of these people meanwhile: retry row by row to find which.
                session.rollback()
                if len(batch) == 1:
                    self.report.already_present += 1
                    return
                for row in batch:
                    self._commit([row])
                return
        self.report.created += len(fresh)
        self.report.already_present += present
        for line in clashes:
            self._fail(line, "phone", "phone number belongs to another customer on file")
        for line in hidden:
            self._fail(line, None, not_registrable().detail)

    def run(self, rows: Iterable[Row], on_row: Callable[[], None] | None = None) -> ImportReport:
        batch: list[tuple[int, CustomerCreate]] = []
        for line, record, unreadable in rows:
            self.report.rows += 1
            if record is None:
                self._fail(line, None, unreadable or "unreadable")
            elif (command := self._validate(line, record)) is not None:
                batch.append((line, command))
            if len(batch) >= self.batch_size:
                self._commit(batch)
                batch = []
            if on_row:
                on_row()
        if batch:
            self._commit(batch)
        return self.report


def import_text(database: Database, vault: PiiVault, principal: Principal, text: str, fmt: ImportFormat,
                batch_size: int = DEFAULT_BATCH) -> ImportReport:
    return CustomerImport(database, vault, principal, batch_size).run(read_rows(io.StringIO(text), fmt))


def format_of(path: Path) -> ImportFormat:
    return ImportFormat.CSV if path.suffix.lower() == ".csv" else ImportFormat.JSONL


def run_import_cli(
    path: str | Path,
    *,
    branch: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    actor: str = "cli-import",
    kernel: KernelSettings | None = None,
    settings: CustomerSettings | None = None,
    progress: bool = True,
) -> ImportReport:
    """`loancrm customers import FILE [--branch B] [--batch-size N]`: CSV by extension, else JSON lines.

    Runs as an administrator of the customer database (the operator at the console); rows without a branch take
    `branch`. Safe to re-run: rows already on file are counted, not duplicated."""
    kernel = kernel or load_settings(KernelSettings)
    settings = settings or load_settings(CustomerSettings)
    path = Path(path)
    principal = Principal(sub=actor, roles=("admin",), branch=None, scopes=frozenset(), jti="cli", expires_at=0)
    database = Database(kernel.database_url("customer"))
    try:
        with path.open(encoding="utf-8-sig", newline="") as counting:
            total = sum(1 for _ in counting) - (1 if format_of(path) == ImportFormat.CSV else 0)
        job = CustomerImport(database, load_vault(settings, kernel), principal, batch_size, branch)
        with path.open(encoding="utf-8-sig", newline="") as stream, \
                tqdm(total=total, disable=not progress, unit="row", desc=f"importing {path.name}") as bar:
            return job.run(read_rows(stream, format_of(path)), on_row=bar.update)
    finally:
        database.dispose()
