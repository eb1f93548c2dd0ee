"""Fixed-window request limits: per user on the API, per username on sign-in (slows password guessing).

With LOANCRM_REDIS_URL set, counts live in Redis so every gateway replica shares them; without it (the
embedded default) they live in this process.
"""

from __future__ import annotations

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


class MemoryCounter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}

    async def incr(self, key: str, window: int) -> tuple[int, int]:
        now = self._clock()
        slot = int(now // window)
        # Drop finished windows so memory stays bounded by the number of active callers.
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= slot}
        count = self._counts.get((key, slot), 0) + 1
        self._counts[(key, slot)] = count
        return count, int((slot + 1) * window - now) + 1


class RedisCounter:
    def __init__(self, url: str, fallback: MemoryCounter, clock: Callable[[], float] = time.time) -> None:
        self._redis = Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._fallback = fallback
        self._clock = clock

    async def incr(self, key: str, window: int) -> tuple[int, int]:
        now = self._clock()
        slot = int(now // window)
        redis_key = f"loancrm:rl:{key}:{slot}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                count, _ = await pipe.incr(redis_key).expire(redis_key, window + 1).execute()
        except (RedisError, OSError) as exc:
            # A limiter outage must not become an API outage: count locally until Redis is back.
            log.warning("rate limiter falling back to memory", error=str(exc))
            return await self._fallback.incr(key, window)
        return int(count), int((slot + 1) * window - now) + 1

    async def aclose(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, counter: MemoryCounter | RedisCounter) -> None:
        self.counter = counter

    async def hit(self, key: str, limit: int, window: int = 60) -> Verdict:
        count, reset_in = await self.counter.incr(key, window)
        return Verdict(allowed=count <= limit, limit=limit, remaining=max(0, limit - count), retry_after=reset_in)

    async def aclose(self) -> None:
        if isinstance(self.counter, RedisCounter):
            await self.counter.aclose()


def build_limiter(redis_url: str) -> RateLimiter:
    memory = MemoryCounter()
    return RateLimiter(RedisCounter(redis_url, memory) if redis_url else memory)
