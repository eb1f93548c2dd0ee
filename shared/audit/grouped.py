"""Group commit for the audit rows of reads: each request waits until its rows are committed, but the requests of
one process share their commits.

A read's audit row (and a full view's access-log rows) must be durable before its answer leaves. Committed one
request at a time, the chain's head is a single hot row and every commit waits for its own flush to disk (SQLite's
WAL fsync, PostgreSQL's WAL flush, a few milliseconds on a busy disk): the reads of a whole process queued behind
one another at a few hundred a second. Here the rows wait on the event loop while one batch is written in a
worker thread; whatever arrives meanwhile goes into the next batch, one transaction and one flush for all of it.
A failed batch fails every request in it (each answers 503, none shows the data it could not record).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import Connection, Engine

from shared.audit.trail import AuditTrail, Entry

Work = Callable[[Connection], None]


@dataclass
class _Queue:
    waiting: list[tuple[Sequence[Entry], Work | None, asyncio.Future[None]]] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None


class GroupCommit:
    def __init__(self, trail: AuditTrail, engine: Engine) -> None:
        self._trail = trail
        self._engine = engine
        # A queue per event loop: a future belongs to its loop, and one app may be served from several (tests).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()

    async def commit(self, entries: Sequence[Entry], work: Work | None = None) -> None:
        """Returns once `entries` are chained (and `work`'s writes made) in a committed transaction."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        done = loop.create_future()
        queue.waiting.append((entries, work, done))
        if queue.flusher is None:
            queue.flusher = loop.create_task(self._flush(queue))
        await done

    async def _flush(self, queue: _Queue) -> None:
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting, []
                try:
                    await to_thread.run_sync(self._write, batch)
                except Exception as exc:  # noqa: BLE001 - handed to each waiting request, whose handler maps it
                    for _, _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                except BaseException:
                    for _, _, done in batch:
                        done.cancel()
                    raise
                else:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            queue.flusher = None
            for _, _, done in queue.waiting:  # only when cancelled: nothing will write them now
                done.cancel()

    def _write(self, batch: list[tuple[Sequence[Entry], Work | None, asyncio.Future[None]]]) -> None:
        with self._engine.begin() as connection:
            for _, work, _ in batch:
                if work is not None:
                    work(connection)
            self._trail.append(connection, [entry for entries, _, _ in batch for entry in entries])
