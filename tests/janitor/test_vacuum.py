"""`vacuum`: hot tables and today's partition are vacuumed, with bloat estimates in the report."""

from __future__ import annotations

import psycopg

from stocktrack_common.partitions import partition_name
from tests.janitor.conftest import RunJanitor
from tests.janitor.tick_data import load_ticks, make_ticks, today_utc


async def test_vacuum_reports_bloat_and_removes_dead_rows(db_url: str, run_janitor: RunJanitor) -> None:
    load_ticks(db_url, make_ticks([today_utc()]))
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO bars_1m SELECT 'AAPL', timestamptz '2026-01-01' + g * interval '1 minute',"
            " 1, 1, 1, 1, 1, 1, now(), now() FROM generate_series(1, 2000) g"
        )
        conn.execute("DELETE FROM bars_1m WHERE extract(minute FROM bucket)::int % 2 = 0")
        conn.execute("SELECT pg_stat_force_next_flush()")

    dry = await run_janitor("vacuum", dry_run=True)
    assert dry[0].status == "ok"
    assert "tables_vacuumed" in dry[0].counts and dry[0].counts["tables_vacuumed"] == 0

    report = (await run_janitor("vacuum"))[0]

    assert report.status == "ok", report.error
    tables = {t["table"]: t for t in report.details["tables"]}
    assert {"bars_1m", "signals", "daily_bars", "models", partition_name(today_utc())} <= set(tables)
    bars = tables["bars_1m"]
    assert bars["dead_tuples"] == 1000 and bars["estimated_bloat_bytes"] > 0
    assert bars["dead_tuples_after"] == 0
    assert report.counts["dead_tuples_removed"] >= 1000
