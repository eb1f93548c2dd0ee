"""Webhook rules: who may subscribe to what, which subscriber may receive which event, signing, and back-off.

A subscription belongs to the token `sub` that made it. An event reaches a subscription only if the subscriber
could read the event's object through the API: its roles hold the source service's read scope, and the one scope
rule (`visibility`) allows the event's branch and owner. So a partner receives events about the applications it
submitted, never another partner's or a branch's it has nothing to do with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy import update
from sqlmodel import Session, select

from gateway.clients.models import SUBJECT_PREFIX
from gateway.clients.service import find_client
from gateway.settings import WebhookSettings
from gateway.users.service import get_by_username
from gateway.webhooks.models import (DeliveryStatus, FeedCursor, SubscriptionCreate, WebhookDelivery,
                                     WebhookSubscription, new_id, now)
from shared.auth.roles import Role, scopes_for
from shared.auth.scope import visibility
from shared.auth.tokens import Principal
from shared.db import insert_ignoring
from shared.errors import Problem, field_problem
from shared.outbox import OutboxEventRead
from shared.pagination import Page, PageRequest, keyset

SIGNATURE_HEADER = "LoanCRM-Signature"
REPLAY_WINDOW_SECONDS = 300  # what receivers should accept between `t` and their clock (README)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
_KDF_SALT = b"loancrm/webhook-signing-secrets/v1"


# -- signing ------------------------------------------------------------------------------------------------------

def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance: int = REPLAY_WINDOW_SECONDS,
                     now_: float | None = None) -> bool:
    """What a receiver checks (README): a `v1` matching the body under `t`, and `t` within the replay window."""
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k.strip() == "t"]
    candidates = [v.strip() for k, _, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not candidates:
        return False
    t = int(stamps[0])
    if abs((time.time() if now_ is None else now_) - t) > tolerance:
        return False
    expected = signature(secret, t, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)


class SecretBox:
    """Encrypts signing secrets at rest under a key derived (scrypt, once per process) from the gateway's key
    passphrase, so a copy of the database alone cannot forge deliveries."""

    def __init__(self, passphrase: str) -> None:
        key = Scrypt(salt=_KDF_SALT, length=32, n=2**14, r=8, p=1).derive(passphrase.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise Problem(503, "Service unavailable", "A webhook signing secret cannot be decrypted: "
                                                      "LOANCRM_GATEWAY_KEY_PASSPHRASE changed.") from None


# -- subscriptions ------------------------------------------------------------------------------------------------

def check_target(url: str) -> str:
    """https to a public host, or plain http to this host's loopback only; no credentials, no fragment."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise field_problem("body.url", "is not a URL") from None
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise field_problem("body.url", "is not a URL: it holds spaces or control characters")
    # A resolver takes the name as written less one trailing dot ("localhost." is localhost).
    host = (parts.hostname or "").lower().removesuffix(".")
    if parts.username is not None or parts.password is not None or parts.fragment or not host:
        raise field_problem("body.url", "needs a host, and no user, password or fragment")
    if parts.scheme == "http":
        if host not in _LOOPBACK_HOSTS:
            raise field_problem("body.url", "must be https (plain http only to 127.0.0.1 or [::1])")
        return url
    if parts.scheme != "https":
        raise field_problem("body.url", "must be an https URL")
    address = _address_literal(host)
    if address is None:
        if host == "localhost" or host.endswith(".localhost"):
            raise field_problem("body.url", "must not name this host over https; use http://127.0.0.1")
        return url
    if not address.is_global:
        raise field_problem("body.url", "must not be a private, link-local or reserved address")
    return url


