"""COB's chunks on a task queue: Dramatiq over RabbitMQ (or Redis), `loancrm worker` runs a worker.

The run that opens a day (CLI or POST /cob/runs) sends each pending chunk (an id range) as a message and follows
the chunk records; a worker ages a chunk in one transaction committed with its "done" mark, and the broker is
acknowledged only after that commit (Dramatiq acknowledges once the actor returns). A worker killed mid-chunk
leaves its transaction rolled back and its message unacknowledged, which the broker hands to another worker;
a message for a chunk already done is a no-op. Without `LOANCRM_COB_BROKER_URL` nothing here is used: COB ages
its chunks in its own process.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import date
from typing import Any

import dramatiq
from dramatiq.broker import Broker

from services.monitoring.cob import flows
from services.monitoring.settings import CobQueueSettings, MonitoringSettings
from shared.db import Database
from shared.settings import KernelSettings, load_settings

log = logging.getLogger(__name__)
ACTOR = "cob_age_chunk"


def _broker(url: str) -> Broker:
    if url.startswith("redis"):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    # Publisher confirms: a chunk the broker did not take raises here, not silently later.
    return RabbitmqBroker(url=url, confirm_delivery=True)


# The worker process's database and settings (the process ages chunks of the deployment it is configured for).
_worker: dict[str, Any] = {}


def _age(day: str, number: int) -> None:
    ctx = flows.CobContext(database=_worker["database"], settings=_worker["settings"],
                           day=date.fromisoformat(day), peers=None, credentials=None)
    rules, thresholds = flows.ageing_rules_of(ctx)
    flows.age_chunk(ctx, number, rules, thresholds)


class DramatiqQueue:
    """The chunk queue, for the run that sends chunks and for the workers that age them."""

    def __init__(self, settings: CobQueueSettings) -> None:
        assert settings.broker_url is not None
        self.settings = settings
        self.poll_seconds, self.stall_seconds = settings.poll_seconds, settings.stall_seconds
        self.broker = _broker(settings.broker_url)
        self.actor = dramatiq.Actor(_age, broker=self.broker, actor_name=ACTOR, queue_name=settings.queue,
                                    priority=0, options={"max_retries": settings.chunk_retries,
                                                         "time_limit": settings.chunk_time_limit_seconds * 1000})

    def send(self, day: date, numbers: list[int]) -> None:
        for number in numbers:
            self.actor.send(day.isoformat(), number)

    def close(self) -> None:
        self.broker.close()


def queue_from_settings() -> DramatiqQueue | None:
    settings = load_settings(CobQueueSettings)
    return DramatiqQueue(settings) if settings.broker_url else None


def chunk_queue(state: Any) -> DramatiqQueue | None:
    """The service's queue, made on first use (None when no broker is configured)."""
    if not hasattr(state, "cob_queue"):
        state.cob_queue = queue_from_settings()
    return state.cob_queue


def run_worker(kernel: KernelSettings, *, threads: int = 1) -> int:
    """Age chunks until SIGTERM or SIGINT; a chunk in hand when stopping is finished first."""
    queue = queue_from_settings()
    if queue is None:
        raise SystemExit("loancrm worker: LOANCRM_COB_BROKER_URL is not set (amqp://... or redis://...); without "
                         "a broker COB ages its chunks in its own process and needs no worker")
    _worker.update(database=Database(kernel.database_url("monitoring")),
                   settings=load_settings(MonitoringSettings))
    worker = dramatiq.Worker(queue.broker, queues={queue.settings.queue}, worker_threads=threads)
    # One message in hand per thread: a killed worker takes no more than that back to the queue, and the chunks
    # left at the end of a day go to whichever worker is free.
    worker.queue_prefetch = threads
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("COB worker on queue %s (%d thread%s)", queue.settings.queue, threads, "" if threads == 1 else "s")
    print(f"loancrm worker: ageing COB chunks from queue {queue.settings.queue!r}", flush=True)
    try:
        stop.wait()
    finally:
        worker.stop()
        queue.close()
        _worker["database"].dispose()
    return 0
