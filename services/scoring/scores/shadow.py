"""Shadow scoring after the answer: the challenger's twins of the champion's scores are computed and stored by
one background thread, many requests at a time (one model run, one executemany, one commit, which on PostgreSQL
does not wait for the WAL flush: shadow rows are analytics, never an answer), so shadowing adds next to nothing
to a score's latency. `drain()` stores everything queued so far (tests call it)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from services.scoring.registry.serving import LoadedModel
from services.scoring.scores import service
from services.scoring.scores.store import ScoreWriter
from shared.logging import get_logger

log = get_logger(__name__)
# How long the thread lets requests pile up before storing them: longer batches more, shorter lags less.
GATHER_SECONDS = 0.05


@dataclass(frozen=True)
class _Pending:
    challenger: LoadedModel
    applicants: Sequence[service.Applicant]
    champion: Sequence[dict[str, Any]]


class ShadowQueue:
    def __init__(self, writer: ScoreWriter, context: service.ScoringContext) -> None:
        self.writer = writer
        self.context = context
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()
        self._draining = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, challenger: LoadedModel | None, applicants: Sequence[service.Applicant],
            champion: Sequence[dict[str, Any]]) -> None:
        if challenger is None:
            return
        with self._lock:
            self._pending.append(_Pending(challenger, applicants, champion))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shadow-scoring", daemon=True)
                self._thread.start()
        self._wake.set()

    def drain(self) -> int:
        """Score and store every shadow queued so far; the number of rows stored."""
        with self._draining:
            with self._lock:
                pending, self._pending = self._pending, []
            rows: list[dict[str, Any]] = []
            # Consecutive requests served by the same challenger share one model run.
            for _, run in groupby(pending, key=lambda p: p.challenger.model.id):
                group = list(run)
                rows += service.shadow_rows(self.context, group[0].challenger,
                                            [a for p in group for a in p.applicants],
                                            [c for p in group for c in p.champion])
            self.writer.store(rows, durable=False)
            return len(rows)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait()
            self._closed.wait(GATHER_SECONDS)
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # a lost shadow must not stop shadowing; the champion's answer is already stored
                log.exception("shadow scoring failed")

    async def aclose(self) -> None:
        """At shutdown: stop the thread and store what is still queued."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self.drain()

