"""A repayment file as one job: accepted, then posted chunk by chunk, resumable from the last committed chunk."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO

from sqlmodel import Session, select
from tqdm import tqdm

from services.monitoring.business_day import business_date
from services.monitoring.repayment_files import service
from services.monitoring.repayment_files.models import FileStatus, RepaymentFile
from services.monitoring.settings import MonitoringSettings
from services.monitoring.transactions.service import load_vault
from shared.audit import acting_as
from shared.auth.scope import EVERYTHING, Visibility
from shared.db import Database
from shared.pii import PiiVault
from shared.settings import KernelSettings, load_settings

Progress = Callable[[int, int], None]  # (rows done, rows in the file)


def accept_file(session: Session, *, source: str, filename: str, content: bytes | None, path: Path | None,
                scope: Visibility, by: str) -> RepaymentFile:
    """Check the file's header and count its rows (streamed), and record the job; the caller commits."""
    service.check_source(source)
    with _raw(content, path) as raw:
        digest, total = hashlib.sha256(), 0
        reading = _Hashing(raw, digest)
        total = service.count_rows(reading)
    job = RepaymentFile(source=source, filename=filename[:200], sha256=digest.hexdigest(), rows_total=total,
                        content=content, path=None if path is None else str(path.resolve()),
                        scope_everything=scope.everything, scope_branch=scope.branch, created_by=by)
    session.add(job)
    session.flush()
    return job


class _Hashing(io.RawIOBase):
    """The bytes of `raw`, hashed as they are read."""

    def __init__(self, raw: IO[bytes], digest) -> None:  # noqa: ANN001
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        buffer[:len(data)] = data
        return len(data)


@contextmanager
def _raw(content: bytes | None, path: Path | str | None) -> Iterator[IO[bytes]]:
    if content is not None:
        yield io.BytesIO(content)
        return
    with open(path, "rb") as handle:  # noqa: PTH123 - a path the operator named, or a job's stored path
        yield handle


def run_file(database: Database, settings: MonitoringSettings, file_id: str, *, vault: PiiVault,
             progress: Progress | None = None) -> RepaymentFile:
    """Post the job's rows from where it stopped, one transaction per chunk, streaming the file: memory stays
    flat in its size. Each chunk commits its postings with the job's progress, so a crash loses nothing and posts
    nothing twice; running a completed job again does nothing."""
    with database.session() as session:
        job = session.get(RepaymentFile, file_id)
        if job is None or job.status == FileStatus.COMPLETED:
            return job
    with acting_as(job.created_by), _raw(job.content, job.path) as raw:
        rows = service.read_rows(service.open_text(raw))
        skipped = sum(1 for _ in islice(rows, job.rows_done))  # committed by an earlier run
        done = skipped
        if progress is not None:
            progress(done, job.rows_total)
        while chunk := list(islice(rows, settings.repayment_file_chunk_size)):
            with database.session() as session:
                job = session.get(RepaymentFile, file_id, populate_existing=True)
                service.post_chunk(session, job, chunk, as_of=business_date(session, settings), vault=vault,
                                   tolerance=settings.overpayment_tolerance)
                session.commit()
            done += len(chunk)
            if progress is not None:
                progress(done, job.rows_total)
        with database.session() as session:
            job = session.get(RepaymentFile, file_id, populate_existing=True)
            service.finish(session, job)
            session.commit()
            session.refresh(job)
            return job


def run_import_cli(kernel: KernelSettings, path: Path, *, source: str, progress: bool = True) -> RepaymentFile:
    """`loancrm repayments import FILE`: post a file from disk (any size: it is streamed) with a progress bar.
    The operator's file, the operator's scope (every branch). Run again on the same file, it resumes the job that
    stopped, or (done) posts nothing new."""
    settings = load_settings(MonitoringSettings)
    database = Database(kernel.database_url("monitoring"))
    try:
        with database.session() as session, acting_as("cli", ["admin"]):
            with _raw(None, path) as raw:
                digest = hashlib.file_digest(raw, "sha256").hexdigest()
            job = session.exec(select(RepaymentFile).where(
                RepaymentFile.source == service.check_source(source), RepaymentFile.sha256 == digest,
                RepaymentFile.status != FileStatus.COMPLETED).order_by(RepaymentFile.created_at)).first()
            if job is None:
                job = accept_file(session, source=source, filename=path.name, content=None, path=path,
                                  scope=EVERYTHING, by="cli")
                session.commit()
        with tqdm(total=job.rows_total, desc=path.name, unit="row", disable=not progress) as bar:
            return run_file(database, settings, job.id, vault=load_vault(settings, kernel),
                            progress=lambda done, _total: bar.update(done - bar.n))
    finally:
        database.dispose()
