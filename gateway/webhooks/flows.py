"""The webhook passes: relay (each service's event feed → deliveries) and deliver (due deliveries → receivers).

Both are safe to run from several gateway processes at once: a delivery is unique per (subscription, event), and
each attempt is claimed in the database before its request is sent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from anyio import to_thread

from gateway.settings import WebhookSettings
from gateway.tokens.service import KeyRing, Subject, issue_access_token
from gateway.webhooks import service
from gateway.webhooks.models import WebhookSubscription, now
from shared.auth.roles import Role
from shared.clients.events import EVENT_SOURCES, EventFeedClient
from shared.db import Database
from shared.errors import Problem
from shared.outbox import OutboxEventRead
from shared.settings import KernelSettings

log = logging.getLogger(__name__)
SYSTEM_SUBJECT = "system:webhooks"
SYSTEM_TOKEN_TTL_SECONDS = 120
_RENEW_BEFORE_SECONDS = 30
_CONCURRENT_DELIVERIES = 8
USER_AGENT = "LoanCRM-Webhooks/1"


async def _addresses(url: str) -> list[str]:
    """What the target's host resolves to now (none when it does not resolve: the send then fails as it would)."""
    parts = urlsplit(url)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443,
                                                             type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [str(sockaddr[0]) for *_, sockaddr in found]


@dataclass(frozen=True)
class Attempt:
    """A claimed attempt, detached from its session: what the request needs and which attempt it is."""

    delivery_id: str
    attempt: int
    url: str
    secret: str
    body: str
    event_id: str
    event_type: str


@dataclass(frozen=True)
class PassResult:
    relayed: int  # deliveries created
    attempted: int
    delivered: int


