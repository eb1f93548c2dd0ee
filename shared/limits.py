"""Sliding-window limits every process may need: the gateway's per-user API limit and sign-in limits (failed
attempts per (username, client address) and per address across usernames, over a minute and over an hour, which
slows password guessing without letting anyone lock a user out from elsewhere), the customer service's exact
lookups per user.

A fixed window let a burst straddling its edge through twice (two guesses at 0:59, two more at 1:00). The count
is instead the current minute's plus the previous minute's weighted by how much of it still lies within the
last 60 seconds (the usual sliding-window estimate: two counters a key, no log of timestamps). Refused attempts
count too, so a client that ignores Retry-After stays refused.

With LOANCRM_REDIS_URL set, counts live in Redis so every replica shares them; without it (the embedded default)
they live in this process. A Redis command for every hit was the largest part of what the gateway cost a request,
so a process may count up to 1% of a limit (`SLACK_SHARE`) before it settles those hits with Redis in one command
(and settles at least every second while a key is hit): across N processes a caller can pass a limit by at most
N% of it. Limits under 100 have no slack: each of their hits is counted in Redis at once, exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.logging import get_logger

log = get_logger("loancrm.limits")
# Of a limit, the share of hits a process may count before it tells Redis (rounded down: none under 100).
SLACK_SHARE = 0.01


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int


@dataclass(frozen=True)
class Counts:
    current: int  # in this window, this hit included
    previous: int  # in the window before
    elapsed: float  # seconds of this window gone by


class MemoryCounter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    async def incr(self, key: str, window: int, slack: int = 0) -> Counts:  # every count is here: no slack to use
        now = self._clock()
        slot = int(now // window)
        # Drop windows no estimate needs any more, so memory stays bounded by the number of active callers.
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= slot - 1}
        count = self._counts.get((key, slot), 0) + 1
        self._counts[(key, slot)] = count
        return Counts(count, self._counts.get((key, slot - 1), 0), now - slot * window)

    async def peek(self, key: str, window: int) -> Counts:
        now = self._clock()
        slot = int(now // window)
        return Counts(self._counts.get((key, slot), 0), self._counts.get((key, slot - 1), 0), now - slot * window)


# Add this process's hits not yet told to this window's key (and any left over for the window before, once it has
# ended), each key kept for two windows (the next window's estimate still reads it); answer both totals.
_SETTLE = """
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
if current == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[3]) > 0 then
  previous = redis.call('INCRBY', KEYS[2], ARGV[3])
  if previous == tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
