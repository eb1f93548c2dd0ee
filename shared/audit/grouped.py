"""Group commit for the audit rows of reads: each request waits until its rows are committed, but the requests of
one process share their commits.

Committed one request at a time, a read's audit row made every read wait for the trail's head (one hot row) and
for its own flush to disk (SQLite's WAL fsync, PostgreSQL's WAL flush: several milliseconds on a busy disk), so a
process served a few hundred reads a second whatever its CPU. Here the rows wait on the event loop while one
batch is written in a worker thread; whatever arrives meanwhile goes into the next batch: one transaction, one
head update, one commit for all of it. A failed batch fails every request in it (each answers 503 and none shows
what could not be recorded).

Each row is committed, and flushed to disk as every write is, before its request answers: the batching shares
the flush, it never skips it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import Connection, Engine

from shared.audit.trail import AuditTrail, Entry

Work = Callable[[Connection], None]
# After a commit, how long the next batch may wait for the requests that commit answered to come back with their
# next rows, as a share of the commit's own time and at most this: without it, batches alternate between the one
# or two rows that arrived during a commit and all the others, and every other commit carries almost nothing.
_GATHER_SHARE = 0.25
_GATHER_MAX_SECONDS = 0.002


@dataclass(eq=False)
class _Item:
    entries: Sequence[Entry]
    work: Work | None
    done: asyncio.Future[None]


@dataclass(eq=False)
class _Queue:
    waiting: list[_Item] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None
    wanted: int = 0  # as many as in the last batch: the next one is full once this many wait
    full: asyncio.Event = field(default_factory=asyncio.Event)


class GroupCommit:
    def __init__(self, trail: AuditTrail, engine: Engine) -> None:
        self._trail = trail
        self._engine = engine
        # A queue per event loop: a future belongs to its loop, and one app may be served from several (tests).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()

    async def commit(self, entries: Sequence[Entry], work: Work | None = None) -> None:
        """Returns once `entries` are chained (and `work`'s writes made) in a committed transaction. `work` runs
        in a worker thread: it must carry what it needs from the request (its id, the caller) with it."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        item = _Item(entries, work, loop.create_future())
        queue.waiting.append(item)
        if len(queue.waiting) >= queue.wanted:
            queue.full.set()
        if queue.flusher is None:
            queue.flusher = loop.create_task(self._flush(queue))
        await item.done

    async def _flush(self, queue: _Queue) -> None:
        took = 0.0
        try:
            while queue.waiting:
                if len(queue.waiting) < queue.wanted:
                    queue.full.clear()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(queue.full.wait(), min(took * _GATHER_SHARE, _GATHER_MAX_SECONDS))
                batch, queue.waiting = queue.waiting, []
                queue.wanted = len(batch)
                started = time.perf_counter()
                try:
                    await to_thread.run_sync(self._write, batch)
                except Exception as exc:  # noqa: BLE001 - handed to each waiting request, whose handler maps it
                    for item in batch:
                        if not item.done.done():
                            item.done.set_exception(exc)
                except BaseException:
                    for item in batch:
                        item.done.cancel()
                    raise
                else:
                    for item in batch:
                        if not item.done.done():
                            item.done.set_result(None)
                took = time.perf_counter() - started
        finally:
            queue.flusher = None
            for item in queue.waiting:  # only when cancelled (the loop is closing): nothing will write them now
                item.done.cancel()

    def _write(self, batch: list[_Item]) -> None:
        with self._engine.begin() as connection:
            for item in batch:
                if item.work is not None:
                    item.work(connection)
            self._trail.append(connection, [entry for item in batch for entry in item.entries])
