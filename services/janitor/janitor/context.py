"""What every task body receives: settings, its database connection and a lazy Redis client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from psycopg import AsyncConnection

from janitor.emf_lines import EmfWriter
from janitor.settings import JanitorSettings


@dataclass
class TaskContext:
    """`conn` is in autocommit mode: VACUUM and DETACH ... CONCURRENTLY refuse to run in a transaction,
    and every other step opens its own short transaction. Redis is connected only by the task that
    needs it, so a Redis outage cannot fail the database tasks."""

    settings: JanitorSettings
    conn: AsyncConnection
    dry_run: bool
    today: dt.date
    redis: Callable[[], Awaitable[aioredis.Redis]]
    emf: EmfWriter