def _address_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` names by itself, in any spelling the resolver accepts: besides the dotted quad, IPv4 in
    fewer parts, hex or octal ("127.1", "0x7f.1", "2130706433" are all 127.0.0.1), which `ip_address` does not
    read; None for a name that DNS must resolve."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def unreachable_target(url: str, addresses: list[str]) -> str | None:
    """Why a delivery must not go to `url` whose host resolved to `addresses` (None: it may). A name that DNS
    points at a private, link-local or reserved address is refused as its literal would be at subscription; the
    plain-http loopback receivers are literals and resolve to themselves."""
    parts = urlsplit(url)
    if parts.scheme == "http" and (parts.hostname or "").lower() in _LOOPBACK_HOSTS:
        return None
    if not addresses:
        return "its host resolves to no address"
    for address in addresses:
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            return f"its host resolves to {address}, a private, link-local or reserved address"
    return None


def pinned(url: str, addresses: list[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Where a delivery for `url` goes: to the address its host was checked against (`unreachable_target`), so DNS
    that points the name elsewhere between the check and the connection (rebinding) cannot move it inside. The name
    stays the Host header and, over TLS, the name the certificate is checked against. Returns the URL to send to,
    the headers and the request extensions to add."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not addresses or (parts.scheme == "http" and host.lower() in _LOOPBACK_HOSTS):
        return url, {}, {}
    address = addresses[0].split("%", 1)[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"Host": parts.netloc.rpartition("@")[2]}, extensions


def _may_see_all(principal: Principal) -> bool:
    return principal.has_role(Role.ADMIN)


def create_subscription(session: Session, command: SubscriptionCreate, principal: Principal,
                        box: SecretBox) -> tuple[WebhookSubscription, str]:
    """The subscription and its signing secret (to be shown once); the caller commits."""
    secret = new_secret()
    subscription = WebhookSubscription(owner=principal.sub, roles=list(principal.roles), branch=principal.branch,
                                       url=check_target(command.url), event_types=command.event_types,
                                       secret_encrypted=box.seal(secret))
    session.add(subscription)
    session.flush()
    return subscription, secret


def get_subscription(session: Session, subscription_id: str, principal: Principal) -> WebhookSubscription:
    """The caller's own subscription (any, for an admin), or 404."""
    found = session.get(WebhookSubscription, subscription_id)
    if found is None or found.deleted_at is not None or (found.owner != principal.sub and not
                                                          _may_see_all(principal)):
        raise Problem(404, "Not found", f"No subscription {subscription_id!r}.")
    return found


def list_subscriptions(session: Session, principal: Principal, paging: PageRequest,
                       read: Callable[[list[WebhookSubscription]], list[Any]]) -> Page[Any]:
    """Oldest first."""
    query = select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None))  # type: ignore[union-attr]
    if not _may_see_all(principal):
        query = query.where(WebhookSubscription.owner == principal.sub)
    return keyset(session, query, paging, WebhookSubscription.created_at, WebhookSubscription.id, read=read)


def delete_subscription(session: Session, subscription_id: str, principal: Principal) -> None:
    """Nothing more is delivered to it: what was still pending fails, so the log says why."""
    subscription = get_subscription(session, subscription_id, principal)
    subscription.deleted_at = now()
    session.add(subscription)
    session.execute(update(WebhookDelivery).where(
        WebhookDelivery.subscription_id == subscription.id,
        WebhookDelivery.status == DeliveryStatus.PENDING).values(
        status=DeliveryStatus.FAILED, next_attempt_at=None, last_error="subscription deleted"))


# -- the delivery log ---------------------------------------------------------------------------------------------

def list_deliveries(session: Session, principal: Principal, paging: PageRequest,
                    read: Callable[[list[WebhookDelivery]], list[Any]], *, status: DeliveryStatus | None,
                    subscription_id: str | None) -> Page[Any]:
    """Oldest first."""
    query = select(WebhookDelivery)
    if not _may_see_all(principal):
        query = query.where(WebhookDelivery.owner == principal.sub)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if subscription_id is not None:
        query = query.where(WebhookDelivery.subscription_id == subscription_id)
    return keyset(session, query, paging, WebhookDelivery.created_at, WebhookDelivery.id, read=read)


def get_delivery(session: Session, delivery_id: str, principal: Principal) -> WebhookDelivery:
    found = session.get(WebhookDelivery, delivery_id)
    if found is None or (found.owner != principal.sub and not _may_see_all(principal)):
        raise Problem(404, "Not found", f"No delivery {delivery_id!r}.")
    return found


def redeliver(session: Session, delivery_id: str, principal: Principal) -> WebhookDelivery:
    """Queue the delivery again at once, with a fresh round of attempts; same event id, same body."""
    delivery = get_delivery(session, delivery_id, principal)
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    if subscription is None or subscription.deleted_at is not None:
        raise Problem(409, "Conflict", "The subscription of this delivery was deleted; nothing can be sent.")
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, now()
    delivery.redeliveries += 1
    session.add(delivery)
    session.flush()
    return delivery


# -- the relay: events to deliveries ------------------------------------------------------------------------------

def subscriber(session: Session, subscription: WebhookSubscription) -> Principal | None:
    """Who the subscription delivers to, as it stands now: a gateway user's current roles and branch, a partner
    system's current role, branch and allowed scopes (none once either is disabled or gone); other subjects as
    their token said when they subscribed."""
    user = get_by_username(session, subscription.owner)
    if user is not None:
        if not user.active:
            return None
        return _principal(user.username, user.roles, user.branch)
    if subscription.owner.startswith(SUBJECT_PREFIX):
        client = find_client(session, subscription.owner.removeprefix(SUBJECT_PREFIX))
        if client is None or not client.active:
            return None
        return _principal(subscription.owner, [client.role], client.branch, frozenset(client.scopes))
    return _principal(subscription.owner, subscription.roles, subscription.branch)


_KNOWN_ROLES = frozenset(r.value for r in Role)


def _principal(sub: str, roles: list[str], branch: str | None, scopes: frozenset[str] | None = None) -> Principal:
    # What the scope rule reads (sub, roles, branch) and what the subscriber may read (its roles' scopes, or a
    # client's narrower allowed ones); no token stands behind it.
    held = scopes_for(tuple(r for r in roles if r in _KNOWN_ROLES))
    return Principal(sub=sub, roles=tuple(roles), branch=branch, scopes=held if scopes is None else held & scopes,
                     jti="", expires_at=0)


def may_receive(principal: Principal, source: str, event: OutboxEventRead) -> bool:
    """Could this subscriber read the event's object through the API?"""
    return f"{source}:read" in principal.scopes and visibility(principal).allows(event.branch, event.owner)


def event_body(event: OutboxEventRead) -> str:
    return json.dumps({"id": event.id, "type": event.type, "occurred_at": event.occurred_at.isoformat(),
                       "data": event.payload}, separators=(",", ":"), sort_keys=True)


def fan_out(session: Session, source: str, events: list[OutboxEventRead], at: datetime) -> int:
    """One delivery per event and subscription that wants it and may see it; an event read again (the settle
    window) adds nothing. A subscription receives events that occurred after it was made. Each is due at `at`
    (the pass's clock). The caller commits."""
    if not events:
        return 0
    subscriptions = list(session.exec(select(WebhookSubscription).where(
        WebhookSubscription.deleted_at.is_(None))))  # type: ignore[union-attr]
    receivers = [(s, p) for s in subscriptions if (p := subscriber(session, s)) is not None]
    rows = []
    for event in events:
        body = None
        for subscription, principal in receivers:
            if event.type not in subscription.event_types or event.occurred_at < subscription.created_at or \
                    not may_receive(principal, source, event):
                continue
            body = body or event_body(event)
            rows.append({"id": new_id(),
                         "subscription_id": subscription.id, "owner": subscription.owner, "source": source,
                         "event_id": event.id, "event_type": event.type, "body": body,
                         "status": DeliveryStatus.PENDING.value, "attempts": 0, "next_attempt_at": at,
                         "redeliveries": 0, "created_at": now()})
    if not rows:
        return 0
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    return len(session.execute(insert_ignoring(session, table).returning(table.c.id), rows).all())


def feed_position(session: Session, source: str) -> int:
    cursor = session.get(FeedCursor, source)
    return cursor.seq if cursor is not None else 0


def settled_through(events: list[OutboxEventRead], start: int, horizon: datetime) -> int:
    """The last seq up to which every event read is older than `horizon`: the cursor may move there."""
    settled = start
    for event in events:
        if event.occurred_at > horizon:
            break
        settled = event.seq
    return settled


def advance_feed(session: Session, source: str, seq: int) -> None:
    cursor = session.get(FeedCursor, source) or FeedCursor(source=source, seq=0)
    if seq > cursor.seq:
        cursor.seq, cursor.updated_at = seq, now()
        session.add(cursor)


# -- the deliverer ------------------------------------------------------------------------------------------------

def due_deliveries(session: Session, at: datetime, limit: int) -> list[WebhookDelivery]:
    return list(session.exec(select(WebhookDelivery).where(
        WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= at)
        .order_by(WebhookDelivery.next_attempt_at).limit(limit)))  # type: ignore[arg-type]


def claim_attempt(session: Session, delivery: WebhookDelivery, at: datetime, lease: timedelta) -> bool:
    """Take the next attempt of `delivery` for this process: of two gateways (or passes) racing, one wins. The
    lease holds it off the due list while the request runs; the caller commits."""
    claimed = session.execute(update(WebhookDelivery).where(
        WebhookDelivery.id == delivery.id, WebhookDelivery.status == DeliveryStatus.PENDING,
        WebhookDelivery.attempts == delivery.attempts).values(
        attempts=delivery.attempts + 1, next_attempt_at=at + lease, last_attempt_at=at)
        .execution_options(synchronize_session=False))
    return claimed.rowcount == 1


def backoff(settings: WebhookSettings, attempts: int) -> timedelta:
    """Exponential, capped, with jitter (up to half of it) so that receivers coming back are not stampeded."""
    delay = min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** (attempts - 1))
    return timedelta(seconds=delay * (1 - random.random() / 2))  # noqa: S311 - jitter, not a secret


def record_outcome(session: Session, delivery_id: str, attempt: int, *, at: datetime, status_code: int | None,
                   error: str | None, settings: WebhookSettings) -> None:
    """What attempt `attempt` got: delivered on 2xx; else retried after the back-off, or failed after the last.
    An attempt a redelivery superseded meanwhile records nothing. The caller commits."""
    delivered = status_code is not None and 200 <= status_code < 300
    values: dict[str, object] = {"last_status_code": status_code, "last_error": error[:500] if error else None}
    if delivered:
        values.update(status=DeliveryStatus.DELIVERED, delivered_at=at, next_attempt_at=None)
    elif attempt >= settings.max_attempts:
        values.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    else:
        values.update(next_attempt_at=at + backoff(settings, attempt))
    session.execute(update(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempt,
        WebhookDelivery.status == DeliveryStatus.PENDING).values(**values)
        .execution_options(synchronize_session=False))