end
return {current, previous}
"""
# While a key is being hit, its counts are settled with Redis at least this often even within the slack, so each
# process soon sees the others' hits.
SETTLE_SECONDS = 1.0


class _Tally:
    """One key's counts in one process: the totals Redis last answered (this process's settled hits included)
    and the hits it has not settled yet, for this window and the one before."""

    __slots__ = ("slot", "current", "previous", "unsent", "unsent_previous", "sending", "settled_at")

    def __init__(self, slot: int, previous: int = 0, unsent_previous: int = 0) -> None:
        self.slot = slot
        self.current = 0
        self.previous = previous
        self.unsent = 0
        self.unsent_previous = unsent_previous
        self.sending = 0  # hits of this window on their way to Redis
        self.settled_at = -math.inf

    def counts(self, elapsed: float) -> Counts:
        return Counts(self.current + self.unsent + self.sending, self.previous + self.unsent_previous, elapsed)


class RedisCounter:
    """Counts shared through Redis. A hit within `slack` of the key's unsettled hits is counted here and told to
    Redis with the next settling (one command for many hits): each process may be up to `slack` hits behind
    Redis, so across N processes a caller can pass its limit by at most N x slack. With no slack every hit is
    settled at once. While Redis cannot be reached the hits stay counted here, and reach Redis once it answers."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._clock = clock
        self._tallies: dict[tuple[str, int], _Tally] = {}
        # One command and one reply per settling (a MULTI/EXEC pipeline was five).
        self._settle = self._redis.register_script(_SETTLE)

    def _tally(self, key: str, window: int, slot: int) -> _Tally:
        tally = self._tallies.get((key, window))
        if tally is not None and tally.slot == slot:
            return tally
        if len(self._tallies) > 10_000:
            # Only this window's and the last one's counts make an estimate: memory stays bounded by active callers.
            self._tallies = {k: t for k, t in self._tallies.items() if t.slot >= int(self._clock() // k[1]) - 1}
        if tally is not None and tally.slot == slot - 1:
            # The window turned: what this process had not settled yet still belongs to the one before.
            tally = _Tally(slot, tally.current + tally.sending, tally.unsent)
        else:
            tally = _Tally(slot)
        self._tallies[(key, window)] = tally
        return tally

    async def incr(self, key: str, window: int, slack: int = 0) -> Counts:
        now = self._clock()
        slot = int(now // window)
        tally = self._tally(key, window, slot)
        tally.unsent += 1
        if tally.unsent > slack or (not tally.sending and now - tally.settled_at >= SETTLE_SECONDS):
            await self._settle_tally(key, window, tally)
        return tally.counts(now - slot * window)

    async def _settle_tally(self, key: str, window: int, tally: _Tally) -> None:
        sent, sent_previous = tally.unsent, tally.unsent_previous
        tally.unsent = tally.unsent_previous = 0
        tally.sending += sent
        try:
            current, previous = await self._settle(
                keys=[f"loancrm:rl:{key}:{tally.slot}", f"loancrm:rl:{key}:{tally.slot - 1}"],
                args=[2 * window + 1, sent, sent_previous])
        except (RedisError, OSError) as exc:
            # A limiter outage must not become an API outage: the hits stay counted here until Redis is back.
            log.warning("rate limiter counting in this process", error=str(exc))
            tally.unsent += sent
            tally.unsent_previous += sent_previous
            return
        finally:
            tally.sending -= sent
        # Replies on different connections may come back out of order; within a window a total only grows.
        tally.current = max(tally.current, int(current))
        tally.previous = max(tally.previous, int(previous))
        tally.settled_at = self._clock()

    async def peek(self, key: str, window: int) -> Counts:
        now = self._clock()
        slot = int(now // window)
        tally = self._tally(key, window, slot)
        try:
            current, previous = await self._redis.mget(f"loancrm:rl:{key}:{slot}", f"loancrm:rl:{key}:{slot - 1}")
        except (RedisError, OSError) as exc:
            log.warning("rate limiter counting in this process", error=str(exc))
            return tally.counts(now - slot * window)
        return Counts(int(current or 0) + tally.unsent + tally.sending, int(previous or 0) + tally.unsent_previous,
                      now - slot * window)

    async def aclose(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, counter: MemoryCounter | RedisCounter) -> None:
        self.counter = counter

    async def hit(self, key: str, limit: int, window: int = 60) -> Verdict:
        counts = await self.counter.incr(key, window, int(limit * SLACK_SHARE))
        used = counts.current + counts.previous * (1 - counts.elapsed / window)
        return Verdict(allowed=used <= limit, limit=limit, remaining=max(0, int(limit - used)),
                       retry_after=_retry_after(counts, limit, window))

    async def check(self, key: str, limit: int, window: int = 60) -> Verdict:
        """Whether one more hit would be allowed, without counting one."""
        counts = await self.counter.peek(key, window)
        used = counts.current + counts.previous * (1 - counts.elapsed / window)
        return Verdict(allowed=used + 1 <= limit, limit=limit, remaining=max(0, int(limit - used)),
                       retry_after=_retry_after(counts, limit, window))

    async def aclose(self) -> None:
        if isinstance(self.counter, RedisCounter):
            await self.counter.aclose()


def _retry_after(counts: Counts, limit: int, window: int) -> int:
    """Whole seconds until one more hit would be allowed, if nothing else came meanwhile."""
    room = limit - 1 - counts.current  # what the previous window's weight must fall to, within this window
    if room >= 0:
        wait = 0.0 if counts.previous <= room else (1 - room / counts.previous) * window - counts.elapsed
    else:  # only in the next window, where this window is the previous one and the weight falls from 1
        wait = window - counts.elapsed + (1 - (limit - 1) / counts.current) * window
    return max(1, math.ceil(wait))


def build_limiter(redis_url: str) -> RateLimiter:
    return RateLimiter(RedisCounter(redis_url) if redis_url else MemoryCounter())
