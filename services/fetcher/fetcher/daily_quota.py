"""A provider's daily request budget, counted in Redis so restarts and replicas share one count.

Alpha Vantage's free key allows 25 requests per day. A per-minute token bucket cannot keep a
service inside that, and a count kept in memory starts again at zero after every restart and
in every replica. So each request first takes one unit of the day's budget with an atomic
INCR on a key named after the provider and the day; once the count passes the limit, or the
provider itself says the quota is spent, nothing is sent until the day rolls over.

The day is the calendar day in `zone` (the provider's quota day; Alpha Vantage does not document
it, US/Eastern is the conservative choice: it rolls over after UTC midnight). When Redis is
unreachable the count continues in memory, so an outage costs at most one process's worth of
extra requests, never an unbounded stream.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.provider_metrics import QUOTA_REMAINING
from fetcher.providers.errors import QuotaExhausted

log = structlog.get_logger(__name__)

KEY_GRACE_SECONDS = 3600


class DailyQuota:
    def __init__(
        self,
        provider: str,
        limit: int,
        redis: aioredis.Redis | None,
        key_prefix: str,
        *,
        zone: str = "America/New_York",
        clock: Clock = REAL_CLOCK,
    ) -> None:
        if limit < 1:
            raise ValueError("a daily quota needs a limit of at least 1")
        self.provider = provider
        self.limit = limit
        self.redis = redis
        self.key_prefix = key_prefix
        self.zone = ZoneInfo(zone)
        self.clock = clock
        self._local: dict[date, int] = {}
        self._exhausted_day: date | None = None

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock.wall(), tz=self.zone).date()

    def resets_at(self, day: date) -> float:
        """Epoch seconds of the next day's start in the quota's zone."""
        return (
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC).timestamp()
        )

    def _key(self, day: date) -> str:
        return f"{self.key_prefix}:quota:{self.provider}:{day.isoformat()}"

    def _refuse(self, day: date, used: int) -> QuotaExhausted:
        if self._exhausted_day != day:
            self._exhausted_day = day
            log.warning(
                "daily request quota spent; provider paused until the quota resets",
                provider=self.provider,
                used=used,
                limit=self.limit,
                resets_at=datetime.fromtimestamp(self.resets_at(day), tz=UTC).isoformat(),
            )
        QUOTA_REMAINING.labels(self.provider).set(0)
        return QuotaExhausted(
            self.provider, f"daily quota of {self.limit} requests spent", resets_at=self.resets_at(day)
        )

    async def _incr(self, day: date, by: int) -> int:
        if self.redis is not None:
            key = self._key(day)
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.incrby(key, by)
                    ttl = int(self.resets_at(day) - self.clock.wall()) + KEY_GRACE_SECONDS
                    pipe.expire(key, max(ttl, KEY_GRACE_SECONDS))
                    used, _ = await pipe.execute()
                self._local[day] = int(used)
                return int(used)
            except (RedisError, OSError) as exc:
                log.warning(
                    "daily quota store unreachable; counting in memory",
                    provider=self.provider,
                    error=type(exc).__name__,
                )
        self._local = {day: self._local.get(day, 0) + by}
        return self._local[day]

    def check(self) -> None:
        """Raise QuotaExhausted if today's budget is already known to be spent (no I/O)."""
        day = self._today()
        if self._exhausted_day == day:
            raise self._refuse(day, self.limit)

    async def reserve(self) -> None:
        """Take one request from today's budget, or raise QuotaExhausted without taking any."""
        day = self._today()
        if self._exhausted_day == day:
            raise self._refuse(day, self.limit)
        used = await self._incr(day, 1)
        if used > self.limit:
            raise self._refuse(day, used)
        QUOTA_REMAINING.labels(self.provider).set(self.limit - used)

    async def exhaust(self) -> float:
        """The provider said the quota is spent: record it for every process sharing the budget.

        Returns when the budget resets (epoch seconds).
        """
        day = self._today()
        used = self._local.get(day, 0)
        if used < self.limit:
            await self._incr(day, self.limit - used)
        return self._refuse(day, max(used, self.limit)).resets_at

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
