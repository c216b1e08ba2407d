"""`partitions`: today and the next N days exist afterwards; a rerun and a dry run create nothing."""

from __future__ import annotations

import datetime as dt

import psycopg

from stocktrack_common.partitions import partition_name
from tests.janitor.conftest import RunJanitor
from tests.janitor.tick_data import partition_names, today_utc


async def test_partitions_created_ahead_and_idempotent(db_url: str, run_janitor: RunJanitor) -> None:
    wanted = [partition_name(today_utc() + dt.timedelta(days=i)) for i in range(4)]

    dry = await run_janitor("partitions", dry_run=True, partitions_ahead_days=3)
    assert dry[0].counts["partitions_created"] == 4
    assert partition_names(db_url) == []

    first = await run_janitor("partitions", partitions_ahead_days=3)
    assert first[0].status == "ok"
    assert first[0].details["created"] == wanted
    assert partition_names(db_url) == wanted

    second = await run_janitor("partitions", partitions_ahead_days=3)
    assert second[0].counts == {"partitions_created": 0, "partitions_present": 4}
    assert partition_names(db_url) == wanted


async def test_a_table_in_the_way_is_reported_not_counted_as_created(
    db_url: str, run_janitor: RunJanitor
) -> None:
    blocker = partition_name(today_utc() + dt.timedelta(days=1))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {blocker} (LIKE ticks)")

    report = await run_janitor("partitions", partitions_ahead_days=2)

    assert report[0].status == "failed"
    assert f"{blocker} exist but are not partitions of ticks" in (report[0].error or "")
    assert "ATTACH PARTITION" in (report[0].error or "")
    # the other days were still created (attached), and the next run says the same, not "created"
    with psycopg.connect(db_url) as conn:
        attached = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'ticks'::regclass ORDER BY 1"
        ).fetchall()
    assert [r[0] for r in attached] == [
        partition_name(today_utc()),
        partition_name(today_utc() + dt.timedelta(days=2)),
    ]
    again = await run_janitor("partitions", partitions_ahead_days=2)
    assert again[0].status == "failed"