class Webhooks:
    """What the passes need, built once per gateway process."""

    def __init__(self, *, database: Database, kernel: KernelSettings, settings: WebhookSettings, keyring: KeyRing,
                 transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> None:
        self.database, self.kernel, self.settings, self.keyring = database, kernel, settings, keyring
        self.box = service.SecretBox(keyring.passphrase)
        self.feeds = {name: EventFeedClient(name, kernel, (transports or {}).get(name)) for name in EVENT_SOURCES}
        # Receivers are outside: short timeouts, and never a redirect (it could point anywhere, inside included).
        # No connection is kept for the next delivery: deliveries go to checked addresses (`service.pinned`), and a
        # kept one is pooled by address, so another receiver's name on that address would reuse a TLS session
        # whose certificate was checked for the first name.
        self.http = httpx.AsyncClient(
            follow_redirects=False, headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(settings.timeout_seconds, 2.0)))
        # Never revoked: it names no user, and its tokens live two minutes.
        self._sid = secrets.token_hex(16)
        self._token: tuple[str, float] | None = None

    async def aclose(self) -> None:
        await self.http.aclose()
        for feed in self.feeds.values():
            await feed.aclose()

    # -- the system identity --------------------------------------------------------------------------------------

    def _mint(self) -> tuple[str, float]:
        # Not a stored user: the token's claims are all this identity is.
        identity = Subject(sub=SYSTEM_SUBJECT, roles=(Role.SYSTEM.value,), branch=None, sid=self._sid)
        with self.database.session() as session:
            token = issue_access_token(session, identity, scope="events:read", issuer=self.kernel.jwt_issuer,
                                       audience=self.kernel.jwt_audience, ttl_seconds=SYSTEM_TOKEN_TTL_SECONDS,
                                       keyring=self.keyring)
            session.commit()
        return token, time.time() + SYSTEM_TOKEN_TTL_SECONDS

    async def token(self) -> str:
        if self._token is None or self._token[1] - time.time() < _RENEW_BEFORE_SECONDS:
            self._token = await to_thread.run_sync(self._mint)
        return self._token[0]

    # -- relay ----------------------------------------------------------------------------------------------------

    def _fan_out(self, source: str, events: list[OutboxEventRead], at: datetime) -> int:
        with self.database.session() as session:
            created = service.fan_out(session, source, events, at)
            session.commit()
            return created

    def _position(self, source: str) -> int:
        with self.database.session() as session:
            return service.feed_position(session, source)

    def _advance(self, source: str, seq: int) -> None:
        with self.database.session() as session:
            service.advance_feed(session, source, seq)
            session.commit()

    async def relay(self, at: datetime) -> int:
        """Read every feed from its cursor and fan the events out; returns how many deliveries were created."""
        token, created = await self.token(), 0
        horizon = at - timedelta(seconds=self.settings.settle_seconds)
        for source, feed in self.feeds.items():
            start = await to_thread.run_sync(self._position, source)
            after = settled = start
            try:
                while True:
                    page = await feed.events(after=after, limit=self.settings.batch_size, token=token)
                    if not page.items:
                        break
                    created += await to_thread.run_sync(self._fan_out, source, page.items, at)
                    if settled == after:  # everything before this page has settled
                        settled = service.settled_through(page.items, settled, horizon)
                    after = page.items[-1].seq
                    if page.next_cursor is None:
                        break
            except Problem as problem:
                log.warning("webhook relay: the %s event feed is unavailable: %s", source, problem.detail)
            if settled > start:
                await to_thread.run_sync(self._advance, source, settled)
        return created

    # -- deliver --------------------------------------------------------------------------------------------------

    def _claim_due(self, at: datetime) -> list[Attempt]:
        lease = timedelta(seconds=2 * self.settings.timeout_seconds + 30)
        claimed = []
        with self.database.session() as session:
            for delivery in service.due_deliveries(session, at, self.settings.batch_size):
                subscription = session.get(WebhookSubscription, delivery.subscription_id)
                if subscription is None or not service.claim_attempt(session, delivery, at, lease):
                    continue
                claimed.append(Attempt(delivery.id, delivery.attempts + 1, subscription.url,
                                       self.box.open(subscription.secret_encrypted), delivery.body,
                                       delivery.event_id, delivery.event_type))
            session.commit()
        return claimed

    def _record(self, attempt: Attempt, at: datetime, status_code: int | None, error: str | None) -> None:
        with self.database.session() as session:
            service.record_outcome(session, attempt.delivery_id, attempt.attempt, at=at, status_code=status_code,
                                   error=error, settings=self.settings)
            session.commit()

    async def _send(self, attempt: Attempt, at: datetime, gate: asyncio.Semaphore) -> bool:
        body = attempt.body.encode()
        headers = {"Content-Type": "application/json", service.SIGNATURE_HEADER: service.signature_header(
            attempt.secret, body), "LoanCRM-Event-Id": attempt.event_id, "LoanCRM-Event-Type": attempt.event_type,
            "LoanCRM-Delivery-Id": attempt.delivery_id}
        status_code, error = None, None
        async with gate:
            addresses = await _addresses(attempt.url)
            error = service.unreachable_target(attempt.url, addresses)
            target, host, extensions = service.pinned(attempt.url, addresses)
            try:
                if error is None:
                    # Streamed and not read: what a receiver answers beyond its status is not ours to hold.
                    async with self.http.stream("POST", target, content=body, headers={**headers, **host},
                                                extensions=extensions) as response:
                        status_code = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is None and not 200 <= status_code < 300:  # type: ignore[operator]
            error = f"answered {status_code}"
        await to_thread.run_sync(self._record, attempt, at, status_code, error)
        return error is None

    async def deliver(self, at: datetime) -> tuple[int, int]:
        """Send every due delivery once; returns (attempted, delivered)."""
        attempts = await to_thread.run_sync(self._claim_due, at)
        gate = asyncio.Semaphore(_CONCURRENT_DELIVERIES)
        results = await asyncio.gather(*(self._send(a, at, gate) for a in attempts))
        return len(attempts), sum(results)

    async def run_once(self, at: datetime | None = None) -> PassResult:
        """One relay and one delivery pass. `at` is the clock the schedule is judged by (tests move it)."""
        at = at or now()
        relayed = await self.relay(at)
        attempted, delivered = await self.deliver(at)
        return PassResult(relayed, attempted, delivered)
