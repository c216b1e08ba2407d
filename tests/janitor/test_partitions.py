"""`partitions`: today and the next N days exist afterwards; a rerun and a dry run create nothing."""

from __future__ import annotations

import datetime as dt

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
