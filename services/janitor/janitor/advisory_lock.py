"""One PostgreSQL advisory lock per task, so two runs of the same task never overlap.

Session-level locks on the task's own connection: they are released when the task finishes
or when the process dies and its connection closes, so a killed CronJob never leaves a stale
lock behind. The two-key form keeps these locks apart from the single-key ones used by
migrations and partition creation.
"""

from __future__ import annotations

import asyncio
import time

from psycopg import AsyncConnection

JANITOR_LOCK_CLASS = 727_006
TASK_LOCK_KEYS = {
    "partitions": 1,
    "retention": 2,
    "vacuum": 3,
    "trim-streams": 4,
    "prune-models": 5,
}
_POLL_SECONDS = 0.2


async def try_task_lock(conn: AsyncConnection, task: str, wait_seconds: float) -> bool:
    """Take the task's lock, polling up to `wait_seconds`; False means another run holds it.

    Polling rather than a blocking pg_advisory_lock keeps the wait bounded and cancellable
    without touching the session's lock_timeout.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        cur = await conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (JANITOR_LOCK_CLASS, TASK_LOCK_KEYS[task])
        )
        row = await cur.fetchone()
        if row is not None and row[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_SECONDS)


async def release_task_lock(conn: AsyncConnection, task: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (JANITOR_LOCK_CLASS, TASK_LOCK_KEYS[task]))
