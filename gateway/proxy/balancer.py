"""What the forwarding makes of a replica's failure: which problem the caller gets, whether the replica is taken
out (`shared/replicas.py` chooses replicas and brings them back), whether the request may go to another one, and
the per-replica metrics. Called only when something failed, so the forwarding's usual path costs one `pick`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import aiohttp
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from shared.clients.base import IDEMPOTENT_METHODS, PeerDropped, PeerTimeout, PeerUnavailable
from shared.errors import PROBLEM_MEDIA_TYPE, Problem
from shared.replicas import Replica, Replicas

# Answered by something in front of a replica, or by a server that cannot take the request (uvicorn's
# `limit_concurrency`), when it is not problem+json: a problem+json 503 is the service's own considered answer
# (a peer of its own is down, say), and says nothing against the replica.
DOWN_STATUSES = frozenset({502, 503})


def failure(service: str, exc: BaseException) -> tuple[Problem, bool]:
    """The problem the caller gets for a failed attempt, and whether the request certainly never reached the
    service (no connection was made), so that any request may go to another replica."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # also: no pooled connection came free in time
        return PeerUnavailable(service, "connection timed out"), True
    if isinstance(exc, aiohttp.ClientConnectorError):
        return PeerUnavailable(service, "connection refused"), True
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return PeerTimeout(service), False
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError):
        # How a replica that died (kill -9, a crash, OOM) with our request on its socket shows.
        return PeerDropped(service, type(exc).__name__), False
    return PeerUnavailable(service, type(exc).__name__), False


def may_retry(pool: Replicas, method: str, body: object, *, unsent: bool) -> bool:
    """Another replica may take the request if there is one, the body can be sent again (not a stream already
    read), and the request either never reached the failed replica or cannot act twice (RFC 9110's idempotent
    methods). A POST that may have reached it is answered 502: its client repeats it with its Idempotency-Key."""
    return len(pool.replicas) > 1 and (body is None or isinstance(body, bytes)) and (
        unsent or method in IDEMPOTENT_METHODS)


def after_failure(pool: Replicas, replica: Replica, method: str, body: object, problem: Problem, unsent: bool,
                  last: bool) -> Replica:
    """A failed attempt on `replica` takes it out; the replica to try next, or `problem` raised when the request
    may not go to another (see `may_retry`) or this was the last attempt."""
    pool.release(replica)
    pool.failed(replica, problem.detail)
    if last or not may_retry(pool, method, body, unsent=unsent):
        raise problem
    return pool.pick(avoid=replica)


def down_answer(pool: Replicas, replica: Replica, method: str, body: object, status: int,
                headers: Callable[[], str], last: bool) -> bool:
    """A bare 502/503 (`headers()` gives its content type: not the service's own problem+json) takes the replica
    out; True when the request is then to go to another one, the caller letting go of this answer."""
    if status not in DOWN_STATUSES or headers().startswith(PROBLEM_MEDIA_TYPE):
        return False
    pool.failed(replica, f"answered {status}")
    return not last and may_retry(pool, method, body, unsent=False)


class UpstreamMetrics(Collector):
    """Per replica: requests sent, failures, requests in flight, up (1) or down (0). Read from the replicas'
    own counters when scraped, so forwarding a request touches no metric object."""

    def __init__(self, pools: dict[str, Replicas]) -> None:
        self.pools = pools

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        labels = ["service", "upstream"]
        sent = CounterMetricFamily("loancrm_gateway_upstream_requests", "Requests sent to each replica", labels=labels)
        failed = CounterMetricFamily("loancrm_gateway_upstream_failures",
                                     "Failures that took a replica out (or kept it out)", labels=labels)
        in_flight = GaugeMetricFamily("loancrm_gateway_upstream_in_flight", "Requests a replica is serving now",
                                      labels=labels)
        up = GaugeMetricFamily("loancrm_gateway_upstream_up", "1 while a replica takes traffic, 0 while it is out",
                               labels=labels)
        for service, pool in self.pools.items():
            for replica in pool.replicas:
                names = [service, replica.url]
                sent.add_metric(names, replica.served)
                failed.add_metric(names, replica.failures)
                in_flight.add_metric(names, replica.in_flight)
                up.add_metric(names, 0 if replica.down_until else 1)
        yield from (sent, failed, in_flight, up)


def register_metrics(registry: CollectorRegistry, pools: dict[str, Replicas]) -> None:
    registry.register(UpstreamMetrics(pools))
