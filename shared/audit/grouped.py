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

A request hands over its whole act (`run`): the read itself, the writes that go with it and the rows that record
it, run in the batch's transaction, so a read costs no connection checkout and no thread hop of its own (on
PostgreSQL it paid two hops, one to read and one to record). Acts that read by key name a `load`: the batch runs
it once for the keys of all of them (one query, where eight sequential ones made PostgreSQL's batch wait for
eight round trips) and hands each act what was found for its key. On PostgreSQL a batch is two round trips: its
loads, then its writes and rows committed together (`_write`).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from anyio import to_thread
from sqlalchemy import Connection, Engine

from shared.audit.trail import AuditTrail, Entry

T = TypeVar("T")
# An act: what a request does on the batch's connection (given what its load found for its key), returning its
# answer and the entries that record it.
Act = Callable[[Connection, Any], tuple[T, Sequence[Entry]]]
# A load: the values of many keys in one query, by key (a key not found is left out).
Load = Callable[[Connection, list[Any]], dict[Any, Any]]
# After a commit, how long the next batch may wait for the requests that commit answered to come back with their
# next rows, as a share of the commit's own time and at most this: without it, batches alternate between the one
# or two rows that arrived during a commit and all the others, and every other commit carries almost nothing.
_GATHER_SHARE = 0.25
_GATHER_MAX_SECONDS = 0.002
_LARGEST_SECONDS = 1.0


@dataclass(eq=False)
class _Item:
    act: Act[Any]
    # The request's context: an act builds its entries (who, which request) and runs in it, on the worker thread.
    context: contextvars.Context
    done: asyncio.Future[Any]
    load: Load | None
    key: Any
    answer: Any = None
    refused: Exception | None = None


@dataclass(eq=False)
class _Queue:
    waiting: list[_Item] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None
    # The next batch is full once this many wait: one more than the last, when that had company. Only as many as
    # last time, and a batch never grew back once a straggler had missed one (4.7 reads a flush at concurrency 8);
    # a lone reader's batch of one waits for nobody. Never more than the largest batch of the last second, though:
    # one more than all the readers there are never comes, and each batch waited out its gathering time for it.
    wanted: int = 0
    largest: int = 0
    largest_at: float = 0.0
    full: asyncio.Event = field(default_factory=asyncio.Event)


class GroupCommit:
    def __init__(self, trail: AuditTrail, engine: Engine) -> None:
        self._trail = trail
        self._engine = engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # A queue per event loop: a future belongs to its loop, and one app may be served from several (tests).
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = weakref.WeakKeyDictionary()

    async def run(self, act: Act[T], load: Load | None = None, key: Any = None) -> T:
        """`act`'s answer, once the entries it returned are chained (and its writes made) in a committed
        transaction. It runs in a worker thread, in the request's context, on the batch's connection, and gets
        what `load` found for `key` (None when not found or without a load). An act that refuses (a 404) raises
        before it writes anything: that fails its own request only."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        item = _Item(act, contextvars.copy_context(), loop.create_future(), load, key)
        queue.waiting.append(item)
        if len(queue.waiting) >= queue.wanted:
            queue.full.set()
        if queue.flusher is None:
            queue.flusher = loop.create_task(self._flush(queue))
        return await item.done

    async def _flush(self, queue: _Queue) -> None:
        took = 0.0
        try:
            while queue.waiting:
                if len(queue.waiting) < queue.wanted:
                    queue.full.clear()
                    with suppress(TimeoutError):
                        await asyncio.wait_for(queue.full.wait(), min(took * _GATHER_SHARE, _GATHER_MAX_SECONDS))
                batch, queue.waiting = queue.waiting, []
                started = time.perf_counter()
                if len(batch) >= queue.largest or started - queue.largest_at > _LARGEST_SECONDS:
                    queue.largest, queue.largest_at = len(batch), started
                queue.wanted = min(len(batch) + 1, queue.largest) if len(batch) > 1 else len(batch)
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
                        if item.done.done():
                            continue
                        if item.refused is not None:
                            item.done.set_exception(item.refused)
                        else:
                            item.done.set_result(item.answer)
                took = time.perf_counter() - started
        finally:
            queue.flusher = None
            for item in queue.waiting:  # only when cancelled (the loop is closing): nothing will write them now
                item.done.cancel()

    def _write(self, batch: list[_Item]) -> None:
        keys: dict[Load, list[Any]] = {}
        for item in batch:
            if item.load is not None:
                keys.setdefault(item.load, []).append(item.key)
        if self._engine.dialect.name != "postgresql":
            with self._engine.begin() as connection:
                self._trail.append(connection, self._act(connection, batch, self._loaded(connection, keys)))
            return
        # Two round trips where a transaction took four (BEGIN, the loads, the rows, COMMIT): the loads each on
        # their own in autocommit (a lone SELECT needs no transaction), then the acts' writes and the trail's rows
        # in one pipeline, which the server runs as one implicit transaction, committed at the pipeline's sync.
        with self._autocommit.connect() as connection:
            loaded = self._loaded(connection, keys)
            with connection.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
                appended = self._trail.send(connection, self._act(connection, batch, loaded))
            if appended is not None:
                self._trail.check(appended)

    @staticmethod
    def _loaded(connection: Connection, keys: dict[Load, list[Any]]) -> dict[Load, dict[Any, Any]]:
        return {load: load(connection, wanted) for load, wanted in keys.items()}

    @staticmethod
    def _act(connection: Connection, batch: list[_Item], loaded: dict[Load, dict[Any, Any]]) -> list[Entry]:
        """Each item's act on `connection`, given what its load found; the entries to chain."""
        entries: list[Entry] = []
        for item in batch:
            found = None if item.load is None else loaded[item.load].get(item.key)
            try:
                item.answer, recorded = item.context.run(item.act, connection, found)
            except Exception as exc:  # noqa: BLE001 - the act's refusal, answered to its request alone
                item.refused = exc
                continue
            entries.extend(recorded)
        return entries
