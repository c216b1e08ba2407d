"""Runs janitor tasks: one connection, one advisory lock per task, a report, a log line and EMF metrics each.

A failing task does not stop the ones after it in `all` (a Redis outage should not block the
database retention), but it makes the run exit non-zero so the CronJob shows the failure.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg
import redis.asyncio as aioredis
import structlog
from psycopg import AsyncConnection
from redis.exceptions import RedisError

from janitor.advisory_lock import release_task_lock, try_task_lock
from janitor.context import TaskContext
from janitor.emf_lines import EmfWriter
from janitor.models_prune import run_prune_models
from janitor.partitions_task import run_partitions
from janitor.report import TaskOutcome, TaskReport
from janitor.retention import run_retention
from janitor.settings import JanitorSettings
from janitor.stream_trim import run_trim_streams
from janitor.vacuum import run_vacuum
from stocktrack_common.backoff import retry_async
from stocktrack_common.partitions import PartitionError
from stocktrack_common.redis_client import create_redis

log = structlog.get_logger(__name__)

TaskBody = Callable[[TaskContext], Awaitable[TaskOutcome]]

# The order of `all`: partitions first (the writer must never miss one), retention before vacuum
# (vacuum then clears the dead rows the batched deletes left), streams and models in between.
TASKS: dict[str, TaskBody] = {
    "partitions": run_partitions,
    "retention": run_retention,
    "trim-streams": run_trim_streams,
    "prune-models": run_prune_models,
    "vacuum": run_vacuum,
}
LAST_SUCCESS_METRIC = "stocktrack_janitor_last_success_timestamp_seconds"


def expand(task: str) -> list[str]:
    return list(TASKS) if task == "all" else [task]


@dataclass
class Janitor:
    settings: JanitorSettings
    emf: EmfWriter
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.UTC).date())
    _redis: aioredis.Redis | None = None

    async def run(self, tasks: list[str], dry_run: bool = False) -> list[TaskReport]:
        conn = await retry_async(
            self._connect,
            what="postgres connect",
            attempts=self.settings.connect_attempts,
            retry_on=(psycopg.OperationalError, OSError),
        )
        try:
            return [await self._run_one(conn, task, dry_run) for task in tasks]
        finally:
            await conn.close()
            if self._redis is not None:
                await self._redis.aclose()
                self._redis = None

    async def _connect(self) -> AsyncConnection:
        return await psycopg.AsyncConnection.connect(
            self.settings.database_url.get_secret_value(),
            autocommit=True,
            application_name="janitor",
            connect_timeout=10,
        )

    async def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = await create_redis(
                self.settings.redis_url.get_secret_value(),
                attempts=self.settings.connect_attempts,
                cluster=self.settings.redis_cluster,
            )
        return self._redis

    async def _run_one(self, conn: AsyncConnection, task: str, dry_run: bool) -> TaskReport:
        bound = log.bind(task=task, dry_run=dry_run)
        started = time.perf_counter()
        locked = False
        try:
            # A dry run changes nothing, so it neither needs the lock nor waits for a real run.
            if not dry_run:
                locked = await try_task_lock(conn, task, self.settings.lock_wait_seconds)
                if not locked:
                    report = TaskReport(
                        task,
                        "skipped",
                        dry_run,
                        time.perf_counter() - started,
                        {},
                        {"reason": "another run holds the task lock"},
                    )
                    bound.info(
                        "task skipped: another run holds its lock", waited_s=round(report.duration_s, 3)
                    )
                    return report
            bound.info("task started")
            ctx = TaskContext(self.settings, conn, dry_run, self.today(), self.redis, self.emf)
            outcome = await TASKS[task](ctx)
            report = TaskReport(
                task, "ok", dry_run, time.perf_counter() - started, outcome.counts, outcome.details
            )
            bound.info(
                "task finished",
                status="ok",
                duration_s=round(report.duration_s, 3),
                **outcome.counts,
                details=outcome.details,
            )
        except Exception as exc:
            report = TaskReport(
                task,
                "failed",
                dry_run,
                time.perf_counter() - started,
                {},
                {},
                error=f"{type(exc).__name__}: {exc}",
            )
            fields = {"status": "failed", "duration_s": round(report.duration_s, 3)}
            if isinstance(exc, OSError | RedisError | psycopg.OperationalError | PartitionError):
                # Expected operational failures (a server down, a table in the way): the reason is
                # the whole story, a traceback would only bury it.
                bound.error("task failed", error=(report.error or "").splitlines()[0], **fields)
            else:
                bound.exception("task failed", **fields)
        finally:
            if locked and not conn.closed:
                await release_task_lock(conn, task)
        self._emit(report)
        return report

    def _emit(self, report: TaskReport) -> None:
        if report.dry_run:
            return
        metrics: dict[str, tuple[float, str]] = {
            "stocktrack_janitor_duration_seconds": (round(report.duration_s, 6), "Seconds"),
            "stocktrack_janitor_failures": (1 if report.status == "failed" else 0, "Count"),
        }
        metrics.update(
            {f"stocktrack_janitor_{name}": (value, _unit(name)) for name, value in report.counts.items()}
        )
        if report.status == "ok":
            metrics[LAST_SUCCESS_METRIC] = (round(time.time(), 3), "Seconds")
        self.emf.emit({"Task": report.task}, metrics)


def _unit(count_name: str) -> str:
    return "Bytes" if count_name.endswith("_bytes") else "Count"


def create_app(settings: JanitorSettings) -> Janitor:
    return Janitor(settings, EmfWriter(settings.emf.namespace, enabled=settings.emf.enabled))
