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
eight round trips) and hands each act what was found for its key.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from contextlib import suppress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from shared.audit.trail import AuditTrail, Entry

T = TypeVar("T")
# An act: what a request does on the batch's connection (given what its load found for its key), returning its
# answer and the entries that record it.
Act = Callable[[Connection, Any], tuple[T, Sequence[Entry]]]
# A load: the values of many keys in one query, by key (a key not found is left out).
Load = Callable[[Connection, list[Any]], dict[Any, Any]]
# A writer with nothing to do waits this long for more before its thread ends (the next request starts another).
_IDLE_SECONDS = 5.0


@dataclass(eq=False)
class _Item:
    act: Act[Any]
    # The request's context: an act builds its entries (who, which request) and runs in it, on the writer thread.
    context: contextvars.Context
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[Any]
    load: Load | None
    key: Any
    answer: Any = None
    refused: Exception | None = None


class GroupCommit:
    def __init__(self, trail: AuditTrail, engine: Engine) -> None:
        self._trail = trail
        self._engine = engine
        self._arrived = threading.Condition()
        self._waiting: list[_Item] = []
        self._writer: threading.Thread | None = None

    async def run(self, act: Act[T], load: Load | None = None, key: Any = None) -> T:
        """`act`'s answer, once the entries it returned are chained (and its writes made) in a committed
        transaction. It runs in the writer thread, in the request's context, on the batch's connection, and gets
        what `load` found for `key` (None when not found or without a load). An act that refuses (a 404) raises
        before it writes anything: that fails its own request only."""
        loop = asyncio.get_running_loop()
        item = _Item(act, contextvars.copy_context(), loop, loop.create_future(), load, key)
        with self._arrived:
            self._waiting.append(item)
            if self._writer is None:
                self._writer = threading.Thread(target=self._serve, name="audit-group-commit", daemon=True)
                self._writer.start()
            self._arrived.notify()
        return await item.done

    def _serve(self) -> None:
        """The writer: whatever arrived while it wrote the last batch is the next one, taken at once, with no
        hop back to the event loop in between and no timer to gather it."""
        while True:
            with self._arrived:
                if not self._waiting and not self._arrived.wait_for(lambda: self._waiting, _IDLE_SECONDS):
                    self._writer = None
                    return
                batch, self._waiting = self._waiting, []
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request, whose handler maps it
                self._settle(batch, exc)
            else:
                self._settle(batch, None)

    @staticmethod
    def _settle(batch: list[_Item], failed: Exception | None) -> None:
        """Each request's answer (or refusal, or the batch's failure), handed to its own event loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
        for item in batch:
            by_loop.setdefault(item.loop, []).append(item)
        for loop, items in by_loop.items():
            with suppress(RuntimeError):  # a loop closed meanwhile: nobody waits for these any more
                loop.call_soon_threadsafe(_resolve, items, failed)

    def _write(self, batch: list[_Item]) -> None:
        entries: list[Entry] = []
        keys: dict[Load, list[Any]] = {}
        for item in batch:
            if item.load is not None:
                keys.setdefault(item.load, []).append(item.key)
        with self._engine.begin() as connection:
            loaded = {load: load(connection, wanted) for load, wanted in keys.items()}
            for item in batch:
                found = None if item.load is None else loaded[item.load].get(item.key)
                try:
                    item.answer, recorded = item.context.run(item.act, connection, found)
                except Exception as exc:  # noqa: BLE001 - the act's refusal, answered to its request alone
                    item.refused = exc
                    continue
                entries.extend(recorded)
            self._trail.append(connection, entries)


def _resolve(items: list[_Item], failed: Exception | None) -> None:
    for item in items:
        if item.done.done():  # its request was cancelled (the client went away)
            continue
        if failed is not None:
            item.done.set_exception(failed)
        elif item.refused is not None:
            item.done.set_exception(item.refused)
        else:
            item.done.set_result(item.answer)
