"""Sliding-window limits every process may need: the gateway's per-user API limit and sign-in limits (failed
attempts per (username, client address) and per address across usernames, over a minute and over an hour, which
slows password guessing without letting anyone lock a user out from elsewhere), the customer service's exact
lookups per user.

A fixed window let a burst straddling its edge through twice (two guesses at 0:59, two more at 1:00). The count
is instead the current minute's plus the previous minute's weighted by how much of it still lies within the
last 60 seconds (the usual sliding-window estimate: two counters a key, no log of timestamps). Refused attempts
count too, so a client that ignores Retry-After stays refused.

With LOANCRM_REDIS_URL set, counts live in Redis so every replica shares them; without it (the embedded default)
they live in this process.
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

    async def incr(self, key: str, window: int) -> Counts:
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


# Count a hit in this window's key, kept for two windows (the next window's estimate still reads it), and read the
# window before.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {count, tonumber(redis.call('GET', KEYS[2]) or '0')}
"""


class RedisCounter:
    def __init__(self, url: str, fallback: MemoryCounter, clock: Callable[[], float] = time.time) -> None:
        self._redis = Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._fallback = fallback
        self._clock = clock
        # One command, one reply per hit (a MULTI/EXEC pipeline was five, a sixth of the gateway's time a request).
        self._hit = self._redis.register_script(_HIT)

    async def incr(self, key: str, window: int) -> Counts:
        now = self._clock()
        slot = int(now // window)
        current, previous = f"loancrm:rl:{key}:{slot}", f"loancrm:rl:{key}:{slot - 1}"
        try:
            count, before = await self._hit(keys=[current, previous], args=[2 * window + 1])
        except (RedisError, OSError) as exc:
            # A limiter outage must not become an API outage: count locally until Redis is back.
            log.warning("rate limiter falling back to memory", error=str(exc))
            return await self._fallback.incr(key, window)
        return Counts(int(count), int(before or 0), now - slot * window)

    async def peek(self, key: str, window: int) -> Counts:
        now = self._clock()
        slot = int(now // window)
        try:
            count, before = await self._redis.mget(f"loancrm:rl:{key}:{slot}", f"loancrm:rl:{key}:{slot - 1}")
        except (RedisError, OSError) as exc:
            log.warning("rate limiter falling back to memory", error=str(exc))
            return await self._fallback.peek(key, window)
        return Counts(int(count or 0), int(before or 0), now - slot * window)

    async def aclose(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, counter: MemoryCounter | RedisCounter) -> None:
        self.counter = counter

    async def hit(self, key: str, limit: int, window: int = 60) -> Verdict:
        counts = await self.counter.incr(key, window)
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
    memory = MemoryCounter()
    return RateLimiter(RedisCounter(redis_url, memory) if redis_url else memory)
